import { z } from 'zod';
import { DEFAULT_QUEUE, defineTask } from '../define-task.ts';

/**
 * Odd numbers per segment, one byte each. 512 KiB stays within a typical L2
 * cache, so marking does not wait on main memory; below = 2e9 is ~1900 segments.
 */
const SEGMENT_SIZE = 512 * 1024;

/**
 * Primes struck out by copying a precomputed pattern instead of one by one:
 * they account for most of the marking work, and their pattern repeats every
 * 3 · 5 · 7 · 11 · 13 = 15 015 odd numbers.
 */
const PRESIEVED_PRIMES = [3, 5, 7, 11, 13] as const;
const PATTERN_LENGTH = 15_015;

export const primesCount = defineTask({
  name: 'primes.count',
  description: 'Counts the primes below a bound with a segmented sieve of Eratosthenes.',
  queue: DEFAULT_QUEUE,
  input: z.strictObject({
    below: z.number().int().min(2).max(2_000_000_000),
  }),
  output: z.object({
    count: z.number().int(),
  }),
  // The largest bound takes a few seconds on one core; 120 s leaves room for a busy host.
  defaults: { timeoutMs: 120_000, attempts: 3, backoff: { type: 'exponential', delay: 1000 } },
  run({ below }, ctx) {
    return { count: countPrimesBelow(below, ctx.progress) };
  },
});

/**
 * Number of primes p < below. Only odd numbers are sieved: byte i of the
 * sieve stands for 2i + 1, 1 marks it composite, and 2 is counted apart.
 */
function countPrimesBelow(below: number, progress: (percent: number) => void): number {
  if (below <= 2) return 0;
  // Largest index whose number 2i + 1 is still below the bound.
  const lastIndex = Math.floor((below - 2) / 2);
  const indexCount = lastIndex + 1;

  const basePrimes = oddPrimesUpTo(Math.floor(Math.sqrt(2 * lastIndex + 1)));
  let firstSieved = 0;
  while (firstSieved < basePrimes.length && (basePrimes[firstSieved] as number) <= 13) {
    firstSieved++;
  }
  // Index of the next odd multiple each base prime still has to strike out. It starts
  // at p², as every smaller multiple has a smaller prime factor that strikes it.
  const nextIndex = new Uint32Array(basePrimes.length);
  for (let k = 0; k < basePrimes.length; k++) {
    const p = basePrimes[k] as number;
    nextIndex[k] = (p * p - 1) / 2;
  }

  const pattern = new Uint8Array(PATTERN_LENGTH);
  for (const p of PRESIEVED_PRIMES) {
    for (let i = (p - 1) / 2; i < PATTERN_LENGTH; i += p) pattern[i] = 1;
  }
  // Small bounds get a small buffer; the length is a multiple of 4 for the Uint32 view.
  const segment = new Uint8Array(Math.ceil(Math.min(SEGMENT_SIZE, indexCount) / 4) * 4);
  const segmentWords = new Uint32Array(segment.buffer);

  let count = 1; // the prime 2
  for (let start = 0; start < indexCount; start += SEGMENT_SIZE) {
    const length = Math.min(SEGMENT_SIZE, indexCount - start);
    const end = start + length;

    copyPattern(pattern, start % PATTERN_LENGTH, segment, length);
    if (start === 0) {
      segment[0] = 1; // 1 is not prime
      // The pattern strikes the presieved primes themselves; writes past `length` are never counted.
      for (const p of PRESIEVED_PRIMES) segment[(p - 1) / 2] = 0;
    }

    for (let k = firstSieved; k < basePrimes.length; k++) {
      const p = basePrimes[k] as number;
      // Base primes ascend, so once p² lies past this segment so does every later one's.
      if ((p * p - 1) / 2 >= end) break;
      let j = (nextIndex[k] as number) - start;
      for (; j < length; j += p) segment[j] = 1;
      nextIndex[k] = start + j;
    }

    count += length - countMarked(segment, segmentWords, length);

    // Once per segment (about a millisecond); the executor sends a few updates a second at most.
    progress(Math.floor((end / indexCount) * 100));
  }
  return count;
}

/** Odd primes p ≤ limit, ascending, by a plain sieve (limit is at most ~44 721). */
function oddPrimesUpTo(limit: number): Uint32Array {
  if (limit < 3) return new Uint32Array(0);
  const composite = new Uint8Array(limit + 1);
  const primes: number[] = [];
  for (let n = 3; n <= limit; n += 2) {
    if (composite[n] === 1) continue;
    primes.push(n);
    for (let m = n * n; m <= limit; m += 2 * n) composite[m] = 1;
  }
  return Uint32Array.from(primes);
}

/** Fills segment[0, length) with the periodic pattern, starting at pattern[offset]. */
function copyPattern(pattern: Uint8Array, offset: number, segment: Uint8Array, length: number) {
  let filled = Math.min(PATTERN_LENGTH - offset, length);
  segment.set(pattern.subarray(offset, offset + filled), 0);
  while (filled < length) {
    const n = Math.min(PATTERN_LENGTH, length - filled);
    segment.set(pattern.subarray(0, n), filled);
    filled += n;
  }
}

/**
 * Count of 1 bytes in bytes[0, length), summed four at a time through a
 * Uint32 view. Each byte is 0 or 1, so a lane cannot carry into the next
 * before 255 words have been added.
 */
function countMarked(bytes: Uint8Array, words: Uint32Array, length: number): number {
  const wordCount = length >>> 2;
  let total = 0;
  for (let w = 0; w < wordCount; ) {
    const stop = Math.min(wordCount, w + 255);
    let lanes = 0;
    for (; w < stop; w++) lanes += words[w] as number;
    total += (lanes & 0xff) + ((lanes >>> 8) & 0xff) + ((lanes >>> 16) & 0xff) + (lanes >>> 24);
  }
  for (let i = wordCount << 2; i < length; i++) total += bytes[i] as number;
  return total;
}

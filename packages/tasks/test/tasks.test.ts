import { pbkdf2Sync } from 'node:crypto';
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import type { TaskContext, TaskProgress } from '../src/index.ts';
import { createRegistry, registry } from '../src/index.ts';
import { cpuBurn } from '../src/tasks/cpu-burn.ts';
import { cryptoPbkdf2 } from '../src/tasks/crypto-pbkdf2.ts';
import { imageMandelbrot } from '../src/tasks/image-mandelbrot.ts';
import { primesCount } from '../src/tasks/primes-count.ts';

function makeContext(progress: TaskProgress[] = []): TaskContext {
  return {
    progress: (value) => {
      progress.push(value);
    },
    log: () => {},
    signal: new AbortController().signal,
  };
}

function expectMonotonePercentages(values: TaskProgress[]): void {
  const percents = values.map((v) => (typeof v === 'number' ? v : v.percent));
  for (const [i, percent] of percents.entries()) {
    expect(percent).toBeGreaterThanOrEqual(0);
    expect(percent).toBeLessThanOrEqual(100);
    if (i > 0) expect(percent).toBeGreaterThanOrEqual(percents[i - 1] as number);
  }
}

/** Primes below `below` by trial division: slow, but too simple to be wrong. */
function countPrimesNaively(below: number): number {
  let count = 0;
  for (let n = 2; n < below; n++) {
    let prime = true;
    for (let d = 2; d * d <= n; d++) {
      if (n % d === 0) {
        prime = false;
        break;
      }
    }
    if (prime) count++;
  }
  return count;
}

describe('primes.count', () => {
  it('finds the known number of primes below 10^6 and 10^7', async () => {
    expect(await primesCount.run({ below: 1_000_000 }, makeContext())).toEqual({ count: 78_498 });
    expect(await primesCount.run({ below: 10_000_000 }, makeContext())).toEqual({
      count: 664_579,
    });
  });

  it('agrees with trial division for every bound from 2 to 2000', async () => {
    for (let below = 2; below <= 2000; below++) {
      const { count } = await primesCount.run({ below }, makeContext());
      expect(count, `below ${below}`).toBe(countPrimesNaively(below));
    }
  });

  it('counts only primes strictly below the bound', async () => {
    const counts = await Promise.all(
      [2, 3, 4, 10, 100].map(
        async (below) => (await primesCount.run({ below }, makeContext())).count,
      ),
    );
    expect(counts).toEqual([0, 1, 2, 4, 25]);
  });

  it('reports progress that only grows and stays within 0–100', async () => {
    const progress: TaskProgress[] = [];
    const { count } = await primesCount.run({ below: 50_000_000 }, makeContext(progress));
    expect(count).toBe(3_001_134);
    expect(progress.length).toBeGreaterThan(10);
    expectMonotonePercentages(progress);
  });
});

describe('crypto.pbkdf2', () => {
  it.each([
    ['sha256', 16],
    ['sha256', 128],
    ['sha512', 32],
    ['sha512', 64],
  ] as const)('derives the same key as node:crypto (%s, %i bytes)', async (digest, keyLength) => {
    const input = { password: 'correct horse', salt: 'battery staple', iterations: 1000 };
    const { keyHex } = await cryptoPbkdf2.run({ ...input, keyLength, digest }, makeContext());
    const expected = pbkdf2Sync(input.password, input.salt, input.iterations, keyLength, digest);
    expect(keyHex).toBe(expected.toString('hex'));
    expect(keyHex).toMatch(/^[0-9a-f]+$/);
    expect(keyHex).toHaveLength(2 * keyLength);
  });
});

describe('image.mandelbrot', () => {
  const width = 64;
  const height = 48;

  async function render(): Promise<Buffer> {
    const input = imageMandelbrot.input.parse({ width, height });
    const output = imageMandelbrot.output.parse(await imageMandelbrot.run(input, makeContext()));
    expect(output.contentType).toBe('image/png');
    return Buffer.from(output.data);
  }

  it('returns a PNG whose header and decoded size match the request', async () => {
    const bytes = await render();
    expect([...bytes.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    // IHDR is the first chunk: length (4), type (4), then width and height, big-endian.
    expect(bytes.subarray(12, 16).toString('ascii')).toBe('IHDR');
    expect(bytes.readUInt32BE(16)).toBe(width);
    expect(bytes.readUInt32BE(20)).toBe(height);
    const image = PNG.sync.read(bytes);
    expect([image.width, image.height]).toEqual([width, height]);
  });

  it('paints the centre of the default view (inside the set) black and a far corner not', async () => {
    const image = PNG.sync.read(await render());
    const rgbAt = (x: number, y: number) => {
      const offset = (y * width + x) * 4;
      return [...image.data.subarray(offset, offset + 3)];
    };
    // The default view is centred on −0.5 + 0i, inside the main cardioid.
    expect(rgbAt(width / 2, height / 2)).toEqual([0, 0, 0]);
    // The top-left corner is near −2 + 1.2i, whose orbit leaves |z| ≤ 2 at once.
    expect(rgbAt(0, 0)).not.toEqual([0, 0, 0]);
  });
});

describe('cpu.burn', () => {
  it('keeps the CPU busy for at least the requested time', async () => {
    const before = process.cpuUsage();
    const { burnedMs } = await cpuBurn.run({ ms: 200 }, makeContext());
    const used = process.cpuUsage(before);
    expect(burnedMs).toBeGreaterThanOrEqual(200);
    // cpuUsage is in µs. A sleep would use well under 1 ms of CPU; a loop computes for
    // the whole 200 ms, less only what other processes on a busy machine take from it.
    expect(used.user / 1000).toBeGreaterThanOrEqual(0.25 * 200);
  });

  it('reports progress below 100 while it burns', async () => {
    const progress: TaskProgress[] = [];
    await cpuBurn.run({ ms: 250 }, makeContext(progress));
    expect(progress.length).toBeGreaterThanOrEqual(1);
    expectMonotonePercentages(progress);
  });

  it('returns at once for 0 ms', async () => {
    const { burnedMs } = await cpuBurn.run({ ms: 0 }, makeContext());
    expect(burnedMs).toBeLessThan(50);
  });
});

describe('input schemas', () => {
  const pbkdf2Input = {
    password: 'p',
    salt: 's',
    iterations: 1000,
    keyLength: 32,
    digest: 'sha256',
  };

  it.each([
    ['primes.count', { below: 2 }],
    ['primes.count', { below: 2_000_000_000 }],
    ['crypto.pbkdf2', { ...pbkdf2Input, iterations: 1, keyLength: 16 }],
    ['crypto.pbkdf2', { ...pbkdf2Input, iterations: 10_000_000, keyLength: 128, digest: 'sha512' }],
    ['image.mandelbrot', { width: 16, height: 16, maxIterations: 1 }],
    ['image.mandelbrot', { width: 4096, height: 4096, maxIterations: 100_000 }],
    ['image.mandelbrot', { width: 16, height: 16, centerX: -2, centerY: 1.5, zoom: 1e-3 }],
    ['cpu.burn', { ms: 0 }],
    ['cpu.burn', { ms: 3_600_000 }],
  ])('%s accepts %j', (name, input) => {
    expect(registry.get(name)?.input.safeParse(input).success).toBe(true);
  });

  it.each([
    ['primes.count', { below: 1 }],
    ['primes.count', { below: 2_000_000_001 }],
    ['primes.count', { below: 10.5 }],
    ['primes.count', { below: '10' }],
    ['primes.count', {}],
    ['primes.count', { below: 10, extra: true }],
    ['crypto.pbkdf2', { ...pbkdf2Input, iterations: 0 }],
    ['crypto.pbkdf2', { ...pbkdf2Input, iterations: 10_000_001 }],
    ['crypto.pbkdf2', { ...pbkdf2Input, iterations: 1.5 }],
    ['crypto.pbkdf2', { ...pbkdf2Input, keyLength: 15 }],
    ['crypto.pbkdf2', { ...pbkdf2Input, keyLength: 129 }],
    ['crypto.pbkdf2', { ...pbkdf2Input, digest: 'md5' }],
    ['crypto.pbkdf2', { ...pbkdf2Input, password: 1 }],
    ['crypto.pbkdf2', { ...pbkdf2Input, extra: true }],
    ['image.mandelbrot', { width: 15, height: 16 }],
    ['image.mandelbrot', { width: 16, height: 4097 }],
    ['image.mandelbrot', { width: 16.5, height: 16 }],
    ['image.mandelbrot', { width: 16, height: 16, maxIterations: 0 }],
    ['image.mandelbrot', { width: 16, height: 16, maxIterations: 100_001 }],
    ['image.mandelbrot', { width: 16, height: 16, maxIterations: 10.5 }],
    ['image.mandelbrot', { width: 16, height: 16, zoom: 0 }],
    ['image.mandelbrot', { width: 16, height: 16, zoom: -1 }],
    ['image.mandelbrot', { width: 16, height: 16, zoom: Number.POSITIVE_INFINITY }],
    ['image.mandelbrot', { width: 16, height: 16, centerX: Number.NaN }],
    ['image.mandelbrot', { width: 16, height: 16, centerY: Number.NEGATIVE_INFINITY }],
    ['image.mandelbrot', { width: 16, height: 16, extra: true }],
    ['cpu.burn', { ms: -1 }],
    ['cpu.burn', { ms: 3_600_001 }],
    ['cpu.burn', { ms: 1.5 }],
    ['cpu.burn', { ms: 10, extra: true }],
  ])('%s rejects %j', (name, input) => {
    expect(registry.get(name)?.input.safeParse(input).success).toBe(false);
  });

  it('fills in the mandelbrot view defaults', () => {
    expect(imageMandelbrot.input.parse({ width: 16, height: 16 })).toEqual({
      width: 16,
      height: 16,
      maxIterations: 500,
      centerX: -0.5,
      centerY: 0,
      zoom: 1,
    });
  });
});

describe('registry', () => {
  it.each(['constructor', '__proto__', 'toString', 'hasOwnProperty'])(
    'finds no task named %s',
    (name) => {
      expect(registry.get(name)).toBeUndefined();
    },
  );

  it('lists exactly the four built-in tasks', () => {
    expect(
      registry
        .list()
        .map((task) => task.name)
        .sort(),
    ).toEqual(['cpu.burn', 'crypto.pbkdf2', 'image.mandelbrot', 'primes.count']);
  });

  it('refuses two tasks with the same name', () => {
    expect(() => createRegistry([primesCount, cpuBurn, primesCount])).toThrow(/primes\.count/);
  });
});

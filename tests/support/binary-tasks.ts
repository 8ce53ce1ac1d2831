import { fileURLToPath } from 'node:url';
import { binary, binaryOutput, defineTask } from '@offload/tasks';
import { z } from 'zod';

/**
 * A task that returns bytes, for the binary-result tests: `size` bytes of a
 * pseudo-random sequence from `seed` (incompressible, so no layer can shrink
 * them unnoticed), which the test computes too and compares by hash.
 */
export const testBytes = defineTask({
  name: 'test.bytes',
  description: 'Returns `size` pseudo-random bytes of the given content type.',
  queue: 'default',
  input: z.strictObject({
    /** bytes */
    size: z
      .number()
      .int()
      .min(0)
      .max(512 * 1024 * 1024),
    seed: z.number().int().min(1).max(0xffffffff).default(1),
    contentType: z.string().default('application/octet-stream'),
  }),
  output: binaryOutput(),
  defaults: { timeoutMs: 60_000, attempts: 1, backoff: { type: 'fixed', delay: 50 } },
  run: ({ size, seed, contentType }) => binary(pseudoRandomBytes(size, seed), contentType),
});

/** xorshift32 from `seed`, four bytes a step: fast enough for hundreds of MB. */
export function pseudoRandomBytes(size: number, seed: number): Uint8Array {
  const words = new Uint32Array(Math.ceil(size / 4));
  let x = seed >>> 0 || 1;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    words[i] = x;
  }
  return new Uint8Array(words.buffer, 0, size);
}

/** OFFLOAD_TASKS of a worker that runs the built-ins and test.bytes. */
export const BINARY_TASK_MODULES = `@offload/tasks/builtin,${fileURLToPath(import.meta.url)}`;

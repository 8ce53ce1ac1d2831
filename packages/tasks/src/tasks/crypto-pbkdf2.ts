import { pbkdf2Sync } from 'node:crypto';
import { z } from 'zod';
import { DEFAULT_QUEUE, defineTask } from '../define-task.ts';

export const cryptoPbkdf2 = defineTask({
  name: 'crypto.pbkdf2',
  description: 'Derives a key from a password and salt with PBKDF2-HMAC (SHA-256 or SHA-512).',
  queue: DEFAULT_QUEUE,
  input: z.strictObject({
    /** At most 1024 characters: PBKDF2 hashes a longer password down to one block anyway. */
    password: z.string().max(1024),
    salt: z.string().max(1024),
    iterations: z.number().int().min(1).max(10_000_000),
    /** Derived key length, bytes. */
    keyLength: z.number().int().min(16).max(128),
    digest: z.enum(['sha256', 'sha512']),
  }),
  output: z.object({
    /** The derived key, lowercase hex (2 · keyLength characters). */
    keyHex: z.string(),
  }),
  // The largest input (10 million iterations, 128-byte key) takes ~10 s on one core.
  defaults: { timeoutMs: 120_000, attempts: 3, backoff: { type: 'exponential', delay: 1000 } },
  run({ password, salt, iterations, keyLength, digest }) {
    // One native call that cannot be interrupted or report progress midway; the
    // executor's timeout is what bounds it.
    const key = pbkdf2Sync(password, salt, iterations, keyLength, digest);
    return { keyHex: key.toString('hex') };
  },
});

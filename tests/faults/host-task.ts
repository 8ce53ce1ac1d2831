import { hostname } from 'node:os';
import { defineTask } from '@offload/tasks';
import { z } from 'zod';

/**
 * A task whose result names the machine that ran it, for hosts.test.ts: each
 * worker there runs on a host of its own (a network namespace with its own
 * hostname), so a job's result tells which host's attempt completed it.
 */
export const testHost = defineTask({
  name: 'test.host',
  description: 'Waits `ms` without using the CPU, then returns the hostname of its worker.',
  queue: 'default',
  input: z.strictObject({ ms: z.number().int().min(0) }),
  output: z.object({ host: z.string() }),
  defaults: { timeoutMs: 120_000, attempts: 1, backoff: { type: 'fixed', delay: 50 } },
  run: (input, ctx) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => resolve({ host: hostname() }), input.ms);
      ctx.signal.addEventListener('abort', () => {
        clearTimeout(timer);
        reject(ctx.signal.reason);
      });
    }),
});

import { z } from 'zod';
import { DEFAULT_QUEUE, defineTask } from '../define-task.ts';

/** Arithmetic steps between two clock reads: a few µs of work, so the clock read is not the main cost. */
const STEPS_PER_CLOCK_READ = 10_000;

export const cpuBurn = defineTask({
  name: 'cpu.burn',
  description: 'Keeps one CPU core busy for a given time, for load and timeout testing.',
  queue: DEFAULT_QUEUE,
  input: z.strictObject({
    /** Time to burn, ms. */
    ms: z.number().int().min(0).max(3_600_000),
  }),
  output: z.object({
    /** Time actually burned, ms, measured on the monotonic clock; never less than `ms`. */
    burnedMs: z.number(),
  }),
  // The longest burn (1 h) plus a minute of slack; one attempt, because burning
  // again after a failure proves nothing the first attempt did not.
  defaults: { timeoutMs: 3_660_000, attempts: 1, backoff: { type: 'exponential', delay: 1000 } },
  run({ ms }, ctx) {
    const start = performance.now();
    let elapsed = 0;
    // Integer arithmetic between clock reads, so the core is busy computing rather
    // than only polling the clock (a linear congruential sequence, 32-bit).
    let state = 1;
    while (elapsed < ms) {
      for (let i = 0; i < STEPS_PER_CLOCK_READ; i++) {
        state = (Math.imul(state, 1_103_515_245) + 12_345) | 0;
      }
      elapsed = performance.now() - start;
      ctx.progress(Math.min(99, Math.floor((elapsed / ms) * 100)));
    }
    return { burnedMs: elapsed };
  },
});

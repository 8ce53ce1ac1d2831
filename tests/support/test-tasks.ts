import { appendFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { builtInTasks, createRegistry, defineTask } from '@offload/tasks';
import { z } from 'zod';

/**
 * Tasks that exist only to misbehave, for tests: a task module that test
 * workers list in OFFLOAD_TASKS (TEST_TASK_MODULES), never `npm start` or the image.
 */
const none = z.strictObject({});
const defaults = { timeoutMs: 10_000, attempts: 1, backoff: { type: 'fixed', delay: 50 } } as const;

export const TEST_QUEUE = 'test-other';

export const testEcho = defineTask({
  name: 'test.echo',
  description: 'Returns its input after reporting progress.',
  queue: 'default',
  input: z.strictObject({ value: z.string() }),
  output: z.object({ value: z.string() }),
  defaults,
  run: (input, ctx) => {
    ctx.progress(50);
    ctx.log(`echo ${input.value}`);
    return { value: input.value };
  },
});

export const testEchoOther = defineTask({
  name: 'test.echo-other',
  description: 'test.echo on another queue.',
  queue: TEST_QUEUE,
  input: z.strictObject({ value: z.string() }),
  output: z.object({ value: z.string() }),
  defaults,
  run: (input) => ({ value: input.value }),
});

export const testThrow = defineTask({
  name: 'test.throw',
  description: 'Always throws.',
  queue: 'default',
  input: none,
  output: z.never(),
  defaults: { ...defaults, attempts: 3 },
  run: () => {
    throw new Error('boom from test.throw');
  },
});

export const testSleep = defineTask({
  name: 'test.sleep',
  description: 'Waits `ms` without using the CPU; honours its AbortSignal.',
  queue: 'default',
  input: z.strictObject({ ms: z.number().int().min(0) }),
  output: z.object({ sleptMs: z.number() }),
  defaults,
  run: (input, ctx) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => resolve({ sleptMs: input.ms }), input.ms);
      ctx.signal.addEventListener('abort', () => {
        clearTimeout(timer);
        reject(ctx.signal.reason);
      });
    }),
});

export const testTicks = defineTask({
  name: 'test.ticks',
  description: 'Reports progress `ticks` times, `everyMs` apart, without using the CPU.',
  queue: 'default',
  input: z.strictObject({ ticks: z.number().int().min(1).max(100), everyMs: z.number().int() }),
  output: z.object({ ticks: z.number() }),
  defaults: { ...defaults, timeoutMs: 60_000 },
  run: async (input, ctx) => {
    for (let tick = 1; tick <= input.ticks; tick++) {
      await new Promise((resolve) => setTimeout(resolve, input.everyMs));
      ctx.progress(Math.floor((tick / input.ticks) * 99));
    }
    return { ticks: input.ticks };
  },
});

export const testBulky = defineTask({
  name: 'test.bulky',
  description: 'Returns a string of `bytes` bytes.',
  queue: 'default',
  input: z.strictObject({ bytes: z.number().int().min(0) }),
  output: z.object({ text: z.string() }),
  defaults,
  run: (input) => ({ text: 'x'.repeat(input.bytes) }),
});

export const testMeasure = defineTask({
  name: 'test.measure',
  description: 'Returns the size of its `value` as JSON, bytes: a small result from a large input.',
  queue: 'default',
  input: z.strictObject({ value: z.unknown() }),
  output: z.object({ bytes: z.number().int() }),
  defaults,
  run: (input) => ({ bytes: Buffer.byteLength(JSON.stringify(input.value)) }),
});

export const testLoop = defineTask({
  name: 'test.loop',
  description: 'Loops forever on the CPU.',
  queue: 'default',
  input: none,
  output: z.never(),
  defaults: { ...defaults, timeoutMs: 1000 },
  run: () => {
    for (;;) {}
  },
});

export const testHang = defineTask({
  name: 'test.hang',
  description: 'Returns a promise that never settles and ignores its signal.',
  queue: 'default',
  input: none,
  output: z.never(),
  defaults: { ...defaults, timeoutMs: 1000 },
  run: () => new Promise<never>(() => {}),
});

export const testExit = defineTask({
  name: 'test.exit',
  description: 'Calls process.exit.',
  queue: 'default',
  input: none,
  output: z.never(),
  defaults: { ...defaults, attempts: 2 },
  run: () => process.exit(3),
});

export const testTimerThrow = defineTask({
  name: 'test.timer-throw',
  description: 'Throws from a timer, outside any promise chain.',
  queue: 'default',
  input: none,
  output: z.never(),
  defaults,
  run: () =>
    new Promise<never>(() => {
      setTimeout(() => {
        throw new Error('thrown from a timer');
      }, 10);
    }),
});

export const testMark = defineTask({
  name: 'test.mark',
  description: 'Appends `token` to `file` when it starts, then burns the CPU for `ms`.',
  queue: 'default',
  input: z.strictObject({ file: z.string(), token: z.string(), ms: z.number().int().min(0) }),
  output: z.object({ token: z.string() }),
  defaults: { ...defaults, timeoutMs: 120_000 },
  run: (input) => {
    appendFileSync(input.file, `${input.token}\n`);
    const end = Date.now() + input.ms;
    while (Date.now() < end) {}
    return { token: input.token };
  },
});

export const testHeap = defineTask({
  name: 'test.heap',
  description: 'Allocates until the heap is exhausted.',
  queue: 'default',
  input: none,
  output: z.never(),
  defaults,
  run: () => {
    const hoard: number[][] = [];
    for (;;) hoard.push(new Array(1_000_000).fill(hoard.length));
  },
});

export const testBuffers = defineTask({
  name: 'test.buffers',
  description:
    'Holds ever more Buffers, memory outside the JavaScript heap: up to 1 GB, for 20 s at most.',
  queue: 'default',
  input: none,
  output: z.object({ heldMb: z.number() }),
  defaults,
  run: () => {
    const hoard: Buffer[] = [];
    const started = Date.now();
    while (Date.now() - started < 20_000 && hoard.length < 64) {
      hoard.push(Buffer.alloc(16 * 1024 * 1024, 1));
    }
    return { heldMb: hoard.length * 16 };
  },
});

/** Every test task, for tests that list them. */
export const testTasks = [
  testEcho,
  testEchoOther,
  testThrow,
  testSleep,
  testTicks,
  testBulky,
  testMeasure,
  testLoop,
  testHang,
  testExit,
  testTimerThrow,
  testMark,
  testHeap,
  testBuffers,
];

export const registry = createRegistry([...builtInTasks, ...testTasks]);

/** OFFLOAD_TASKS of a worker that runs the built-ins and these tasks. */
export const TEST_TASK_MODULES = `@offload/tasks/builtin,${fileURLToPath(import.meta.url)}`;

/** The Python test tasks (python/test_tasks.py), for OFFLOAD_TASKS. */
export const PYTHON_TEST_TASKS = fileURLToPath(new URL('./python/test_tasks.py', import.meta.url));

import { afterEach, describe, expect, it } from 'vitest';
import { registry, TEST_TASK_MODULES } from '../../../tests/support/test-tasks.ts';
import { ExecutorPool } from '../src/executor-pool.ts';
import { threadBackend } from '../src/thread-executor.ts';
import { failureOf, job } from './executions.ts';

const taskModules = TEST_TASK_MODULES.split(',');
const tasks = registry.list().map((task) => task.name);

/** A pool of thread executors for the test tasks. */
const threads = (
  size: number,
  memoryLimitMb?: number,
  modules = taskModules,
  abortGraceMs?: number,
  maxResultBytes?: number,
) =>
  ExecutorPool.start({
    size,
    ...(abortGraceMs && { abortGraceMs }),
    ...(maxResultBytes !== undefined && { maxResultBytes }),
    backends: [
      threadBackend({
        tasks,
        taskModules: modules,
        cwd: process.cwd(),
        ...(memoryLimitMb && { memoryLimitMb }),
      }),
    ],
  });

let pool: ExecutorPool | undefined;
afterEach(async () => {
  await pool?.close();
  pool = undefined;
});

describe('ExecutorPool', () => {
  it('measures each result in its executor, and fails one over the bound with result_too_large, final', async () => {
    pool = await threads(1, undefined, taskModules, undefined, 20);
    const small = await pool.execute(job('test.echo', { value: 'é' }));
    // Bytes of UTF-8, not characters.
    expect(small).toEqual({ result: { value: 'é' }, bytes: 14 });
    const err = await failureOf(pool.run(job('test.echo', { value: 'a value past twenty bytes' })));
    expect(err.code).toBe('result_too_large');
    expect(err.final).toBe(true);
    expect(err.message).toMatch(/is 3[78] bytes of JSON; results are limited to 20/);
    // The executor stays warm for the next job.
    await expect(pool.run(job('test.echo', { value: 'ok' }))).resolves.toEqual({ value: 'ok' });
  });

  it('runs a task off the calling thread and passes on its progress and log', async () => {
    pool = await threads(1);
    const progress: unknown[] = [];
    const logs: string[] = [];
    const result = await pool.run({
      ...job('test.echo', { value: 'hi' }),
      onProgress: (value) => progress.push(value),
      onLog: (line) => logs.push(line),
    });
    expect(result).toEqual({ value: 'hi' });
    expect(progress).toEqual([50]);
    expect(logs).toEqual(['echo hi']);
  });

  it('runs as many tasks at once as it has executors', async () => {
    pool = await threads(2);
    const started = Date.now();
    await Promise.all([
      pool.run(job('test.sleep', { ms: 400 })),
      pool.run(job('test.sleep', { ms: 400 })),
    ]);
    // Serially this takes 800 ms; in parallel about 400.
    expect(Date.now() - started).toBeLessThan(750);
  });

  it('kills a task that loops forever at its time limit and replaces the executor', async () => {
    pool = await threads(1);
    const started = Date.now();
    const err = await failureOf(pool.run(job('test.loop', {}, 500)));
    const elapsed = Date.now() - started;
    expect(err.code).toBe('timeout');
    expect(err.final).toBe(true);
    expect(elapsed).toBeGreaterThanOrEqual(490);
    expect(elapsed).toBeLessThan(1500);
    // The replacement executor takes the next job.
    await expect(pool.run(job('test.echo', { value: 'after' }))).resolves.toEqual({
      value: 'after',
    });
  });

  it('times out a promise that never settles', async () => {
    pool = await threads(1);
    const err = await failureOf(pool.run(job('test.hang', {}, 300)));
    expect(err.code).toBe('timeout');
    await expect(pool.run(job('test.echo', { value: 'x' }))).resolves.toEqual({ value: 'x' });
  });

  it('stops a running job on request: it fails at once and a fresh executor takes the next job', async () => {
    pool = await threads(1);
    const loop = job('test.loop', {}, 60_000);
    const running = pool.run(loop);
    await new Promise((r) => setTimeout(r, 100));
    const started = Date.now();
    expect(pool.stop(loop.jobId, 'canceled')).toBe(true);
    const err = await failureOf(running);
    expect(err).toMatchObject({ code: 'canceled', final: true });
    expect(Date.now() - started).toBeLessThan(1000);
    // The looping thread is killed after the abort grace (200 ms) and replaced; starting a
    // thread under tsx takes hundreds of ms, more on a loaded machine, hence the loose bound.
    await expect(pool.run(job('test.echo', { value: 'next' }))).resolves.toEqual({ value: 'next' });
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('keeps an executor whose task honours its abort signal', async () => {
    pool = await threads(1, undefined, taskModules, 5000);
    const sleep = job('test.sleep', { ms: 60_000 });
    const running = pool.run(sleep);
    await new Promise((r) => setTimeout(r, 100));
    expect(pool.stop(sleep.jobId, 'canceled')).toBe(true);
    await failureOf(running);
    // Had the thread been killed, the grace of 5 s would pass before the next job could start.
    const started = Date.now();
    await pool.run(job('test.echo', { value: 'warm' }));
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('fails a task that exits its thread, and keeps serving', async () => {
    pool = await threads(1);
    const err = await failureOf(pool.run(job('test.exit')));
    expect(err.code).toBe('task_error');
    expect(err.message).toMatch(/exit code 3/);
    await expect(pool.run(job('test.echo', { value: 'y' }))).resolves.toEqual({ value: 'y' });
  });

  it('fails a task that throws from a timer, and keeps serving', async () => {
    pool = await threads(1);
    const err = await failureOf(pool.run(job('test.timer-throw')));
    expect(err.code).toBe('task_error');
    expect(err.message).toMatch(/thrown from a timer/);
    await expect(pool.run(job('test.echo', { value: 'z' }))).resolves.toEqual({ value: 'z' });
  });

  it('stops an executor that exhausts its memory cap', async () => {
    pool = await threads(1, 64);
    const err = await failureOf(pool.run(job('test.heap', {}, 30_000)));
    expect(err.code).toBe('out_of_memory');
    await expect(pool.run(job('test.echo', { value: 'm' }))).resolves.toEqual({ value: 'm' });
  });

  it('stops an executor whose Buffers pass its memory cap, though they live outside the heap', async () => {
    pool = await threads(1, 64);
    const err = await failureOf(pool.run(job('test.buffers', {}, 30_000)));
    expect(err.code).toBe('out_of_memory');
    expect(err.message).toMatch(/MB of Buffers, past the executor's 64 MB cap/);
    await expect(pool.run(job('test.echo', { value: 'b' }))).resolves.toEqual({ value: 'b' });
  });

  it('fails, without retry, a task it does not know or an input that does not fit', async () => {
    pool = await threads(1);
    const unknown = await failureOf(pool.run(job('no.such-task')));
    expect(unknown).toMatchObject({ code: 'task_error', final: true });
    const invalid = await failureOf(pool.run(job('test.echo', { value: 42 })));
    expect(invalid).toMatchObject({ code: 'invalid_input', final: true });
    expect(invalid.message).toMatch(/does not fit task test\.echo: input\.value/);
  });

  it('reports a thrown error as a retryable task error', async () => {
    pool = await threads(1);
    const err = await failureOf(pool.run(job('test.throw')));
    expect(err).toMatchObject({
      code: 'task_error',
      final: false,
      message: 'boom from test.throw',
    });
  });
});

describe('ExecutorPool.start', () => {
  it('fails loudly when the executors cannot load their tasks', async () => {
    await expect(threads(1, undefined, ['/nonexistent/tasks.ts'])).rejects.toThrow(
      /failed to start/,
    );
  });
});

import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isAlive as alive, waitFor } from '../../../tests/support/processes.ts';
import { PYTHON_TEST_TASKS } from '../../../tests/support/test-tasks.ts';
import { inheritedEnvironment } from '../src/env.ts';
import { ExecutorPool } from '../src/executor-pool.ts';
import { pythonBackend } from '../src/python-executor.ts';
import { failureOf, job } from './executions.ts';

/**
 * Python executors (DESIGN.md §2): warm `python3` processes that run the
 * tasks a tasks file declares, with the same limits as thread executors.
 */
/** The interpreter itself, not a launcher (a pyenv shim costs most of a second per start), as a worker resolves it. */
const PYTHON = execFileSync(
  process.env.OFFLOAD_PYTHON ?? 'python3',
  ['-c', 'import sys; print(sys.executable)'],
  { encoding: 'utf8' },
).trim();
const TASKS = [
  'py.echo',
  'py.sleep',
  'py.loop',
  'py.children',
  'py.exit',
  'py.os-exit',
  'py.raise',
  'py.memory',
  'py.print',
  'py.not-json',
  'py.bad-output',
  'py.mark',
];

let pool: ExecutorPool | undefined;
afterEach(async () => {
  await pool?.close();
  pool = undefined;
});

const start = (size = 1, memoryLimitMb?: number, maxResultBytes?: number) =>
  ExecutorPool.start({
    size,
    ...(maxResultBytes !== undefined && { maxResultBytes }),
    backends: [
      pythonBackend({
        files: [PYTHON_TEST_TASKS],
        cwd: process.cwd(),
        python: PYTHON,
        environment: inheritedEnvironment(),
        tasks: TASKS,
        ...(memoryLimitMb && { memoryLimitMb }),
      }),
    ],
  });

describe('Python executors', () => {
  it('report the size of each result, and a result over the bound fails its job with result_too_large, final', async () => {
    pool = await start(1, undefined, 20);
    const small = await pool.execute(job('py.echo', { value: 'hi' }));
    expect(small).toEqual({ result: { value: 'hi' }, bytes: 15 });
    const err = await failureOf(pool.run(job('py.echo', { value: 'a value past twenty bytes' })));
    expect(err.code).toBe('result_too_large');
    expect(err.final).toBe(true);
    expect(err.message).toMatch(/is 3[78] bytes of JSON; results are limited to 20/);
  });

  it('run a task and pass on its progress and log; the process is reused across jobs', async () => {
    pool = await start();
    const progress: unknown[] = [];
    const logs: string[] = [];
    const result = await pool.run({
      ...job('py.echo', { value: 'hi' }),
      onProgress: (value) => progress.push(value),
      onLog: (line) => logs.push(line),
    });
    expect(result).toEqual({ value: 'hi' });
    expect(progress).toEqual([50]);
    expect(logs).toEqual(['echo hi']);
    const first = (await pool.run(job('py.sleep', { ms: 0 }))) as { pid: number };
    const second = (await pool.run(job('py.sleep', { ms: 0 }))) as { pid: number };
    expect(second.pid).toBe(first.pid);
  });

  it('run as many jobs at once as there are executors', async () => {
    pool = await start(2);
    const [a, b] = (await Promise.all([
      pool.run(job('py.sleep', { ms: 400 })),
      pool.run(job('py.sleep', { ms: 400 })),
    ])) as { startedAt: number; finishedAt: number; pid: number }[];
    expect(a?.pid).not.toBe(b?.pid);
    // The two running intervals overlap.
    expect(Math.max(a?.startedAt ?? 0, b?.startedAt ?? 0)).toBeLessThan(
      Math.min(a?.finishedAt ?? 0, b?.finishedAt ?? 0),
    );
  });

  it('kill a runaway loop at its time limit and replace the process', async () => {
    pool = await start();
    const started = Date.now();
    const err = await failureOf(pool.run(job('py.loop', {}, 500)));
    expect(err).toMatchObject({ code: 'timeout', final: true });
    expect(Date.now() - started).toBeLessThan(1500);
    await expect(pool.run(job('py.echo', { value: 'after' }))).resolves.toEqual({ value: 'after' });
  });

  it('stop a canceled job and the child processes it started within a second', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'offload-py-'));
    try {
      pool = await start();
      const file = join(dir, 'pids');
      const running = job('py.children', { file }, 60_000);
      const outcome = failureOf(pool.run(running));
      await waitFor(() => existsSync(file) && readFileSync(file, 'utf8').includes(' '), 10_000);
      const [executorPid, childPid] = readFileSync(file, 'utf8').split(' ').map(Number);
      const canceledAt = Date.now();
      expect(pool.stop(running.jobId, 'canceled')).toBe(true);
      expect(await outcome).toMatchObject({ code: 'canceled', final: true });
      await waitFor(() => !alive(executorPid as number) && !alive(childPid as number), 1000);
      console.log(
        `python cancel: executor and its child gone ${Date.now() - canceledAt} ms after the cancel`,
      );
      await expect(pool.run(job('py.echo', { value: 'x' }))).resolves.toEqual({ value: 'x' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('keep the process of a task that honours ctx.canceled', async () => {
    pool = await start();
    const first = (await pool.run(job('py.sleep', { ms: 0 }))) as { pid: number };
    const running = job('py.sleep', { ms: 5000 });
    const outcome = failureOf(pool.run(running));
    await new Promise((r) => setTimeout(r, 100));
    pool.stop(running.jobId, 'canceled');
    expect((await outcome).code).toBe('canceled');
    const after = (await pool.run(job('py.sleep', { ms: 0 }))) as { pid: number };
    expect(after.pid).toBe(first.pid);
  });

  it('fail sys.exit, os._exit and an exception with a clear message, and keep serving', async () => {
    pool = await start();
    const exit = await failureOf(pool.run(job('py.exit')));
    expect(exit).toMatchObject({ code: 'task_error', final: false, message: 'SystemExit: 3' });
    const osExit = await failureOf(pool.run(job('py.os-exit')));
    expect(osExit).toMatchObject({ code: 'task_error', final: false });
    expect(osExit.message).toMatch(/exit code 4/);
    const logs: string[] = [];
    const raised = await failureOf(pool.run({ ...job('py.raise'), onLog: (l) => logs.push(l) }));
    expect(raised).toMatchObject({
      code: 'task_error',
      final: false,
      message: 'ValueError: bad value from py.raise',
    });
    expect(logs.join('\n')).toMatch(
      /Traceback[\s\S]*test_tasks\.py", line \d+, in nested[\s\S]*ValueError/,
    );
    await expect(pool.run(job('py.echo', { value: 'y' }))).resolves.toEqual({ value: 'y' });
  });

  it('fail a task past the memory cap with out_of_memory, and keep serving', async () => {
    pool = await start(1, 256);
    const err = await failureOf(pool.run(job('py.memory', {}, 30_000)));
    expect(err.code).toBe('out_of_memory');
    expect(err.message).toMatch(/MemoryError.*256 MB/);
    await expect(pool.run(job('py.echo', { value: 'm' }))).resolves.toEqual({ value: 'm' });
  });

  it('take what a task prints as its log, never as protocol', async () => {
    pool = await start();
    const logs: string[] = [];
    const result = await pool.run({ ...job('py.print', { lines: 3 }), onLog: (l) => logs.push(l) });
    expect(result).toEqual({ printed: true });
    expect(logs).toContain('{"type": "done", "result": "fake 0"}');
    expect(logs).toContain('to stderr');
    // Written to fd 1 below Python's sys.stdout, and still in the log when the job ends.
    expect(logs).toContain('straight to fd 1');
  });

  it('fail, without retry, a result that is not JSON or misses the output schema; the process lives', async () => {
    pool = await start();
    const first = (await pool.run(job('py.sleep', { ms: 0 }))) as { pid: number };
    const notJson = await failureOf(pool.run(job('py.not-json')));
    expect(notJson).toMatchObject({ code: 'invalid_output', final: true });
    expect(notJson.message).toMatch(/not JSON: Object of type set/);
    const bad = await failureOf(pool.run(job('py.bad-output')));
    expect(bad).toMatchObject({ code: 'invalid_output', final: true });
    expect(bad.message).toMatch(/output\.count: must be integer/);
    const invalid = await failureOf(pool.run(job('py.echo', { value: 1 })));
    expect(invalid).toMatchObject({ code: 'invalid_input', final: true });
    const after = (await pool.run(job('py.sleep', { ms: 0 }))) as { pid: number };
    expect(after.pid).toBe(first.pid);
  });

  it('leave no process behind when the pool closes', async () => {
    pool = await start(2);
    const pids = (await Promise.all([
      pool.run(job('py.sleep', { ms: 200 })),
      pool.run(job('py.sleep', { ms: 200 })),
    ])) as { pid: number }[];
    await pool.close();
    pool = undefined;
    for (const { pid } of pids) expect(alive(pid)).toBe(false);
  });
});

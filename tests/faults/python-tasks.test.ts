import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRedis, offloadKeys } from '@offload/queue';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startApi, type TestApi } from '../support/api-server.ts';
import { client } from '../support/http.ts';
import {
  isAlive,
  type RunningProcess,
  startWorkerProcess,
  testPrefix,
  type WorkerProcessEnv,
  waitFor,
} from '../support/processes.ts';
import { testRedis } from '../support/redis-url.ts';
import { PYTHON_TEST_TASKS } from '../support/test-tasks.ts';

/**
 * The fault tests of TypeScript tasks (workers.test.ts), for Python tasks:
 * real worker processes whose executors are python3 processes, driven
 * through the real API.
 */
const target = testRedis();
const admin = createRedis(target, 'worker');
let prefix: string;
let api: TestApi;
let http: ReturnType<typeof client>;
let dir: string;
/** This test's own copy of the tasks file: its path tells this test's executors from any other's. */
let tasksFile: string;
const workers: RunningProcess[] = [];

async function worker(options: Partial<WorkerProcessEnv> = {}) {
  const started = await startWorkerProcess({ redis: target, prefix, tasks: tasksFile, ...options });
  workers.push(started);
  return started;
}

beforeEach(async () => {
  prefix = testPrefix();
  api = await startApi({ redis: target, prefix });
  http = client(api.url);
  dir = mkdtempSync(join(tmpdir(), 'offload-py-faults-'));
  tasksFile = join(dir, 'test_tasks.py');
  copyFileSync(PYTHON_TEST_TASKS, tasksFile);
});
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.stop('SIGKILL')));
  await api.close();
  rmSync(dir, { recursive: true, force: true });
});
afterAll(() => admin.disconnect());

const ms = (iso: string | null) => Date.parse(iso as string);

/** Pids of the live Python executors that run this test's tasks file. */
function executorPids(): number[] {
  const pids: number[] = [];
  for (const entry of readdirNumeric('/proc')) {
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      const ours = cmdline.includes('offload.executor') && cmdline.includes(tasksFile);
      if (ours && isAlive(entry)) pids.push(entry);
    } catch {
      // Gone while we looked.
    }
  }
  return pids;
}

function readdirNumeric(path: string): number[] {
  return readdirSync(path)
    .filter((name) => /^\d+$/.test(name))
    .map(Number);
}

/** The job's log lines, as BullMQ keeps them (the dashboard shows them). */
const jobLog = (id: string) =>
  admin.lrange(offloadKeys(prefix).bullKey('default', `${id}:logs`), 0, -1);

describe('Python tasks that misbehave', () => {
  it('a runaway loop is killed at its time limit, and the next job runs', async () => {
    await worker({ concurrency: 1 });
    const job = await http.submit('py.loop', {}, { timeoutMs: 1500 });
    const failed = await http.until(job.id, (v) => v.state === 'failed');
    const ran = ms(failed.finishedAt) - ms(failed.startedAt);
    console.log(`py.loop with timeoutMs 1500: killed after ${ran} ms`);
    expect(failed).toMatchObject({ error: { code: 'timeout' }, attempts: { made: 1 } });
    expect(Math.abs(ran - 1500)).toBeLessThan(1000);
    const next = await http.submit('py.echo', { value: 'next' });
    expect((await http.get(next.id, 10)).state).toBe('completed');
  });

  it('a canceled running job stops, with the processes it started, within a second', async () => {
    await worker({ concurrency: 1 });
    const file = join(dir, 'pids');
    const job = await http.submit('py.children', { file });
    await http.until(job.id, (v) => v.state === 'running');
    await waitFor(() => {
      try {
        return readFileSync(file, 'utf8').includes(' ');
      } catch {
        return false;
      }
    }, 10_000);
    const [executor, child] = readFileSync(file, 'utf8').split(' ').map(Number);
    const res = await http.cancel(job.id);
    expect(res.status).toBe(200);
    const gone = await waitFor(
      () => !isAlive(executor as number) && !isAlive(child as number),
      1000,
    );
    console.log(`py.children canceled: executor and its child process gone after ${gone} ms`);
    expect((await http.get(job.id)).state).toBe('canceled');
  });

  it('sys.exit(3) fails each attempt clearly, is retried, and the worker lives', async () => {
    const w = await worker({ concurrency: 1 });
    const job = await http.submit('py.exit', {}, { attempts: 2 });
    const failed = await http.until(job.id, (v) => v.state === 'failed', 40_000);
    console.log(
      `py.exit: ${failed.error?.code} after ${failed.attempts.made} attempts: ${failed.error?.message}`,
    );
    expect(failed.error).toEqual({ code: 'task_error', message: 'SystemExit: 3' });
    expect(failed.attempts).toEqual({ made: 2, max: 2 });
    expect(w.child.exitCode).toBeNull();
  });

  it('an exception is retried per the task attempts, then fails with its name, message and traceback', async () => {
    await worker({ concurrency: 1 });
    const job = await http.submit('py.raise', {});
    const failed = await http.until(job.id, (v) => v.state === 'failed', 40_000);
    const log = (await jobLog(job.id)).join('\n');
    console.log(`py.raise: ${failed.error?.message} after ${failed.attempts.made} attempts`);
    expect(failed.error).toEqual({
      code: 'task_error',
      message: 'ValueError: bad value from py.raise',
    });
    // attempts=3 is the task's own default (its @task declaration).
    expect(failed.attempts).toEqual({ made: 3, max: 3 });
    expect(log).toMatch(
      /Traceback \(most recent call last\):[\s\S]*in nested[\s\S]*ValueError: bad value/,
    );
  });

  it('a memory blow-up fails with out_of_memory and the worker lives', async () => {
    const w = await worker({ concurrency: 1, env: { WORKER_EXECUTOR_MEMORY_MB: '256' } });
    const job = await http.submit('py.memory', {});
    const failed = await http.until(job.id, (v) => v.state === 'failed', 30_000);
    console.log(`py.memory capped at 256 MB: ${failed.error?.code}: ${failed.error?.message}`);
    expect(failed.error?.code).toBe('out_of_memory');
    expect(w.child.exitCode).toBeNull();
    const next = await http.submit('py.echo', { value: 'alive' });
    expect((await http.get(next.id, 10)).state).toBe('completed');
  });

  it('what a task prints lands in its log and never corrupts the result', async () => {
    await worker({ concurrency: 1 });
    const job = await http.submit('py.print', { lines: 50 });
    const done = await http.get(job.id, 10);
    expect(done).toMatchObject({ state: 'completed', result: { printed: true } });
    const log = await jobLog(job.id);
    expect(log).toContain('{"type": "done", "result": "fake 49"}');
    expect(log).toContain('straight to fd 1');
  });
});

describe('a worker running Python jobs', () => {
  it('drains a running Python job on SIGTERM and exits 0', async () => {
    const w = await worker({ concurrency: 1, graceMs: 10_000 });
    const job = await http.submit('py.mark', {
      file: join(dir, 'marks'),
      token: 'drain',
      ms: 1500,
    });
    await http.until(job.id, (v) => v.state === 'running');
    const sentAt = Date.now();
    const code = await w.stop('SIGTERM');
    console.log(
      `SIGTERM with a 1.5 s Python job running: exited ${code} after ${Date.now() - sentAt} ms`,
    );
    expect(code).toBe(0);
    expect(await http.get(job.id)).toMatchObject({
      state: 'completed',
      result: { token: 'drain' },
    });
    expect(executorPids()).toEqual([]);
  });

  it('killed with SIGKILL, leaves no Python executor burning CPU', async () => {
    const w = await worker({ concurrency: 2 });
    const jobs = await Promise.all(
      ['a', 'b'].map((token) =>
        http.submit('py.mark', { file: join(dir, 'marks'), token, ms: 60_000 }),
      ),
    );
    for (const job of jobs) await http.until(job.id, (v) => v.state === 'running');
    expect(executorPids().length).toBe(2);
    await w.stop('SIGKILL');
    const gone = await waitFor(() => executorPids().length === 0, 3000);
    console.log(
      `worker SIGKILL with 2 Python jobs burning CPU: executors gone ${gone} ms after the worker`,
    );
  });
});

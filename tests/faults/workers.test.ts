import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { JobView } from '@offload/contract';
import { createRedis, offloadKeys } from '@offload/queue';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startApi, type TestApi } from '../support/api-server.ts';
import { completions } from '../support/bull-events.ts';
import { client } from '../support/http.ts';
import {
  type RunningProcess,
  startWorkerProcess,
  testPrefix,
  type WorkerProcessEnv,
} from '../support/processes.ts';
import { testRedis } from '../support/redis-url.ts';
import { registry } from '../support/test-tasks.ts';

/**
 * Worker processes killed, drained and fed misbehaving tasks. Real processes,
 * real signals, the shared test Redis under a fresh key prefix per test.
 */
const target = testRedis();
const admin = createRedis(target, 'worker');
let prefix: string;
let api: TestApi;
let http: ReturnType<typeof client>;
let dir: string;
const workers: RunningProcess[] = [];

async function worker(options: Partial<WorkerProcessEnv> = {}) {
  const started = await startWorkerProcess({ redis: target, prefix, testTasks: true, ...options });
  workers.push(started);
  return started;
}

beforeEach(async () => {
  prefix = testPrefix();
  api = await startApi({ redis: target, prefix, registry });
  http = client(api.url);
  dir = mkdtempSync(join(tmpdir(), 'offload-faults-'));
});
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.stop('SIGKILL')));
  await api.close();
  rmSync(dir, { recursive: true, force: true });
});
afterAll(() => admin.disconnect());

const ms = (iso: string | null) => Date.parse(iso as string);

/** How many times each job's task started, from what the tasks wrote. */
function executions(file: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const token of readFileSync(file, 'utf8').split('\n').filter(Boolean)) {
    counts.set(token, (counts.get(token) ?? 0) + 1);
  }
  return counts;
}

describe('a worker killed with SIGKILL while it runs jobs', () => {
  it('has another worker take its jobs within lock + stall check + 2 s, each completed once', async () => {
    const file = join(dir, 'executions');
    const victim = await worker({ concurrency: 2 });
    // Two 15 s jobs, both held by the victim; the survivor joins while they run (its start takes seconds on a loaded machine).
    const jobs: JobView[] = [];
    for (let i = 0; i < 2; i++) {
      jobs.push(
        await http.submit('test.mark', { file, token: `j${i}`, ms: 15_000 }, { timeoutMs: 30_000 }),
      );
    }
    for (const job of jobs) await http.until(job.id, (v) => v.state === 'running');
    const survivor = await worker({ concurrency: 2 });
    const killedAt = Date.now();
    await victim.stop('SIGKILL');
    for (const job of jobs) expect((await http.get(job.id)).state).toBe('running');

    // Jobs submitted after the kill keep flowing through the survivor.
    for (let i = 2; i < 6; i++) {
      jobs.push(await http.submit('test.mark', { file, token: `j${i}`, ms: 100 }));
    }
    const done: JobView[] = [];
    for (const job of jobs) {
      done.push(await http.until(job.id, (v) => v.state === 'completed', 40_000));
    }

    const killed = done.filter((v) => ms(v.startedAt) > killedAt && v.attempts.made > 1);
    const recoveryMs = Math.max(...killed.map((v) => ms(v.startedAt) - killedAt));
    const completed = await completions(admin, prefix);
    const ran = executions(file);
    console.log(
      `worker SIGKILL: ${killed.length} held jobs restarted on the survivor ` +
        `${(recoveryMs / 1000).toFixed(1)} s after the kill (bound: 5 s lock + 2.5 s stall check + 2 s); ` +
        `${done.length} of ${done.length} completed, each recorded ${[...new Set(completed.values())].join('/')} time(s); ` +
        `${[...ran.values()].filter((n) => n > 1).length} ran twice (at-least-once)`,
    );
    expect(killed.map((v) => v.id).sort()).toEqual([jobs[0]?.id, jobs[1]?.id].sort());
    expect(recoveryMs).toBeLessThan(5000 + 2500 + 2000);
    for (const view of done) {
      expect(completed.get(view.id)).toBe(1);
      expect(view.result).toEqual({ token: `j${done.indexOf(view)}` });
    }
    expect(survivor.child.exitCode).toBeNull();
  });
});

describe('a CPU-heavy job', () => {
  it('burns 60 s in one attempt, with no lost lock and no stall', async () => {
    const [a, b] = [await worker({ concurrency: 1 }), await worker({ concurrency: 1 })];
    const job = await http.submit('cpu.burn', { ms: 60_000 }, { timeoutMs: 90_000 });
    const done = await http.until(job.id, (v) => v.state === 'completed', 90_000);
    const entries = (await admin.xrange(
      offloadKeys(prefix).bullKey('default', 'events'),
      '-',
      '+',
    )) as [string, string[]][];
    const stalls = entries.filter(([, fields]) => fields.includes('stalled')).length;
    const logs = a.output() + b.output();
    console.log(
      `60 s cpu.burn: completed in ${((ms(done.finishedAt) - ms(done.startedAt)) / 1000).toFixed(1)} s, ` +
        `attempts ${done.attempts.made}, stalled events ${stalls}`,
    );
    expect(done.attempts.made).toBe(1);
    expect(stalls).toBe(0);
    expect(logs).not.toMatch(/missing lock|stalled|lock mismatch/i);
  });
});

describe('graceful drain on SIGTERM', () => {
  it('lets the running job finish, takes nothing new, and exits 0', async () => {
    const w = await worker({ concurrency: 1, graceMs: 10_000 });
    const running = await http.submit('cpu.burn', { ms: 1500 });
    const waiting = await http.submit('test.echo', { value: 'later' });
    await http.until(running.id, (v) => v.state === 'running');
    const sentAt = Date.now();
    const code = await w.stop('SIGTERM');
    console.log(`SIGTERM with a 1.5 s job running: exited ${code} after ${Date.now() - sentAt} ms`);
    expect(code).toBe(0);
    expect((await http.get(running.id)).state).toBe('completed');
    expect((await http.get(waiting.id)).state).toBe('queued');
  });

  it('exits 0 at the grace with a longer job, which is back in the queue at once', async () => {
    const w = await worker({ concurrency: 1, graceMs: 500 });
    const job = await http.submit('cpu.burn', { ms: 20_000 });
    await http.until(job.id, (v) => v.state === 'running');
    const sentAt = Date.now();
    const code = await w.stop('SIGTERM');
    const exitMs = Date.now() - sentAt;
    expect(code).toBe(0);
    expect((await http.get(job.id)).state).toBe('queued');
    // Another worker takes it up straight away, not after a stall timeout.
    await worker({ concurrency: 1 });
    const rerun = await http.until(job.id, (v) => v.state === 'running', 3000);
    console.log(
      `SIGTERM with a 20 s job and a 0.5 s grace: exited 0 after ${exitMs} ms; ` +
        `the next worker started it ${ms(rerun.startedAt) - sentAt - exitMs} ms after the exit`,
    );
    expect(exitMs).toBeLessThan(5000);
  });
});

describe('tasks that misbehave', () => {
  it.each([
    ['loops forever', 'test.loop'],
    ['returns a promise that never settles', 'test.hang'],
  ])('a task that %s is killed at its time limit and the executor replaced', async (_, task) => {
    await worker({ concurrency: 1 });
    const job = await http.submit(task, {}, { timeoutMs: 1500 });
    const failed = await http.until(job.id, (v) => v.state === 'failed');
    const ran = ms(failed.finishedAt) - ms(failed.startedAt);
    console.log(`${task} with timeoutMs 1500: killed after ${ran} ms`);
    expect(failed).toMatchObject({ error: { code: 'timeout' }, attempts: { made: 1 } });
    expect(Math.abs(ran - 1500)).toBeLessThan(1000);
    const next = await http.submit('test.echo', { value: 'next' });
    expect((await http.get(next.id, 10)).state).toBe('completed');
  });

  it.each([
    ['calls process.exit', 'test.exit', 'task_error', /exit code 3/],
    ['throws from a timer', 'test.timer-throw', 'task_error', /thrown from a timer/],
  ])(
    'a task that %s fails each attempt clearly, is retried, and the worker lives',
    async (_, task, code, message) => {
      const w = await worker({ concurrency: 1 });
      const job = await http.submit(task, {}, { attempts: 2 });
      const failed = await http.until(job.id, (v) => v.state === 'failed', 40_000);
      console.log(
        `${task}: failed with ${failed.error?.code} after ${failed.attempts.made} attempts: ${failed.error?.message}`,
      );
      expect(failed.error?.code).toBe(code);
      expect(failed.error?.message).toMatch(message);
      expect(failed.attempts).toEqual({ made: 2, max: 2 });
      expect(w.child.exitCode).toBeNull();
      const next = await http.submit('test.echo', { value: 'alive' });
      expect((await http.get(next.id, 10)).state).toBe('completed');
    },
  );

  it('stops an executor at its memory cap, retries, and the worker process lives', async () => {
    const w = await worker({ concurrency: 1, env: { WORKER_EXECUTOR_MEMORY_MB: '64' } });
    const job = await http.submit('test.heap', {}, { attempts: 2 });
    const failed = await http.until(job.id, (v) => v.state === 'failed', 30_000);
    const status = readFileSync(`/proc/${w.child.pid}/status`, 'utf8');
    const rssMb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]) / 1024;
    console.log(
      `test.heap with executors capped at 64 MB: failed with ${failed.error?.code} after ` +
        `${failed.attempts.made} attempts (${failed.error?.message}); worker RSS afterwards ${rssMb.toFixed(0)} MB`,
    );
    expect(failed.error).toMatchObject({
      code: 'out_of_memory',
      message: expect.stringMatching(/out of memory/),
    });
    expect(failed.attempts).toEqual({ made: 2, max: 2 });
    expect(w.child.exitCode).toBeNull();
    expect(rssMb).toBeLessThan(400);
    const next = await http.submit('test.echo', { value: 'alive' });
    expect((await http.get(next.id, 10)).state).toBe('completed');
  });

  it('lets 100 good jobs through past a poison job that always fails', async () => {
    await worker({ concurrency: 2 });
    const poison = await http.submit('test.throw', {}, { attempts: 3 });
    const good = await Promise.all(
      Array.from({ length: 100 }, (_, i) => http.submit('test.echo', { value: `good ${i}` })),
    );
    const started = Date.now();
    const results = await Promise.all(
      good.map((job) => http.until(job.id, (v) => v.state === 'completed')),
    );
    const failed = await http.until(poison.id, (v) => v.state === 'failed');
    console.log(
      `poison job: ${results.length} of 100 good jobs completed in ${Date.now() - started} ms; ` +
        `the poison failed after ${failed.attempts.made} attempts`,
    );
    expect(results.every((v, i) => (v.result as { value: string }).value === `good ${i}`)).toBe(
      true,
    );
    expect(failed).toMatchObject({ error: { code: 'task_error' }, attempts: { made: 3, max: 3 } });
  });
});

import { readFileSync } from 'node:fs';
import type { JobView } from '@offload/contract';
import { createRedis, offloadKeys, readFleet } from '@offload/queue';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type TestApi } from '../support/api-server.ts';
import { client } from '../support/http.ts';
import { type RunningProcess, startWorkerProcess, testPrefix } from '../support/processes.ts';
import { testRedis } from '../support/redis-url.ts';
import { registry } from '../support/test-tasks.ts';

/**
 * The whole path with real parts: HTTP API on a real port, worker processes
 * started as `npm run worker` starts them, a real Redis.
 */
const target = testRedis();
let api: TestApi;
let http: ReturnType<typeof client>;
let prefix: string;
const workers: RunningProcess[] = [];

async function worker(
  options: { concurrency?: number; queues?: string; graceMs?: number; testTasks?: boolean } = {},
) {
  const started = await startWorkerProcess({ redis: target, prefix, testTasks: true, ...options });
  workers.push(started);
  return started;
}

beforeAll(async () => {
  prefix = testPrefix();
  api = await startApi({ redis: target, prefix, registry });
  http = client(api.url);
});
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.stop('SIGKILL')));
  // A fresh prefix per test, so no job of one test reaches the next one's workers.
  await api.close();
  prefix = testPrefix();
  api = await startApi({ redis: target, prefix, registry });
  http = client(api.url);
});
afterAll(() => api.close());

const ms = (iso: string | null) => Date.parse(iso as string);

describe('a job from POST to result', () => {
  it('counts the primes below ten million on a real worker, and the long-poll returns the result', async () => {
    await worker({ testTasks: false });
    const res = await http.call('POST', '/v1/jobs', {
      task: 'primes.count',
      input: { below: 10_000_000 },
    });
    expect(res.status).toBe(202);
    expect(res.headers.get('location')).toBe(`/v1/jobs/${res.body.id}`);
    const done = await http.get(res.body.id, 30);
    expect(done).toMatchObject({
      state: 'completed',
      result: { count: 664_579 },
      progress: 100,
      error: null,
      attempts: { made: 1, max: 3 },
    });
    expect(ms(done.startedAt)).toBeGreaterThanOrEqual(ms(done.createdAt));
    expect(ms(done.finishedAt)).toBeGreaterThanOrEqual(ms(done.startedAt));
  });

  it('reports progress while a long task runs', async () => {
    await worker();
    const job = await http.submit('cpu.burn', { ms: 1500 });
    const midway = await http.until(job.id, (v) => v.state === 'running' && v.progress > 0);
    expect(midway.progress).toBeLessThan(100);
    expect(midway.startedAt).not.toBeNull();
    expect(midway.attempts.made).toBe(1);
    expect((await http.get(job.id, 10)).state).toBe('completed');
  });
});

describe('parallel execution and a responsive API (the seed scenario)', () => {
  it('runs two 3 s cpu.burn jobs at the same time while the API answers in well under 200 ms', async () => {
    await worker({ concurrency: 2 });
    const a = await http.submit('cpu.burn', { ms: 3000 });
    const b = await http.submit('cpu.burn', { ms: 3000 });
    await http.until(a.id, (v) => v.state === 'running');
    await http.until(b.id, (v) => v.state === 'running');

    // Both executors are burning now: time the API's answers.
    const latencies: number[] = [];
    for (let i = 0; i < 20; i++) {
      for (const path of ['/healthz', `/v1/jobs/${a.id}`]) {
        const started = performance.now();
        const res = await fetch(`${api.url}${path}`);
        await res.arrayBuffer();
        latencies.push(performance.now() - started);
        expect(res.status).toBe(200);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    latencies.sort((x, y) => x - y);
    const worst = latencies[latencies.length - 1] as number;
    console.log(
      `API under full CPU load: median ${latencies[latencies.length >> 1]?.toFixed(1)} ms, worst ${worst.toFixed(1)} ms`,
    );
    expect(worst).toBeLessThan(200);

    const [doneA, doneB] = [await http.get(a.id, 30), await http.get(b.id, 30)];
    expect(doneA.state).toBe('completed');
    expect(doneB.state).toBe('completed');
    // Their running intervals overlap: each started before the other finished.
    expect(ms(doneA.startedAt)).toBeLessThan(ms(doneB.finishedAt));
    expect(ms(doneB.startedAt)).toBeLessThan(ms(doneA.finishedAt));
  });

  it('never runs more jobs at once than a worker has executors', async () => {
    await worker({ concurrency: 1 });
    const a = await http.submit('cpu.burn', { ms: 800 });
    const b = await http.submit('cpu.burn', { ms: 800 });
    await http.until(a.id, (v) => v.state === 'running');
    expect((await http.get(b.id)).state).toBe('queued');
    const [doneA, doneB] = [await http.get(a.id, 20), await http.get(b.id, 20)];
    expect(ms(doneB.startedAt)).toBeGreaterThanOrEqual(ms(doneA.finishedAt));
  });
});

describe('time limits, failures and retries', () => {
  it('fails a job at its timeout with code timeout, without retrying, and the worker takes the next job', async () => {
    await worker({ concurrency: 1 });
    const job = await http.submit('cpu.burn', { ms: 10_000 }, { timeoutMs: 1000, attempts: 3 });
    const failed = await http.get(job.id, 20);
    expect(failed).toMatchObject({
      state: 'failed',
      error: { code: 'timeout' },
      attempts: { made: 1 },
    });
    const ran = ms(failed.finishedAt) - ms(failed.startedAt);
    console.log(`timeoutMs 1000: the attempt ran ${ran} ms`);
    expect(ran).toBeGreaterThanOrEqual(900);
    expect(ran).toBeLessThan(2500);
    const next = await http.submit('test.echo', { value: 'still here' });
    expect(await http.get(next.id, 10)).toMatchObject({
      state: 'completed',
      result: { value: 'still here' },
    });
  });

  it('retries a throwing task per its attempts, then fails it with task_error; the worker lives on', async () => {
    const w = await worker({ concurrency: 1 });
    const job = await http.submit('test.throw', {});
    const failed = await http.until(job.id, (v) => v.state === 'failed');
    expect(failed).toMatchObject({
      error: { code: 'task_error', message: 'boom from test.throw' },
      attempts: { made: 3, max: 3 },
    });
    expect(w.child.exitCode).toBeNull();
    const next = await http.submit('test.echo', { value: 'alive' });
    expect((await http.get(next.id, 10)).state).toBe('completed');
  });

  it('never shows a retried job as failed before its last attempt, however often it is read', async () => {
    await worker({ concurrency: 1 });
    const job = await http.submit('test.throw', {}, { attempts: 6 });
    const seen: JobView[] = [];
    let done = false;
    const reader = async () => {
      while (!done) {
        const view = await http.get(job.id);
        seen.push(view);
        if (view.state === 'failed' && view.attempts.made === 6) done = true;
      }
    };
    await Promise.race([
      Promise.all([reader(), reader(), reader(), reader()]),
      new Promise((_, reject) => setTimeout(() => reject(new Error('never failed')), 20_000)),
    ]).finally(() => {
      done = true;
    });
    const early = seen.filter((v) => v.state === 'failed' && v.attempts.made < 6);
    expect(early).toEqual([]);
    expect(seen.length).toBeGreaterThan(20);
  });
});

describe('cancel', () => {
  it('cancels a queued job: it never runs', async () => {
    await worker({ concurrency: 1 });
    const blocker = await http.submit('cpu.burn', { ms: 1500 });
    const queued = await http.submit('test.echo', { value: 'never' });
    await http.until(blocker.id, (v) => v.state === 'running');
    const res = await http.cancel(queued.id);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ state: 'canceled', error: { code: 'canceled' } });
    await http.get(blocker.id, 10);
    // Give the worker time to take it, were it still queued.
    await new Promise((r) => setTimeout(r, 500));
    const view = await http.get(queued.id);
    expect(view).toMatchObject({
      state: 'canceled',
      startedAt: null,
      result: null,
      attempts: { made: 0 },
    });
  });

  it('cancels a running job: its executor is stopped within a second and the next job runs', async () => {
    await worker({ concurrency: 1 });
    const job = await http.submit('cpu.burn', { ms: 60_000 });
    await http.until(job.id, (v) => v.state === 'running');
    const canceledAt = Date.now();
    const res = await http.cancel(job.id);
    expect(res.status).toBe(200);
    expect(res.body.state).toBe('canceled');
    // With one executor, the next job can only start once the burning one was killed.
    const next = await http.submit('test.echo', { value: 'next' });
    const done = await http.get(next.id, 10);
    expect(done.state).toBe('completed');
    console.log(
      `cancel of a running job: next job started ${ms(done.startedAt) - canceledAt} ms later`,
    );
    expect(ms(done.startedAt) - canceledAt).toBeLessThan(1000);
    expect((await http.get(job.id)).state).toBe('canceled');
    expect((await http.cancel(job.id)).status).toBe(200);
  });

  it('does not re-run a canceled job whose worker was killed while running it', async () => {
    const lost = await worker({ concurrency: 1 });
    const job = await http.submit('cpu.burn', { ms: 60_000 });
    await http.until(job.id, (v) => v.state === 'running');
    await lost.stop('SIGKILL');
    expect((await http.cancel(job.id)).body.state).toBe('canceled');
    // The job's lock expires and the stalled check hands it to the next worker, which must not run it.
    const next = await worker({ concurrency: 1 });
    await next.waitForLine(new RegExp(`"jobId":"${job.id}".*Canceled before it started`), 30_000);
    expect((await http.get(job.id)).state).toBe('canceled');
  });

  it('refuses to cancel a finished job with 409', async () => {
    await worker();
    const job = await http.submit('test.echo', { value: 'done' });
    await http.get(job.id, 10);
    const res = await http.cancel(job.id);
    expect(res.status).toBe(409);
    expect(res.body.code).toBe('job_finished');
  });
});

describe('the per-tenant quota', () => {
  it('frees the place of a finished job at once, so a tenant at its quota can submit again', async () => {
    const limited = await startApi({ redis: target, prefix, registry, maxOpenJobsPerTenant: 2 });
    try {
      const limitedHttp = client(limited.url);
      await worker({ concurrency: 2 });
      const first = await Promise.all(
        [0, 1].map(() => limitedHttp.submit('test.sleep', { ms: 300 })),
      );
      const over = await limitedHttp.call('POST', '/v1/jobs', {
        task: 'test.echo',
        input: { value: 'x' },
      });
      expect(over.status).toBe(429);
      expect(over.body.code).toBe('queue_quota_exceeded');
      for (const job of first) expect((await limitedHttp.get(job.id, 10)).state).toBe('completed');
      // Twice over, with no pause: each finish is taken off the count by the worker itself.
      for (let round = 0; round < 2; round++) {
        const next = await Promise.all(
          [0, 1].map(() => limitedHttp.submit('test.echo', { value: 'y' })),
        );
        for (const job of next) expect((await limitedHttp.get(job.id, 10)).state).toBe('completed');
      }
    } finally {
      await limited.close();
    }
  });
});

describe('the fleet', () => {
  it('shares one queue between two worker processes', async () => {
    const one = await worker({ concurrency: 1 });
    const two = await worker({ concurrency: 1 });
    const jobs = await Promise.all(
      Array.from({ length: 6 }, () => http.submit('cpu.burn', { ms: 400 })),
    );
    for (const job of jobs) expect((await http.get(job.id, 20)).state).toBe('completed');
    const ranOn = (w: RunningProcess) => jobs.filter((j) => w.output().includes(j.id)).length;
    // A worker's log line reaches this process through a pipe, possibly after the job's result.
    await expect.poll(() => ranOn(one) + ranOn(two), { timeout: 2000 }).toBe(6);
    expect(ranOn(one)).toBeGreaterThan(0);
    expect(ranOn(two)).toBeGreaterThan(0);
    const ready = await http.call('GET', '/readyz');
    expect(ready.body).toMatchObject({ status: 'ready', workers: 2 });
  });

  it('publishes a heartbeat with what each worker runs, as soon as a job starts', async () => {
    const w = await worker({ concurrency: 2 });
    const job = await http.submit('cpu.burn', { ms: 8000 });
    await http.until(job.id, (v) => v.state === 'running');
    const redis = createRedis(target, 'worker');
    try {
      let beat: Awaited<ReturnType<typeof readFleet>>[number] | undefined;
      // Well before the next regular beat (every 5 s): a start is published on its own.
      const deadline = Date.now() + 1500;
      while (!beat?.running.length && Date.now() < deadline) {
        [beat] = await readFleet(redis, offloadKeys(prefix));
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(beat).toMatchObject({
        pid: w.child.pid,
        host: expect.any(String),
        queues: expect.arrayContaining(['default']),
        concurrency: 2,
        running: [{ jobId: job.id, task: 'cpu.burn', startedAt: expect.any(String) }],
        jobsDone: expect.any(Number),
        startedAt: expect.any(String),
      });
      // And its end, the same way.
      await http.call('DELETE', `/v1/jobs/${job.id}`);
      await expect
        .poll(async () => (await readFleet(redis, offloadKeys(prefix)))[0], { timeout: 1500 })
        .toMatchObject({ running: [], jobsDone: 1 });
    } finally {
      redis.disconnect();
    }
  });

  it('serves only the queues named in WORKER_QUEUES', async () => {
    await worker({ queues: 'test-other' });
    const other = await http.submit('test.echo-other', { value: 'other' });
    const onDefault = await http.submit('test.echo', { value: 'default' });
    expect((await http.get(other.id, 10)).state).toBe('completed');
    expect((await http.get(onDefault.id, 0.5)).state).toBe('queued');
  });

  it('runs its executors at a lower CPU priority than the API', async () => {
    const w = await worker({ concurrency: 2 });
    const pid = w.child.pid as number;
    const niceOf = (stat: string) => Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
    const { readdirSync } = await import('node:fs');
    const threads = readdirSync(`/proc/${pid}/task`);
    const nices = threads.map((tid) =>
      niceOf(readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8')),
    );
    // The main thread and every thread it started afterwards (the executors among them) run at nice 10.
    expect(niceOf(readFileSync(`/proc/${pid}/stat`, 'utf8'))).toBe(10);
    expect(nices.filter((n) => n === 10).length).toBeGreaterThanOrEqual(3);
  });
});

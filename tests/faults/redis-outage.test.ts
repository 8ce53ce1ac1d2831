import type { JobView } from '@offload/contract';
import { afterEach, describe, expect, it } from 'vitest';
import { startApi, type TestApi } from '../support/api-server.ts';
import { client } from '../support/http.ts';
import { type KillableRedis, startKillableRedis } from '../support/private-redis.ts';
import {
  type RunningProcess,
  startNodeProcess,
  startWorkerProcess,
  testPrefix,
} from '../support/processes.ts';
import { registry } from '../support/test-tasks.ts';

/**
 * Redis is killed, paused and misconfigured under a running API and worker.
 * Each scenario has a redis-server of its own; the shared one is never touched.
 */
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function stack(redis: KillableRedis, { worker = true } = {}) {
  const prefix = testPrefix();
  const api: TestApi = await startApi({ redis: { url: redis.url }, prefix, registry });
  cleanups.push(() => api.close());
  let w: RunningProcess | undefined;
  if (worker) {
    w = await startWorkerProcess({
      redis: { url: redis.url },
      prefix,
      concurrency: 2,
      testTasks: true,
    });
    const started = w;
    cleanups.push(() => started.stop('SIGKILL'));
  }
  return { api, prefix, http: client(api.url), worker: w };
}

async function killable() {
  const redis = await startKillableRedis({ appendOnly: true });
  cleanups.push(() => redis.close());
  return redis;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function timed<T>(work: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const start = performance.now();
  const value = await work();
  return { ms: performance.now() - start, value };
}

describe('Redis killed under a stream of submits', () => {
  it('keeps every job that got a 202, answers 503 fast while down, and 2xx soon after', async () => {
    const redis = await killable();
    const { http } = await stack(redis);

    const accepted: string[] = [];
    const downAnswers: number[] = [];
    let phase = 'before' as 'before' | 'down' | 'back';
    let killedAt = 0;
    let restartedAt = 0;
    let firstAcceptedAfterRestart = 0;
    let stop = false;
    let serverErrors = 0;

    // A steady stream of submits, one every 10 ms, for the whole scenario.
    const stream = (async () => {
      let n = 0;
      while (!stop) {
        const sentAt = performance.now();
        const res = await http.call('POST', '/v1/jobs', {
          task: 'test.echo',
          input: { value: `job ${n++}` },
        });
        const tookMs = performance.now() - sentAt;
        if (res.status === 202) {
          accepted.push(res.body.id);
          if (phase === 'back' && firstAcceptedAfterRestart === 0)
            firstAcceptedAfterRestart = performance.now();
        } else if (res.status === 503) {
          expect(res.headers.get('content-type')).toContain('application/problem+json');
          expect(res.body.code).toBe('redis_unavailable');
          // Answers sent after the kill is known and before the restart: the outage proper.
          if (phase === 'down' && sentAt > killedAt) downAnswers.push(tookMs);
        } else {
          serverErrors++;
        }
        await sleep(10);
      }
    })();

    await sleep(1500);
    killedAt = performance.now();
    await redis.kill();
    phase = 'down';
    await sleep(3000);
    await redis.restart();
    restartedAt = performance.now();
    phase = 'back';
    while (firstAcceptedAfterRestart === 0 && performance.now() - restartedAt < 10_000) {
      await sleep(20);
    }
    await sleep(1000);
    stop = true;
    await stream;

    // Every accepted job is still there and completes.
    const views: JobView[] = [];
    for (const id of accepted) views.push(await http.until(id, (v) => v.state === 'completed'));
    const lost = views.filter((v) => v.state !== 'completed').length;
    const worst503 = Math.max(...downAnswers);
    const backAfter = firstAcceptedAfterRestart - restartedAt;
    console.log(
      `Redis SIGKILL: lost ${lost} of ${accepted.length} accepted jobs; ` +
        `${downAnswers.length} submits answered 503 while down, worst in ${worst503.toFixed(1)} ms; ` +
        `first 202 ${backAfter.toFixed(0)} ms after Redis returned`,
    );
    expect(serverErrors).toBe(0);
    expect(lost).toBe(0);
    expect(accepted.length).toBeGreaterThan(50);
    expect(downAnswers.length).toBeGreaterThan(20);
    expect(worst503).toBeLessThan(100);
    expect(firstAcceptedAfterRestart).toBeGreaterThan(0);
    expect(backAfter).toBeLessThan(2000);
  });
});

describe('an idle worker and a Redis that goes away', () => {
  it('takes new jobs within 2 s of Redis returning after 20 s down, without a restart', async () => {
    const redis = await killable();
    const { http, worker } = await stack(redis);
    // The worker has served a job and sits idle on its blocking read.
    const first = await http.submit('test.echo', { value: 'before' });
    expect((await http.get(first.id, 10)).state).toBe('completed');

    await redis.kill();
    await sleep(20_000);
    await redis.restart();
    const back = Date.now();
    // Submit as soon as the API can, then time from Redis' return to the job's completion.
    let job: JobView | undefined;
    while (!job) {
      const res = await http.call('POST', '/v1/jobs', {
        task: 'test.echo',
        input: { value: 'after' },
      });
      if (res.status === 202) job = res.body;
      else await sleep(20);
    }
    const done = await http.until(job.id, (v) => v.state === 'completed', 10_000);
    const tookMs = Date.parse(done.finishedAt as string) - back;
    console.log(
      `idle worker after 20 s without Redis: a new job completed ${tookMs.toFixed(0)} ms after Redis returned`,
    );
    expect(tookMs).toBeLessThan(2000);
    expect(worker?.child.exitCode).toBeNull();
  });
});

describe('a Redis that stops answering', () => {
  it('answers 503 instead of hanging while Redis is paused past the API timeout', async () => {
    const redis = await killable();
    const { http } = await stack(redis, { worker: false });
    const job = await http.submit('test.echo', { value: 'x' });

    await redis.admin.call('CLIENT', 'PAUSE', '3000', 'ALL');
    const submit = await timed(() =>
      http.call('POST', '/v1/jobs', { task: 'test.echo', input: { value: 'y' } }),
    );
    const read = await timed(() => http.call('GET', `/v1/jobs/${job.id}`));
    console.log(
      `Redis paused 3 s: POST answered ${submit.value.status} in ${submit.ms.toFixed(0)} ms, ` +
        `GET answered ${read.value.status} in ${read.ms.toFixed(0)} ms`,
    );
    for (const { ms, value } of [submit, read]) {
      expect(value.status).toBe(503);
      expect(value.body.code).toBe('redis_unavailable');
      expect(ms).toBeLessThan(2500);
    }
    // Once the pause ends the same API answers normally again.
    await sleep(1500);
    expect((await http.call('GET', `/v1/jobs/${job.id}`)).status).toBe(200);
  });
});

describe('a Redis that may evict keys', () => {
  it('refuses to run on it: the worker will not start, the API is not ready and refuses submits', async () => {
    const redis = await killable();
    await redis.admin.config('SET', 'maxmemory-policy', 'allkeys-lru');
    const prefix = testPrefix();
    const worker = startNodeProcess('apps/worker/src/index.ts', {
      REDIS_URL: redis.url,
      OFFLOAD_PREFIX: prefix,
      WORKER_CONCURRENCY: '1',
    });
    cleanups.push(() => worker.stop('SIGKILL'));
    expect(await worker.exited).toBe(1);
    expect(worker.output()).toMatch(/maxmemory-policy is \\"allkeys-lru\\".*noeviction/);

    const api = await stack(redis, { worker: false });
    const { http } = api;
    const ready = await http.call('GET', '/readyz');
    expect(ready.status).toBe(503);
    expect(ready.body).toMatchObject({
      status: 'misconfigured',
      problem: expect.stringContaining('allkeys-lru'),
    });
    const submit = await http.call('POST', '/v1/jobs', {
      task: 'test.echo',
      input: { value: 'x' },
    });
    expect(submit.status).toBe(503);
    expect(submit.body.code).toBe('redis_misconfigured');

    // Fixed while the API runs: the next readiness check notices, and jobs flow again.
    await redis.admin.config('SET', 'maxmemory-policy', 'noeviction');
    expect((await http.call('GET', '/readyz')).status).toBe(200);
    const w2 = await startWorkerProcess({
      redis: { url: redis.url },
      prefix: api.prefix,
      concurrency: 1,
      testTasks: true,
    });
    cleanups.push(() => w2.stop('SIGKILL'));
    const job = await http.submit('test.echo', { value: 'safe now' });
    expect((await http.get(job.id, 10)).state).toBe('completed');
  });
});

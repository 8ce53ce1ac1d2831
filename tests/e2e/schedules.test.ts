import type { JobSummary } from '@offload/contract';
import { createRedis, offloadKeys } from '@offload/queue';
import { afterEach, describe, expect, it } from 'vitest';
import { type ApiProcess, startApiProcess } from '../abuse/api-process.ts';
import { client } from '../support/http.ts';
import {
  type RunningProcess,
  startWorkerProcess,
  testPrefix,
  waitFor,
} from '../support/processes.ts';
import { testRedis } from '../support/redis-url.ts';

/**
 * Schedules firing for real: API processes (each runs the firing loop) and
 * worker processes on one Redis, a schedule every second, and every job
 * the tenant then has, read through the API.
 */
const target = testRedis();
const started: { stop(): Promise<unknown> }[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((p) => p.stop()));
});

async function apiProcess(prefix: string): Promise<ApiProcess> {
  const api = await startApiProcess({ OFFLOAD_PREFIX: prefix });
  started.push(api);
  return api;
}
async function workerProcess(prefix: string): Promise<RunningProcess> {
  const worker = await startWorkerProcess({ redis: target, prefix, concurrency: 1 });
  started.push({ stop: () => worker.stop('SIGKILL') });
  return worker;
}
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Every job of the tenant, oldest first. */
async function allJobs(url: string): Promise<JobSummary[]> {
  const jobs: JobSummary[] = [];
  let cursor: string | null = null;
  do {
    const res = await fetch(`${url}/v1/jobs?limit=100${cursor ? `&cursor=${cursor}` : ''}`);
    const page = (await res.json()) as { jobs: JobSummary[]; nextCursor: string | null };
    jobs.push(...page.jobs);
    cursor = page.nextCursor;
  } while (cursor);
  return jobs.sort((a, b) => Date.parse(a.createdAt) - Date.parse(b.createdAt));
}

const EVERY_MS = 1000;

/**
 * The firings a schedule made a job for, oldest first, as the schedule keeps
 * them (firing time → job id, the record behind `recentJobs`), each firing
 * counted from the schedule's creation: the k-th fires at createdAt + k·EVERY_MS.
 * Jobs are matched to firings by this record, not by when they were created:
 * on a busy machine a firing's job may be created late, in the next second.
 */
async function firingsOf(
  prefix: string,
  schedule: { id: string; createdAt: number },
): Promise<{ k: number; jobId: string }[]> {
  const redis = createRedis(target, 'worker');
  try {
    const flat = await redis.zrange(
      offloadKeys(prefix).scheduleJobs(schedule.id),
      0,
      -1,
      'WITHSCORES',
    );
    const made: { k: number; jobId: string }[] = [];
    for (let i = 0; i < flat.length; i += 2) {
      const offset = Number(flat[i + 1]) - schedule.createdAt;
      expect(Math.abs(offset % EVERY_MS)).toBe(0);
      made.push({ k: offset / EVERY_MS, jobId: flat[i] as string });
    }
    return made;
  } finally {
    redis.disconnect();
  }
}
/**
 * The schedule's firings and the tenant's jobs read at one moment: read
 * again until no firing was made or left pending in between, so a job
 * whose firing is not yet recorded is never read.
 */
async function snapshot(prefix: string, url: string, schedule: { id: string; createdAt: number }) {
  const redis = createRedis(target, 'worker');
  try {
    for (;;) {
      const at = Date.now();
      const made = await firingsOf(prefix, schedule);
      const jobs = await allJobs(url);
      const pending = await redis.zcard(offloadKeys(prefix).schedulePending);
      const again = await firingsOf(prefix, schedule);
      if (pending === 0 && JSON.stringify(again) === JSON.stringify(made))
        return { at, made, jobs };
    }
  } finally {
    redis.disconnect();
  }
}
const range = (from: number, count: number) => Array.from({ length: count }, (_, i) => from + i);

async function createSchedule(url: string) {
  const res = await client(url).call('POST', '/v1/schedules', {
    task: 'primes.count',
    input: { below: 1000 },
    everyMs: EVERY_MS,
  });
  expect(res.status).toBe(201);
  return { id: res.body.id as string, createdAt: Date.parse(res.body.createdAt as string) };
}

describe('a schedule every second', () => {
  it('makes exactly one job per firing with two API and two worker processes, and none once deleted', async () => {
    const prefix = testPrefix();
    const [a, b] = await Promise.all([apiProcess(prefix), apiProcess(prefix)]);
    await Promise.all([workerProcess(prefix), workerProcess(prefix)]);
    const schedule = await createSchedule(a.url);
    await sleep(8 * EVERY_MS + 500);
    const { at, made, jobs } = await snapshot(prefix, a.url, schedule);
    const firings = Math.floor((at - schedule.createdAt) / EVERY_MS);
    console.log(
      `schedule every ${EVERY_MS} ms, 2 API + 2 worker processes: firings ${firings}, jobs ${jobs.length}, duplicates ${jobs.length - new Set(made.map((f) => f.k)).size}`,
    );
    // Every job of the tenant is the job of one firing, each firing has one job,
    // and the firings run from the first to the last before the delete: no gap.
    expect(jobs.map((job) => job.id).sort()).toEqual(made.map((f) => f.jobId).sort());
    expect(made.map((f) => f.k)).toEqual(range(1, made.length));
    // Each firing makes its job within a tick (200 ms) unless the machine is busy: two may be in flight.
    expect(jobs.length).toBeGreaterThanOrEqual(firings - 2);
    expect(jobs.length).toBeLessThanOrEqual(firings);

    // The jobs ran, on the workers.
    const http = client(a.url);
    for (const job of jobs) expect((await http.get(job.id, 20)).state).toBe('completed');

    // Deleted through the other API process: no firing after it.
    const deleted = await fetch(`${b.url}/v1/schedules/${schedule.id}`, { method: 'DELETE' });
    expect(deleted.status).toBe(204);
    await sleep(300); // a firing claimed just before the delete makes its job
    const atDelete = (await allJobs(a.url)).length;
    await sleep(2 * EVERY_MS);
    expect((await allJobs(a.url)).length).toBe(atDelete);
  });

  it('makes one job for the firings missed while every process was down, then keeps its cadence', async () => {
    const prefix = testPrefix();
    const first = await Promise.all([
      apiProcess(prefix),
      apiProcess(prefix),
      workerProcess(prefix),
    ]);
    const schedule = await createSchedule(first[0].url);
    await waitFor(async () => (await firingsOf(prefix, schedule)).length >= 2, 30_000);
    await Promise.all(first.map((p) => p.stop()));
    const downAt = Date.now();
    await sleep(2 * EVERY_MS + 500);
    const [api] = await Promise.all([apiProcess(prefix), workerProcess(prefix)]);
    const upAt = Date.now();
    // Until the catch-up job and two firings at the cadence after it.
    await waitFor(async () => {
      const ks = (await firingsOf(prefix, schedule)).map((f) => f.k);
      const jump = ks.findIndex((k, i) => i > 0 && k - (ks[i - 1] as number) > 1);
      return jump > 0 && ks.length - jump >= 2;
    }, 30_000);
    const { made, jobs } = await snapshot(prefix, api.url, schedule);
    expect(jobs.map((job) => job.id).sort()).toEqual(made.map((f) => f.jobId).sort());
    // Firings before the stop, each with its job; then one job for the earliest
    // firing missed while down, standing for all of them; then the firings after
    // the restart, each with its job: the firings run 1, 2, … m+1, then jump once.
    const ks = made.map((f) => f.k);
    const jump = ks.findIndex((k, i) => i > 0 && k - (ks[i - 1] as number) > 1);
    expect(jump).toBeGreaterThan(1);
    const catchUp = made[jump - 1] as { k: number; jobId: string };
    const cadence = made.slice(jump);
    const standsFor = (cadence[0]?.k as number) - catchUp.k;
    console.log(
      `missed while down: ${standsFor} firings (down ${upAt - downAt} ms); after restart: 1 catch-up job, then ${cadence.length} at the cadence`,
    );
    expect(ks.slice(0, jump)).toEqual(range(1, jump));
    expect(cadence.map((f) => f.k)).toEqual(range(cadence[0]?.k as number, cadence.length));
    expect(standsFor).toBeGreaterThanOrEqual(2);
    expect(cadence.length).toBeGreaterThanOrEqual(2);
    const createdAt = (jobId: string) =>
      Date.parse(jobs.find((job) => job.id === jobId)?.createdAt as string);
    expect(createdAt(catchUp.jobId)).toBeGreaterThanOrEqual(downAt);
    expect(createdAt((made[jump - 2] as { jobId: string }).jobId)).toBeLessThan(downAt);
  });

  it('submits a firing claimed by a process that died before submitting, once, and never again one whose job exists', async () => {
    const prefix = testPrefix();
    const api = await apiProcess(prefix);
    const schedule = await createSchedule(api.url);
    await waitFor(async () => (await allJobs(api.url)).length >= 1, 15_000);
    const earlier = await allJobs(api.url);
    // As a process that claimed two firings and died would leave them: one before its
    // submit, one after its submit but before it settled (its job exists).
    const keys = offloadKeys(prefix);
    const redis = createRedis(target, 'worker');
    const claimedAt = Date.now() - 60_000;
    await redis.zadd(
      keys.schedulePending,
      claimedAt,
      `${schedule.id} ${schedule.createdAt - 10 * EVERY_MS}`,
      claimedAt,
      `${schedule.id} ${schedule.createdAt + EVERY_MS}`,
    );
    await waitFor(async () => (await redis.zcard(keys.schedulePending)) === 0, 15_000);
    redis.disconnect();
    const { made, jobs } = await snapshot(prefix, api.url, schedule);
    // The lost firing made one new job; the firing settled late answered its
    // existing job; every other firing has its own job, and no job is extra.
    expect(jobs.map((job) => job.id).sort()).toEqual(made.map((f) => f.jobId).sort());
    const [lost, ...regular] = made;
    expect(lost?.k).toBe(-10);
    expect(earlier.map((job) => job.id)).not.toContain(lost?.jobId);
    expect(regular.map((f) => f.k)).toEqual(range(1, regular.length));
    expect(regular[0]?.jobId).toBe(earlier[0]?.id);
    console.log(
      `recovered pending firings: 2 (one never submitted, one submitted but not settled), new jobs 1, jobs ${jobs.length} for ${regular.length} regular firings`,
    );
  });
});

import type { JobSummary } from '@offload/contract';
import { createRedis, offloadKeys } from '@offload/queue';
import { afterEach, describe, expect, it } from 'vitest';
import { type ApiProcess, startApiProcess } from '../abuse/api-process.ts';
import { client } from '../support/http.ts';
import { type RunningProcess, startWorkerProcess, testPrefix } from '../support/processes.ts';
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
/** The firing a job stands for, counted from the schedule's creation: a job starts within a second of its firing. */
const slotOf = (job: JobSummary, createdAt: number) =>
  Math.floor((Date.parse(job.createdAt) - createdAt) / EVERY_MS);

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
    const deleted = await fetch(`${b.url}/v1/schedules/${schedule.id}`, { method: 'DELETE' });
    expect(deleted.status).toBe(204);
    const deletedAt = Date.now();
    await sleep(300); // a firing claimed just before the delete settles
    const jobs = await allJobs(a.url);
    const slots = jobs.map((job) => slotOf(job, schedule.createdAt));
    const distinct = new Set(slots);
    const firings = Math.floor((deletedAt - schedule.createdAt) / EVERY_MS);
    console.log(
      `schedule every ${EVERY_MS} ms, 2 API + 2 worker processes: firings ${firings}, jobs ${jobs.length}, duplicates ${jobs.length - distinct.size}`,
    );
    expect(jobs.length).toBe(distinct.size);
    // One job for each firing from the first to the last before the delete: no gap.
    expect(slots).toEqual(Array.from({ length: jobs.length }, (_, i) => i + 1));
    expect(jobs.length).toBeGreaterThanOrEqual(firings - 1);
    expect(jobs.length).toBeLessThanOrEqual(firings);

    // The jobs ran, on the workers.
    const http = client(a.url);
    for (const job of jobs) expect((await http.get(job.id, 20)).state).toBe('completed');

    await sleep(2 * EVERY_MS);
    expect((await allJobs(a.url)).length).toBe(jobs.length);
  });

  it('makes one job for the firings missed while every process was down, then keeps its cadence', async () => {
    const prefix = testPrefix();
    const first = await Promise.all([
      apiProcess(prefix),
      apiProcess(prefix),
      workerProcess(prefix),
    ]);
    const schedule = await createSchedule(first[0].url);
    await sleep(2 * EVERY_MS + 500);
    await Promise.all(first.map((p) => p.stop()));
    const downAt = Date.now();
    await sleep(2 * EVERY_MS + 500);
    const [api] = await Promise.all([apiProcess(prefix), workerProcess(prefix)]);
    const upAt = Date.now();
    await sleep(3 * EVERY_MS + 500);
    const jobs = await allJobs(api.url);
    const before = jobs.filter((job) => Date.parse(job.createdAt) < downAt);
    const after = jobs.filter((job) => Date.parse(job.createdAt) >= downAt);
    const [catchUp, ...cadence] = after;
    const catchUpAt = Date.parse(catchUp?.createdAt as string);
    const missed = Math.floor((catchUpAt - schedule.createdAt) / EVERY_MS) - before.length;
    console.log(
      `missed while down: ${missed} firings (down ${upAt - downAt} ms); after restart: 1 catch-up job, then ${cadence.length} at the cadence`,
    );
    expect(missed).toBeGreaterThanOrEqual(2);
    expect(before.length).toBeGreaterThanOrEqual(1);
    // One catch-up job for all the missed firings, then one job per firing after it.
    const firstRegular = slotOf(catchUp as JobSummary, schedule.createdAt) + 1;
    expect(cadence.map((job) => slotOf(job, schedule.createdAt))).toEqual(
      Array.from({ length: cadence.length }, (_, i) => firstRegular + i),
    );
    expect(cadence.length).toBeGreaterThanOrEqual(2);
  });

  it('submits a firing claimed by a process that died before submitting, once, and never again one whose job exists', async () => {
    const prefix = testPrefix();
    const api = await apiProcess(prefix);
    const schedule = await createSchedule(api.url);
    await sleep(1.5 * EVERY_MS);
    const made = await allJobs(api.url);
    expect(made.length).toBeGreaterThanOrEqual(1);
    // As a process that claimed two firings and died would leave them: one before its
    // submit, one after its submit but before it settled (its job exists).
    const keys = offloadKeys(prefix);
    const redis = createRedis(target, 'worker');
    const lostFiring = schedule.createdAt - 10 * EVERY_MS;
    const madeFiring = schedule.createdAt + EVERY_MS;
    const claimedAt = Date.now() - 60_000;
    await redis.zadd(
      keys.schedulePending,
      claimedAt,
      `${schedule.id} ${lostFiring}`,
      claimedAt,
      `${schedule.id} ${madeFiring}`,
    );
    await sleep(1000);
    expect(await redis.zcard(keys.schedulePending)).toBe(0);
    redis.disconnect();
    const recent = (await client(api.url).call('GET', `/v1/schedules/${schedule.id}`)).body
      .recentJobs as string[];
    const jobs = await allJobs(api.url);
    // recentJobs is ordered by firing: the lost firing, the oldest, made one new job; the
    // firing settled late answered its existing job, so every other job has its own firing.
    expect(new Set(recent).size).toBe(recent.length);
    expect(recent.length).toBe(jobs.length);
    const lostJob = recent.at(-1);
    expect(made.map((job) => job.id)).not.toContain(lostJob);
    const regular = jobs.filter((job) => job.id !== lostJob);
    expect(regular.map((job) => slotOf(job, schedule.createdAt))).toEqual(
      Array.from({ length: regular.length }, (_, i) => i + 1),
    );
    console.log(
      `recovered pending firings: 2 (one never submitted, one submitted but not settled), new jobs 1, jobs ${jobs.length} for ${regular.length} regular firings`,
    );
  });
});

import type { JobView } from '@offload/contract';
import { createRedis, offloadKeys } from '@offload/queue';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startApi, type TestApi } from '../support/api-server.ts';
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
 * Fair share across tenants (DESIGN.md §4): real API, real worker processes,
 * the shared test Redis under a fresh prefix per test.
 */
const target = testRedis();
const admin = createRedis(target, 'worker');
const apiKeys = [
  { tenant: 'acme', key: 'acme-0123456789abcdef' },
  { tenant: 'bolt', key: 'bolt-0123456789abcdef' },
];
let prefix: string;
let api: TestApi;
let a: ReturnType<typeof client>;
let b: ReturnType<typeof client>;
const workers: RunningProcess[] = [];

async function worker(options: Partial<WorkerProcessEnv> = {}) {
  const started = await startWorkerProcess({ redis: target, prefix, testTasks: true, ...options });
  workers.push(started);
  return started;
}

beforeEach(async () => {
  prefix = testPrefix();
  api = await startApi({ redis: target, prefix, registry, apiKeys });
  a = client(api.url, apiKeys[0]?.key);
  b = client(api.url, apiKeys[1]?.key);
});
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.stop('SIGKILL')));
  await api.close();
});
afterAll(() => admin.disconnect());

const ms = (iso: string | null) => Date.parse(iso as string);
/** `count` jobs sleeping `sleep` ms each, with a time limit that lets them (test.sleep's own is 10 s). */
const sleepJobs = (http: ReturnType<typeof client>, count: number, sleep: number) =>
  Promise.all(
    Array.from({ length: count }, () =>
      http.submit('test.sleep', { ms: sleep }, { timeoutMs: sleep + 30_000 }),
    ),
  );
const views = (http: ReturnType<typeof client>, jobs: JobView[]) =>
  Promise.all(jobs.map((job) => http.get(job.id)));
const running = (view: JobView) => view.state !== 'queued';

/** Longest stretch, ms, within [from, to] during which fewer than `executors` of these jobs ran. */
function longestIdleGap(jobs: JobView[], executors: number, from: number, to: number): number {
  const edges = jobs
    .filter((job) => job.startedAt)
    .flatMap((job) => [
      { at: ms(job.startedAt), delta: 1 },
      { at: job.finishedAt ? ms(job.finishedAt) : Number.POSITIVE_INFINITY, delta: -1 },
    ])
    .sort((x, y) => x.at - y.at || x.delta - y.delta);
  let busy = 0;
  let idleSince: number | null = from;
  let longest = 0;
  for (const edge of edges) {
    if (edge.at > to) break;
    busy += edge.delta;
    if (busy < executors && idleSince === null) idleSince = edge.at;
    if (busy >= executors && idleSince !== null) {
      longest = Math.max(longest, edge.at - Math.max(idleSince, from));
      idleSince = null;
    }
  }
  if (idleSince !== null) longest = Math.max(longest, to - Math.max(idleSince, from));
  return longest;
}

describe('fair share', () => {
  it("one tenant's backlog of 40 jobs delays another tenant's job by one executor's free-up at most", async () => {
    await worker({ concurrency: 2 });
    const backlog = await sleepJobs(a, 40, 300);
    // A's queued jobs read as queued, never as delayed, although BullMQ holds them delayed.
    expect(backlog.every((job) => job.state === 'queued')).toBe(true);
    expect((await a.get((backlog[39] as JobView).id)).state).toBe('queued');
    await a.until((backlog[1] as JobView).id, running);

    const bJob = await b.submit('test.sleep', { ms: 10 });
    const bDone = await b.get(bJob.id, 30);
    expect(bDone.state).toBe('completed');
    const delayMs = ms(bDone.startedAt) - ms(bDone.createdAt);

    const aViews = await views(a, backlog);
    const firstStart = Math.min(...aViews.filter((v) => v.startedAt).map((v) => ms(v.startedAt)));
    const gap = longestIdleGap([...aViews, bDone], 2, firstStart, ms(bDone.startedAt));
    const aDoneBeforeB = aViews.filter(
      (v) => v.finishedAt && ms(v.finishedAt) <= ms(bDone.startedAt),
    ).length;
    console.log(
      `fair share: B's job started ${delayMs} ms after its submit, behind 40 × 300 ms jobs of A on 2 executors ` +
        `(${aDoneBeforeB} of A's jobs finished before it); longest stretch with an executor idle before it: ${gap} ms. ` +
        `First in, first out (before fair share) it would have waited for A's ${backlog.length - 2} queued jobs: about ${((backlog.length - 2) * 300) / 2} ms`,
    );
    expect(delayMs).toBeLessThanOrEqual(1000);
    // Both executors stayed busy with A's jobs until B's job came: no executor was kept idle.
    expect(gap).toBeLessThan(250);
    expect(aDoneBeforeB).toBeLessThan(10);
  }, 60_000);

  it('holds across two worker processes', async () => {
    await Promise.all([worker({ concurrency: 1 }), worker({ concurrency: 1 })]);
    const backlog = await sleepJobs(a, 12, 300);
    await Promise.all([
      a.until((backlog[0] as JobView).id, running),
      a.until((backlog[1] as JobView).id, running),
    ]);
    const bJob = await b.submit('test.sleep', { ms: 10 });
    const bDone = await b.get(bJob.id, 30);
    expect(bDone.state).toBe('completed');
    const delayMs = ms(bDone.startedAt) - ms(bDone.createdAt);
    const aViews = await views(a, backlog);
    const startedBeforeB = aViews.filter(
      (v) => v.startedAt && ms(v.startedAt) < ms(bDone.startedAt),
    ).length;
    console.log(
      `fair share, 2 worker processes × 1 executor: B's job started ${delayMs} ms after its submit; ${startedBeforeB} of A's 12 started before it`,
    );
    expect(delayMs).toBeLessThanOrEqual(1000);
    expect(startedBeforeB).toBeLessThanOrEqual(4);
  }, 60_000);

  it("MAX_RUNNING_PER_TENANT caps a tenant's running jobs while others use the free executors", async () => {
    await worker({ concurrency: 3, env: { MAX_RUNNING_PER_TENANT: '1' } });
    const aJobs = await sleepJobs(a, 3, 1500);
    await a.until((aJobs[0] as JobView).id, running);
    const bJobs = await sleepJobs(b, 2, 300);
    const done = await Promise.all([
      ...aJobs.map((job) => a.get(job.id, 30)),
      ...bJobs.map((job) => b.get(job.id, 30)),
    ]);
    expect(done.every((view) => view.state === 'completed')).toBe(true);
    const aDone = done.slice(0, 3).sort((x, y) => ms(x.startedAt) - ms(y.startedAt));
    for (let i = 1; i < aDone.length; i++) {
      // One at a time: each of A's jobs started once the one before it had run its 1.5 s
      // (BullMQ stamps finishedOn a few ms after the task returns and the next is dispatched).
      expect(ms(aDone[i]?.startedAt as string)).toBeGreaterThanOrEqual(
        ms(aDone[i - 1]?.startedAt as string) + 1500,
      );
    }
    // B's first job did not wait for A's backlog: it ran beside A's first job.
    const bFirst = Math.min(...done.slice(3).map((v) => ms(v.startedAt)));
    expect(bFirst).toBeLessThan(ms(aDone[0]?.finishedAt as string));
  }, 60_000);

  it('a held job canceled before it runs never runs, and the next one does', async () => {
    const keys = offloadKeys(prefix);
    await worker({ concurrency: 1 });
    const aJobs = await sleepJobs(a, 2, 30_000);
    await a.until((aJobs[0] as JobView).id, running);
    // A's second job waits in BullMQ's list, so B's job is held, not put behind it.
    const held = await b.submit('test.sleep', { ms: 10 });
    expect(held.state).toBe('queued');
    expect(await admin.zcard(keys.heldJobs('default', 'bolt'))).toBe(1);

    const canceled = await b.cancel(held.id);
    expect(canceled.status).toBe(200);
    expect(canceled.body.state).toBe('canceled');
    expect(await admin.zcard(keys.heldJobs('default', 'bolt'))).toBe(0);

    await Promise.all(aJobs.map((job) => a.cancel(job.id)));
    const next = await b.submit('test.echo', { value: 'x' });
    expect((await b.get(next.id, 30)).state).toBe('completed');
    const heldView = await b.get(held.id);
    expect(heldView.state).toBe('canceled');
    expect(heldView.startedAt).toBeNull();
  }, 60_000);

  it('running counts survive a SIGKILLed worker: jobs run again count once', async () => {
    const keys = offloadKeys(prefix);
    const counts = () => admin.hgetall(keys.runningCounts('default'));
    const victim = await worker({ concurrency: 2 });
    const aJobs = await sleepJobs(a, 2, 60_000);
    const first = await Promise.all(aJobs.map((job) => a.until(job.id, running)));
    // The worker counts a job as it starts it, without waiting: the count may follow the state by a round trip.
    await waitFor(async () => (await counts()).acme === '2');
    await victim.stop('SIGKILL');

    // A new worker runs A's interrupted jobs again (BullMQ's stall check): still one count each.
    await worker({ concurrency: 2 });
    await Promise.all(
      aJobs.map((job, i) =>
        a.until(job.id, (view) => view.startedAt !== first[i]?.startedAt && running(view), 30_000),
      ),
    );
    expect(await counts()).toEqual({ acme: '2' });
    await Promise.all(aJobs.map((job) => a.cancel(job.id)));
    await waitFor(async () => Object.keys(await counts()).length === 0);
  }, 90_000);

  it('a dispatched job canceled before it starts stops counting', async () => {
    const keys = offloadKeys(prefix);
    const counts = () => admin.hgetall(keys.runningCounts('default'));
    await worker({ concurrency: 1 });
    const aJobs = await sleepJobs(a, 2, 60_000);
    await a.until((aJobs[0] as JobView).id, running);
    await waitFor(async () => (await counts()).acme === '1');
    const bJob = await b.submit('test.sleep', { ms: 10 });
    expect(await admin.zcard(keys.heldJobs('default', 'bolt'))).toBe(1);
    // A's second job leaves BullMQ's list: the next worker beat moves B's job there, counted for B.
    await a.cancel((aJobs[1] as JobView).id);
    await waitFor(async () => (await counts()).bolt === '1');
    expect((await b.get(bJob.id)).state).toBe('queued');
    // Canceled while it waits there, it never reaches a worker's end: the next reconcile forgets it.
    await b.cancel(bJob.id);
    await waitFor(async () => (await counts()).bolt === undefined);
    expect(await counts()).toEqual({ acme: '1' });
    await a.cancel((aJobs[0] as JobView).id);
  }, 60_000);
});

async function waitFor(condition: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 100));
  }
}

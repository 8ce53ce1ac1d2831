import { afterEach, describe, expect, it } from 'vitest';
import { startApi, type TestApi } from '../../../tests/support/api-server.ts';
import {
  type RunningProcess,
  startWorkerProcess,
  testPrefix,
} from '../../../tests/support/processes.ts';
import { testRedis } from '../../../tests/support/redis-url.ts';
import { registry } from '../../../tests/support/test-tasks.ts';
import { DEPTH_STATES } from '../src/metrics.ts';

/**
 * `offload_queue_depth`, the gauge the KEDA ScaledObject in deploy/kubernetes
 * scales workers on, read as Prometheus reads it (GET /metrics) and compared
 * with BullMQ's own counts of the same queue.
 */

const open: { close(): Promise<unknown> }[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((thing) => thing.close()));
});

async function startTestApi(options: Partial<Parameters<typeof startApi>[0]> = {}) {
  const api = await startApi({
    redis: testRedis(),
    prefix: options.prefix ?? testPrefix(),
    registry,
    listen: false,
    ...options,
  });
  open.push(api);
  return api;
}

/** The value of one series in a Prometheus text exposition; undefined when absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

async function scrape(api: TestApi) {
  const text = await (await api.app.request('/metrics')).text();
  const state = (name: string) =>
    sample(text, `offload_queue_jobs{queue="default",state="${name}"}`);
  return {
    depth: sample(text, 'offload_queue_depth{queue="default"}'),
    active: state('active'),
    delayed: state('delayed'),
    held: state('held'),
  };
}

/** Waiting + prioritized + active as BullMQ counts them, asked apart from the API's scrape. */
async function bullDepth(api: TestApi): Promise<number> {
  const queue = api.jobs.bullQueues().find((q) => q.name === 'default');
  if (!queue) throw new Error('the API serves no queue "default"');
  // Held jobs (fair share) are Offload's, not a BullMQ state; these tests hold none.
  const states = DEPTH_STATES.filter((state) => state !== 'held');
  const counts = await queue.getJobCounts(...states);
  return states.reduce((sum, state) => sum + (counts[state] ?? 0), 0);
}

async function submit(
  api: TestApi,
  options: { priority?: number; delayMs?: number } = {},
  key?: string,
) {
  const res = await api.app.request('/v1/jobs', {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(key && { authorization: `Bearer ${key}` }),
    },
    body: JSON.stringify({ task: 'test.sleep', input: { ms: 300 }, options }),
  });
  expect(res.status).toBe(202);
}

describe('offload_queue_depth, what KEDA scales workers on', () => {
  it('counts waiting and prioritized jobs, not delayed ones, while no worker runs', async () => {
    const api = await startTestApi();
    for (let i = 0; i < 7; i++) await submit(api);
    for (let i = 0; i < 5; i++) await submit(api, { priority: 1 + i });
    await submit(api, { delayMs: 60_000 });

    const read = await scrape(api);
    expect(read.depth).toBe(12);
    expect(read.depth).toBe(await bullDepth(api));
    // Due in a minute: counted among the queue's jobs, not in the work to do now.
    expect(read.delayed).toBe(1);
  });

  it('tracks the real depth as a worker runs the jobs, down to 0', async () => {
    const prefix = testPrefix();
    const api = await startTestApi({ prefix });
    const jobs = 12;
    for (let i = 0; i < jobs; i++) await submit(api, i % 3 === 0 ? { priority: 2 } : {});
    expect((await scrape(api)).depth).toBe(jobs);

    const worker: RunningProcess = await startWorkerProcess({
      redis: testRedis(),
      prefix,
      concurrency: 2,
      testTasks: true,
    });
    open.push({ close: () => worker.stop() });

    // A job only ever leaves the depth (waiting → active keeps it; active → completed
    // ends it), so the depth BullMQ counts just before a scrape bounds it from above
    // and the one just after from below.
    const samples: { depth: number; active: number }[] = [];
    const started = Date.now();
    for (;;) {
      const before = await bullDepth(api);
      const read = await scrape(api);
      const after = await bullDepth(api);
      expect(read.depth).toBeLessThanOrEqual(before);
      expect(read.depth).toBeGreaterThanOrEqual(after);
      samples.push({ depth: read.depth ?? Number.NaN, active: read.active ?? Number.NaN });
      if (read.depth === 0) break;
      if (Date.now() - started > 45_000) {
        throw new Error(`the depth did not reach 0: ${JSON.stringify(samples.slice(-5))}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }

    const depths = samples.map((s) => s.depth);
    // Never rises while the queue drains, and running jobs were counted on the way.
    expect(depths).toEqual([...depths].sort((a, b) => b - a));
    expect(samples.some((s) => s.active > 0 && s.depth >= s.active)).toBe(true);
    expect(new Set(depths).size).toBeGreaterThan(2);
  }, 90_000);

  it('counts jobs held for fair share, which BullMQ keeps as delayed, and not jobs delayed by request', async () => {
    // Two tenants: the second one's jobs are held (DESIGN.md §4) while the first
    // one's wait in the lane. They are work a worker fleet has to do now.
    const first = 'a'.repeat(32);
    const second = 'b'.repeat(32);
    const api = await startTestApi({
      apiKeys: [
        { tenant: 'first', key: first },
        { tenant: 'second', key: second },
      ],
    });
    for (let i = 0; i < 3; i++) await submit(api, {}, first);
    for (let i = 0; i < 3; i++) await submit(api, {}, second);
    await submit(api, { delayMs: 60_000 }, second);

    const read = await scrape(api);
    expect(read.depth).toBe(6);
    expect(read.delayed).toBe(1);
    expect(read.held).toBe(3);
  });
});

import { offloadKeys } from '@offload/queue';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type TestApi } from '../support/api-server.ts';
import { client } from '../support/http.ts';
import { type KillableRedis, startKillableRedis } from '../support/private-redis.ts';
import { type RunningProcess, startWorkerProcess, testPrefix } from '../support/processes.ts';
import { registry } from '../support/test-tasks.ts';

/**
 * Thousands of jobs through a Redis of the test's own (so its memory is
 * Offload's alone), with a retention window of 2 s instead of a day.
 */
const RETENTION_S = 2;
const BATCH = 1000;
const BATCHES = 6;

let redis: KillableRedis;
let api: TestApi;
let worker: RunningProcess;
let http: ReturnType<typeof client>;
let prefix: string;

beforeAll(async () => {
  redis = await startKillableRedis({ appendOnly: false });
  prefix = testPrefix();
  const retentionMs = RETENTION_S * 1000;
  api = await startApi({
    redis: { url: redis.url },
    prefix,
    registry,
    retention: { completedMs: retentionMs, failedMs: retentionMs },
  });
  http = client(api.url);
  worker = await startWorkerProcess({
    redis: { url: redis.url },
    prefix,
    concurrency: 2,
    testTasks: true,
    env: {
      JOB_RETENTION_COMPLETED_S: String(RETENTION_S),
      JOB_RETENTION_FAILED_S: String(RETENTION_S),
    },
  });
});
afterAll(async () => {
  await worker?.stop('SIGKILL');
  await api?.close();
  await redis?.close();
});

async function until(condition: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`not so after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function usedMemory(): Promise<number> {
  const info = await redis.admin.info('memory');
  return Number(/^used_memory:(\d+)/m.exec(info)?.[1]);
}

/** Submits `count` jobs, 25 requests in flight, and waits until the last one completed. */
async function flow(count: number, from: number): Promise<string[]> {
  const ids: string[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: 25 }, async () => {
      while (next < count) {
        const n = from + next++;
        ids.push((await http.submit('test.echo', { value: `job ${n}` })).id);
      }
    }),
  );
  await http.until(ids[ids.length - 1] as string, (v) => v.state === 'completed', 60_000);
  return ids;
}

describe('retention', () => {
  it('keeps Redis memory flat once the window is full, then answers 410 for removed jobs', async () => {
    const samples: number[] = [];
    let first: string[] = [];
    for (let batch = 0; batch < BATCHES; batch++) {
      const ids = await flow(BATCH, batch * BATCH);
      if (batch === 0) first = ids;
      // Let the window pass: the worker's sweep removes what no later completion did.
      await until(
        async () =>
          (await redis.admin.zcard(offloadKeys(prefix).bullKey('default', 'completed'))) === 0,
      );
      samples.push(await usedMemory());
    }
    const kb = samples.map((bytes) => Math.round(bytes / 1024));
    // Once BullMQ's event stream reaches its cap (10,000 events, within the first batches),
    // memory stops growing. Without retention every job would keep its hash (about 1.4 KB):
    // some 7 MB more at the end than after the first half.
    const firstHalf = Math.max(...samples.slice(0, BATCHES / 2));
    const last = samples.at(-1) as number;
    console.log(
      `retention ${RETENTION_S} s, ${BATCH * BATCHES} jobs: Redis used_memory once each ${BATCH} had passed the window = ${kb.join(', ')} KiB; ` +
        `after all of them ${(last / firstHalf).toFixed(2)}× the peak after the first half`,
    );
    expect(last / firstHalf).toBeLessThan(1.1);

    const removed = await http.call('GET', `/v1/jobs/${first[0]}`);
    expect(removed.status).toBe(410);
    expect(removed.body).toMatchObject({ code: 'gone', status: 410 });
    expect((await http.call('DELETE', `/v1/jobs/${first[1]}`)).status).toBe(410);
    const neverIssued = await http.call('GET', '/v1/jobs/AAAAAAAAAAAAAAAAAAAAAAAAAAA');
    expect(neverIssued.status).toBe(404);
    expect(neverIssued.body.code).toBe('not_found');
  });
});

import { afterAll, beforeAll, expect, it } from 'vitest';
import { startApi, type TestApi } from '../support/api-server.ts';
import { type RunningProcess, startWorkerProcess, testPrefix } from '../support/processes.ts';
import { testRedis } from '../support/redis-url.ts';
import { registry } from '../support/test-tasks.ts';

/**
 * GET /v1/jobs never reads results: a tenant whose jobs returned megabytes
 * lists them as fast as any other, and the page carries no result.
 */
const KEY = 'bulky-tenant-key-0123456789';
const JOBS = 4;
const RESULT_BYTES = 6 * 1024 * 1024;
let api: TestApi;
let worker: RunningProcess;
const ids: string[] = [];

const get = (path: string) =>
  fetch(`${api.url}${path}`, { headers: { authorization: `Bearer ${KEY}` } });

async function medianMs(request: () => Promise<Response>, times = 5): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < times; i++) {
    const started = performance.now();
    const res = await request();
    expect(res.status).toBe(200);
    await res.arrayBuffer();
    samples.push(performance.now() - started);
  }
  return samples.sort((a, b) => a - b)[Math.floor(times / 2)] as number;
}

beforeAll(async () => {
  const target = testRedis();
  const prefix = testPrefix();
  [api, worker] = await Promise.all([
    startApi({ redis: target, prefix, registry, apiKeys: [{ tenant: 'bulky', key: KEY }] }),
    startWorkerProcess({ redis: target, prefix, concurrency: 1, testTasks: true }),
  ]);
  for (let i = 0; i < JOBS; i++) {
    const res = await fetch(`${api.url}/v1/jobs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ task: 'test.bulky', input: { bytes: RESULT_BYTES } }),
    });
    ids.push(((await res.json()) as { id: string }).id);
  }
  for (const id of ids) {
    for (;;) {
      const view = (await (await get(`/v1/jobs/${id}?wait=30`)).json()) as { state: string };
      if (view.state === 'completed') break;
      expect(view.state).not.toMatch(/failed|canceled/);
    }
  }
}, 120_000);
afterAll(async () => {
  await worker?.stop('SIGKILL');
  await api?.close();
});

it('lists jobs with multi-megabyte results in milliseconds, without their results', async () => {
  const res = await get('/v1/jobs');
  const text = await res.text();
  expect(text.length).toBeLessThan(10_000);
  const page = JSON.parse(text) as { jobs: Record<string, unknown>[] };
  expect(page.jobs.map((j) => j.id)).toEqual([...ids].reverse());
  for (const job of page.jobs) {
    expect(job).toMatchObject({ state: 'completed', task: 'test.bulky', progress: 100 });
    expect(job).not.toHaveProperty('result');
  }
  // The result is one GET away.
  const one = (await (await get(`/v1/jobs/${ids[0]}`)).json()) as { result: { text: string } };
  expect(one.result.text).toHaveLength(RESULT_BYTES);

  const listMs = await medianMs(() => get('/v1/jobs'));
  const getMs = await medianMs(() => get(`/v1/jobs/${ids[0]}`));
  console.log(`GET /v1/jobs ${listMs.toFixed(1)} ms; GET of one job ${getMs.toFixed(1)} ms`);
  expect(listMs).toBeLessThan(500);
  expect(listMs).toBeLessThan(getMs);
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../scripts/redis-server.ts';
import { client } from '../support/http.ts';
import {
  type RunningProcess,
  startNodeProcess,
  startWorkerProcess,
  testPrefix,
} from '../support/processes.ts';
import { redisEnv, testRedis } from '../support/redis-url.ts';

/**
 * A client that retries a submit it is unsure about, as clients do after a
 * timeout: 50 identical requests with one Idempotency-Key, at once, spread over
 * two API processes sharing one Redis.
 */
const target = testRedis();
const prefix = testPrefix();
const processes: RunningProcess[] = [];
const apis: string[] = [];

beforeAll(async () => {
  for (let i = 0; i < 2; i++) {
    const port = await freePort();
    const api = startNodeProcess('apps/api/src/index.ts', {
      ...redisEnv(target),
      OFFLOAD_PREFIX: prefix,
      PORT: String(port),
    });
    processes.push(api);
    await api.waitForLine(/api listening/);
    apis.push(`http://127.0.0.1:${port}`);
  }
  processes.push(await startWorkerProcess({ redis: target, prefix, concurrency: 1 }));
});
afterAll(async () => {
  await Promise.all(processes.map((p) => p.stop('SIGKILL')));
});

function post(base: string, body: unknown, key: string) {
  return fetch(`${base}/v1/jobs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'idempotency-key': key },
    body: JSON.stringify(body),
  });
}

describe('duplicate submits', () => {
  it('makes exactly one job of 50 concurrent identical POSTs to two API processes', async () => {
    const body = { task: 'primes.count', input: { below: 1_000_000 } };
    const started = performance.now();
    const answers = await Promise.all(
      Array.from({ length: 50 }, (_, i) => post(apis[i % 2] as string, body, 'order-42')),
    );
    const tookMs = performance.now() - started;
    const statuses = answers.map((r) => r.status);
    const ids = new Set(
      await Promise.all(answers.map(async (r) => ((await r.json()) as { id: string }).id)),
    );
    console.log(
      `50 concurrent POSTs with one Idempotency-Key over 2 API processes: ${ids.size} job, ` +
        `${statuses.filter((s) => s === 202).length}×202 and ${statuses.filter((s) => s === 200).length}×200, all answered in ${tookMs.toFixed(0)} ms`,
    );
    expect(statuses.filter((s) => s === 202)).toHaveLength(1);
    expect(statuses.filter((s) => s === 200)).toHaveLength(49);
    expect(ids.size).toBe(1);

    // The one job runs once and every duplicate reads its result.
    const [id] = [...ids] as [string];
    const done = await client(apis[1] as string).get(id, 30);
    expect(done).toMatchObject({
      state: 'completed',
      result: { count: 78_498 },
      attempts: { made: 1 },
    });

    // The same key with another body is a conflict, whichever process answers.
    for (const base of apis) {
      const other = await post(base, { ...body, input: { below: 1000 } }, 'order-42');
      expect(other.status).toBe(409);
      expect(((await other.json()) as { code: string }).code).toBe('idempotency_conflict');
    }
  });
});

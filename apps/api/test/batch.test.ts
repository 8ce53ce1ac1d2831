import { registry } from '@offload/tasks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type TestApi } from '../../../tests/support/api-server.ts';
import { testPrefix } from '../../../tests/support/processes.ts';
import { testRedis } from '../../../tests/support/redis-url.ts';

// No worker runs here: these tests are about what a batch adds, all or none.
let api: TestApi;
beforeAll(async () => {
  api = await startApi({
    redis: testRedis(),
    prefix: testPrefix(),
    registry,
    listen: false,
    maxOpenJobsPerTenant: 50,
  });
});
afterAll(() => api.close());

// biome-ignore lint/suspicious/noExplicitAny: response bodies are checked by the assertions that read them
type Body = any;
const batch = async (jobs: unknown[]) => {
  const res = await api.app.request('/v1/jobs/batch', {
    method: 'POST',
    body: JSON.stringify({ jobs }),
    headers: { 'content-type': 'application/json' },
  });
  return { status: res.status, body: (await res.json()) as Body };
};
const primes = (below: number, extra: Record<string, unknown> = {}) => ({
  task: 'primes.count',
  input: { below },
  ...extra,
});
/** Every job the tenant has, listed through the API. */
async function jobCount(): Promise<number> {
  let count = 0;
  let cursor: string | null = null;
  do {
    const res = await api.app.request(`/v1/jobs?limit=100${cursor ? `&cursor=${cursor}` : ''}`);
    const page = (await res.json()) as Body;
    count += page.jobs.length;
    cursor = page.nextCursor;
  } while (cursor);
  return count;
}

describe('POST /v1/jobs/batch', () => {
  it('adds every job and answers their views in the order given', async () => {
    const before = await jobCount();
    const { status, body } = await batch([
      primes(100),
      primes(200, { options: { delayMs: 60_000 } }),
      { task: 'cpu.burn', input: { ms: 1 } },
    ]);
    expect(status).toBe(202);
    expect(body.jobs.map((job: Body) => [job.task, job.state])).toEqual([
      ['primes.count', 'queued'],
      ['primes.count', 'delayed'],
      ['cpu.burn', 'queued'],
    ]);
    expect(new Set(body.jobs.map((job: Body) => job.id)).size).toBe(3);
    for (const job of body.jobs) {
      const res = await api.app.request(`/v1/jobs/${job.id}`);
      expect(((await res.json()) as Body).state).toBe(job.state);
    }
    expect(await jobCount()).toBe(before + 3);
  });

  it('adds nothing when one job is invalid, naming it in the paths', async () => {
    const before = await jobCount();
    const { status, body } = await batch([primes(100), primes(-5), primes(300)]);
    expect(status).toBe(422);
    expect(body.code).toBe('validation_failed');
    expect(body.detail).toContain('1 of 3 jobs are invalid');
    expect(body.errors.map((e: Body) => e.path)).toEqual(['jobs.1.input.below']);

    const unknown = await batch([primes(100), { task: 'no.such', input: {} }]);
    expect(unknown.status).toBe(422);
    expect(unknown.body.code).toBe('unknown_task');
    expect(unknown.body.errors.map((e: Body) => e.path)).toEqual(['jobs.1.task']);

    // A thousand jobs of a task nobody runs: answered at once, not a catalog read per job.
    const started = Date.now();
    const unknowns = await batch(
      Array.from({ length: 1000 }, () => ({ task: 'no.such', input: {} })),
    );
    expect(unknowns.status).toBe(422);
    expect(unknowns.body.errors).toHaveLength(20);
    expect(Date.now() - started).toBeLessThan(5000);

    const envelope = await batch([primes(100), { task: 'primes.count' }]);
    expect(envelope.status).toBe(422);
    expect(envelope.body.errors.map((e: Body) => e.path)).toContain('jobs.1.input');
    expect(await jobCount()).toBe(before);
  });

  it('takes 1 to 1000 jobs', async () => {
    expect((await batch([])).status).toBe(422);
    const tooMany = await batch(Array.from({ length: 1001 }, () => primes(10)));
    expect(tooMany.status).toBe(422);
    expect(tooMany.body.errors.map((e: Body) => e.path)).toEqual(['jobs']);
  });

  it('adds nothing past the quota of unfinished jobs', async () => {
    const before = await jobCount();
    const { status, body } = await batch(Array.from({ length: 51 - before }, () => primes(10)));
    expect(status).toBe(429);
    expect(body.code).toBe('queue_quota_exceeded');
    expect(await jobCount()).toBe(before);
  });

  it('answers the earlier job for an idempotency key used before with the same job', async () => {
    const first = await batch([primes(7, { idempotencyKey: 'b-1' }), primes(8)]);
    expect(first.status).toBe(202);
    // A single submit with the same key and the same job answers the same job too.
    const single = await api.app.request('/v1/jobs', {
      method: 'POST',
      body: JSON.stringify(primes(7)),
      headers: { 'content-type': 'application/json', 'idempotency-key': 'b-1' },
    });
    expect(single.status).toBe(200);
    expect(((await single.json()) as Body).id).toBe(first.body.jobs[0].id);

    const before = await jobCount();
    const again = await batch([primes(7, { idempotencyKey: 'b-1' }), primes(9)]);
    expect(again.status).toBe(202);
    expect(again.body.jobs[0].id).toBe(first.body.jobs[0].id);
    expect(again.body.jobs[1].id).not.toBe(first.body.jobs[1].id);
    expect(await jobCount()).toBe(before + 1);
  });

  it('adds nothing when a key was used with another job, or repeats within the batch', async () => {
    await batch([primes(11, { idempotencyKey: 'b-2' })]);
    const before = await jobCount();
    const conflict = await batch([
      primes(12, { idempotencyKey: 'b-3' }),
      primes(13, { idempotencyKey: 'b-2' }),
    ]);
    expect(conflict.status).toBe(409);
    expect(conflict.body.code).toBe('idempotency_conflict');
    expect(conflict.body.detail).toContain('jobs.1');
    expect(await jobCount()).toBe(before);
    // b-3 was not kept by the refused batch: it is free for its job.
    const retried = await batch([primes(12, { idempotencyKey: 'b-3' })]);
    expect(retried.status).toBe(202);

    const repeated = await batch([
      primes(14, { idempotencyKey: 'b-4' }),
      primes(15, { idempotencyKey: 'b-4' }),
    ]);
    expect(repeated.status).toBe(422);
    expect(repeated.body.errors).toEqual([
      { path: 'jobs.1.idempotencyKey', message: 'repeats the key of jobs.0' },
    ]);
  });
});

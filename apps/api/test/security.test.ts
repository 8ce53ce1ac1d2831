import { registry } from '@offload/tasks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type TestApi } from '../../../tests/support/api-server.ts';
import { testPrefix } from '../../../tests/support/processes.ts';
import { testRedis } from '../../../tests/support/redis-url.ts';
import { loadApiEnv } from '../src/env.ts';

// biome-ignore lint/suspicious/noExplicitAny: response bodies are checked by the assertions that read them
type Body = any;

const ALPHA = 'alpha-key-0123456789abcdef';
const ALPHA_2 = 'alpha-second-key-0123456789';
const BETA = 'beta-key-0123456789abcdef';

let api: TestApi;
beforeAll(async () => {
  api = await startApi({
    redis: testRedis(),
    prefix: testPrefix(),
    registry,
    listen: false,
    apiKeys: [
      { tenant: 'alpha', key: ALPHA },
      { tenant: 'alpha', key: ALPHA_2 },
      { tenant: 'beta', key: BETA },
    ],
    maxOpenJobsPerTenant: 5,
  });
});
afterAll(() => api.close());

const as = (key: string | null, path: string, init: RequestInit = {}) =>
  api.app.request(path, {
    ...init,
    headers: {
      ...(key && { authorization: `Bearer ${key}` }),
      ...(init.body !== undefined && { 'content-type': 'application/json' }),
      ...(init.headers as Record<string, string>),
    },
  });
const submit = (key: string, body: unknown, headers: Record<string, string> = {}) =>
  as(key, '/v1/jobs', { method: 'POST', body: JSON.stringify(body), headers });

async function expectProblem(res: Response, status: number, code: string): Promise<Body> {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  const body = (await res.json()) as Body;
  expect(body).toMatchObject({ status, code });
  return body;
}

describe('API keys', () => {
  it('answers 401 without a key, with a wrong one, or with a malformed header', async () => {
    const none = await as(null, '/v1/tasks');
    await expectProblem(none, 401, 'unauthorized');
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
    await expectProblem(await as('wrong-key-0123456789abcdef', '/v1/tasks'), 401, 'unauthorized');
    await expectProblem(
      await api.app.request('/v1/jobs/x', { headers: { authorization: `Basic ${ALPHA}` } }),
      401,
      'unauthorized',
    );
    // A prefix of a valid key is not a valid key.
    await expectProblem(await as(ALPHA.slice(0, -1), '/v1/tasks'), 401, 'unauthorized');
  });

  it('serves health, readiness, metrics and the API reference without a key', async () => {
    for (const path of ['/healthz', '/readyz', '/metrics', '/openapi.json', '/docs']) {
      expect((await api.app.request(path)).status, path).toBe(200);
    }
  });

  it('accepts every key of a tenant', async () => {
    expect((await as(ALPHA, '/v1/tasks')).status).toBe(200);
    expect((await as(ALPHA_2, '/v1/tasks')).status).toBe(200);
  });
});

describe('tenants', () => {
  it("answers 404 to another tenant's job id, for reading, streaming and canceling", async () => {
    const res = await submit(ALPHA, {
      task: 'cpu.burn',
      input: { ms: 1 },
      options: { delayMs: 60_000 },
    });
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as Body;
    expect((await as(ALPHA_2, `/v1/jobs/${id}`)).status).toBe(200);
    await expectProblem(await as(BETA, `/v1/jobs/${id}`), 404, 'not_found');
    await expectProblem(await as(BETA, `/v1/jobs/${id}/events`), 404, 'not_found');
    await expectProblem(await as(BETA, `/v1/jobs/${id}`, { method: 'DELETE' }), 404, 'not_found');
    // Still there, not canceled, for its owner.
    expect(((await (await as(ALPHA, `/v1/jobs/${id}`)).json()) as Body).state).toBe('delayed');
    await as(ALPHA, `/v1/jobs/${id}`, { method: 'DELETE' });
  });
});

describe('GET /v1/jobs', () => {
  it("lists only the caller's jobs, newest first, paged by cursor and filtered by state and task", async () => {
    const mine: string[] = [];
    for (let i = 0; i < 4; i++) {
      const task =
        i % 2
          ? { task: 'primes.count', input: { below: 100 + i } }
          : { task: 'cpu.burn', input: { ms: i } };
      const res = await submit(BETA, { ...task, options: { delayMs: 60_000 } });
      mine.unshift(((await res.json()) as Body).id);
    }
    const other = (await (
      await submit(ALPHA, { task: 'cpu.burn', input: { ms: 1 } })
    ).json()) as Body;
    await as(ALPHA, `/v1/jobs/${other.id}`, { method: 'DELETE' });

    const first: Body = (await (await as(BETA, '/v1/jobs?limit=3')).json()) as Body;
    expect(first.jobs.map((j: Body) => j.id)).toEqual(mine.slice(0, 3));
    expect(first.nextCursor).toEqual(expect.any(String));
    const second: Body = (await (
      await as(BETA, `/v1/jobs?limit=3&cursor=${first.nextCursor}`)
    ).json()) as Body;
    expect(second.jobs.map((j: Body) => j.id)).toEqual(mine.slice(3));
    expect(second.nextCursor).toBeNull();

    const primes: Body = (await (await as(BETA, '/v1/jobs?task=primes.count')).json()) as Body;
    expect(primes.jobs.map((j: Body) => j.id)).toEqual([mine[0], mine[2]]);

    await as(BETA, `/v1/jobs/${mine[1]}`, { method: 'DELETE' });
    const canceled: Body = (await (await as(BETA, '/v1/jobs?state=canceled')).json()) as Body;
    expect(canceled.jobs.map((j: Body) => j.id)).toEqual([mine[1]]);
    const delayed: Body = (await (await as(BETA, '/v1/jobs?state=delayed')).json()) as Body;
    expect(delayed.jobs).toHaveLength(3);

    const alpha: Body = (await (await as(ALPHA, '/v1/jobs')).json()) as Body;
    expect(alpha.jobs.map((j: Body) => j.id)).not.toContain(mine[0]);
    for (const id of mine) await as(BETA, `/v1/jobs/${id}`, { method: 'DELETE' });
  });

  it('answers 422 to a bad state, limit or cursor, and to unknown parameters', async () => {
    for (const [query, path] of [
      ['state=done', 'state'],
      ['limit=0', 'limit'],
      ['limit=101', 'limit'],
      ['limit=abc', 'limit'],
      ['cursor=!!', 'cursor'],
      ['cursor=bm9wZQ', 'cursor'],
      ['sort=asc', 'sort'],
    ]) {
      const body = await expectProblem(
        await as(BETA, `/v1/jobs?${query}`),
        422,
        'validation_failed',
      );
      expect(body.errors[0].path, query).toBe(path);
    }
  });
});

describe('limits', () => {
  it('refuses a tenant over its quota of unfinished jobs with 429, and takes jobs again once some finish', async () => {
    const quotaKey = 'gamma-key-0123456789abcdef';
    const limited = await startApi({
      redis: testRedis(),
      prefix: testPrefix(),
      registry,
      listen: false,
      apiKeys: [
        { tenant: 'gamma', key: quotaKey },
        { tenant: 'delta', key: ALPHA },
      ],
      maxOpenJobsPerTenant: 3,
    });
    try {
      const post = (key: string) =>
        limited.app.request('/v1/jobs', {
          method: 'POST',
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
          body: JSON.stringify({ task: 'cpu.burn', input: { ms: 1 } }),
        });
      // Ten at once: exactly the quota gets in.
      const answers = await Promise.all(Array.from({ length: 10 }, () => post(quotaKey)));
      expect(answers.filter((r) => r.status === 202)).toHaveLength(3);
      const refused = answers.find((r) => r.status === 429) as Response;
      const body = await expectProblem(refused, 429, 'queue_quota_exceeded');
      expect(body.detail).toMatch(/3 unfinished jobs/);
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
      // Another tenant is not held back.
      expect((await post(ALPHA)).status).toBe(202);
      // A canceled job no longer counts.
      const { id } = (await (answers.find((r) => r.status === 202) as Response).json()) as Body;
      await limited.app.request(`/v1/jobs/${id}`, {
        method: 'DELETE',
        headers: { authorization: `Bearer ${quotaKey}` },
      });
      expect((await post(quotaKey)).status).toBe(202);
    } finally {
      await limited.close();
    }
  });

  it('limits requests per key across API processes sharing Redis, with Retry-After', async () => {
    const prefix = testPrefix();
    const apiKeys = [
      { tenant: 'alpha', key: ALPHA },
      { tenant: 'beta', key: BETA },
    ];
    const options = { redis: testRedis(), prefix, registry, listen: false, apiKeys };
    // Windows are aligned to the clock: an hour's makes a window's end during the test unlikely (1 in ~10^5).
    const rateLimit = { limit: 10, windowMs: 3_600_000 };
    const [one, two] = await Promise.all([
      startApi({ ...options, rateLimit }),
      startApi({ ...options, rateLimit }),
    ]);
    try {
      const get = (app: TestApi, key: string) =>
        app.app.request('/v1/tasks', { headers: { authorization: `Bearer ${key}` } });
      const statuses: number[] = [];
      for (let i = 0; i < 12; i++) statuses.push((await get(i % 2 ? one : two, ALPHA)).status);
      expect(statuses.filter((s) => s === 200)).toHaveLength(10);
      const limited = await get(one, ALPHA);
      await expectProblem(limited, 429, 'rate_limited');
      const retryAfter = Number(limited.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThan(0);
      expect(retryAfter).toBeLessThanOrEqual(3600);
      // Per key: the other tenant's key still has its whole window.
      const other = await get(two, BETA);
      expect(other.status).toBe(200);
      expect(other.headers.get('ratelimit-remaining')).toBe('9');
      // Health is never limited.
      expect((await one.app.request('/healthz')).status).toBe(200);
    } finally {
      await Promise.all([one.close(), two.close()]);
    }
  });

  it('answers 400 json_too_deep to a body nested deeper than the limit, before parsing it', async () => {
    const deep = `{"task":"cpu.burn","input":${'['.repeat(40)}${']'.repeat(40)}}`;
    const body = await expectProblem(
      await as(ALPHA, '/v1/jobs', { method: 'POST', body: deep }),
      400,
      'json_too_deep',
    );
    expect(body.detail).toMatch(/32/);
    // Brackets inside strings are text, not nesting.
    const text = await as(ALPHA, '/v1/jobs', {
      method: 'POST',
      body: JSON.stringify({
        task: 'crypto.pbkdf2',
        input: {
          password: '['.repeat(100),
          salt: '{"',
          iterations: 1,
          keyLength: 16,
          digest: 'sha256',
        },
      }),
    });
    expect(text.status).toBe(202);
    // A million open brackets: refused at once, not a stack overflow.
    const huge = await as(ALPHA, '/v1/jobs', { method: 'POST', body: '['.repeat(60_000) });
    await expectProblem(huge, 400, 'json_too_deep');
  });

  it('reports at most 20 field errors, however many a body holds', async () => {
    // 2,500 unknown keys at the top and 2,500 in the input: about 50 KB of mistakes.
    const many = (letter: string) =>
      Object.fromEntries(Array.from({ length: 2500 }, (_, i) => [`${letter}${i}`, 1]));
    const res = await submit(ALPHA, {
      task: 'primes.count',
      input: { below: 10, ...many('k') },
      ...many('t'),
    });
    const text = await res.clone().text();
    const body = await expectProblem(res, 422, 'validation_failed');
    expect(body.errors).toHaveLength(20);
    expect(body.errors[0]).toEqual({ path: 't0', message: 'unknown field' });
    expect(text.length).toBeLessThan(4096);
  });

  it('refuses unknown fields at every level, naming each path', async () => {
    const body = await expectProblem(
      await submit(ALPHA, {
        task: 'image.mandelbrot',
        input: { width: 16, height: 16, colour: 'red' },
        options: { attempts: 1, retry: true },
        extra: 1,
      }),
      422,
      'validation_failed',
    );
    expect(body.errors.map((e: Body) => e.path).sort()).toEqual([
      'extra',
      'input.colour',
      'options.retry',
    ]);
  });
});

describe('Idempotency-Key', () => {
  const body = { task: 'cpu.burn', input: { ms: 5 }, options: { delayMs: 60_000 } };

  it('answers the same job (200) to the same key and body, and 409 to the same key with another body', async () => {
    const first = await submit(ALPHA, body, { 'idempotency-key': 'order-1' });
    expect(first.status).toBe(202);
    const job = (await first.json()) as Body;
    // Same request with its fields in another order, from another key of the same tenant.
    const again = await submit(
      ALPHA_2,
      { options: body.options, input: body.input, task: body.task },
      { 'idempotency-key': 'order-1' },
    );
    expect(again.status).toBe(200);
    expect(again.headers.get('location')).toBe(`/v1/jobs/${job.id}`);
    expect(((await again.json()) as Body).id).toBe(job.id);

    const other = await submit(
      ALPHA,
      { ...body, input: { ms: 6 } },
      { 'idempotency-key': 'order-1' },
    );
    await expectProblem(other, 409, 'idempotency_conflict');
    // Keys are per tenant: the same key elsewhere is a new job.
    const beta = await submit(BETA, body, { 'idempotency-key': 'order-1' });
    expect(beta.status).toBe(202);
    expect(((await beta.json()) as Body).id).not.toBe(job.id);
  });

  it('creates exactly one job for 50 identical requests at once', async () => {
    const answers = await Promise.all(
      Array.from({ length: 50 }, () => submit(BETA, body, { 'idempotency-key': 'burst-7' })),
    );
    const statuses = answers.map((r) => r.status);
    expect(statuses.filter((s) => s === 202)).toHaveLength(1);
    expect(statuses.filter((s) => s === 200)).toHaveLength(49);
    const ids = new Set(await Promise.all(answers.map(async (r) => ((await r.json()) as Body).id)));
    expect(ids.size).toBe(1);
    const listed: Body = (await (await as(BETA, '/v1/jobs?limit=100')).json()) as Body;
    expect(listed.jobs.filter((j: Body) => ids.has(j.id))).toHaveLength(1);
  });

  it('answers 422 to an empty or non-printable key', async () => {
    for (const key of ['', 'has space', 'x'.repeat(256)]) {
      const res = await submit(ALPHA, body, { 'idempotency-key': key });
      const problem = await expectProblem(res, 422, 'validation_failed');
      expect(problem.errors[0].path).toBe('idempotency-key');
    }
  });
});

describe('configuration', () => {
  const base = { REDIS_URL: 'redis://127.0.0.1:6379' };

  it('refuses open mode on an interface other than loopback unless API_ALLOW_OPEN=true', () => {
    expect(() => loadApiEnv({ ...base, HOST: '0.0.0.0' })).toThrow(/API_KEYS: required when HOST/);
    expect(() => loadApiEnv({ ...base, HOST: '10.0.0.5' })).toThrow(/API_ALLOW_OPEN=true/);
    expect(
      loadApiEnv({ ...base, HOST: '0.0.0.0', API_ALLOW_OPEN: 'true' }).API_KEYS,
    ).toBeUndefined();
    expect(loadApiEnv({ ...base, HOST: '0.0.0.0', API_KEYS: `alpha:${ALPHA}` }).HOST).toBe(
      '0.0.0.0',
    );
    for (const host of ['127.0.0.1', '127.0.1.1', '::1', 'localhost']) {
      expect(loadApiEnv({ ...base, HOST: host }).API_KEYS).toBeUndefined();
    }
  });

  it('refuses to start in production without API_KEYS, and reads tenant:key pairs', () => {
    expect(() => loadApiEnv({ ...base, NODE_ENV: 'production' })).toThrow(/API_KEYS: required/);
    expect(() => loadApiEnv({ ...base, NODE_ENV: 'production', API_KEYS: '' })).toThrow(/API_KEYS/);
    const env = loadApiEnv({
      ...base,
      NODE_ENV: 'production',
      API_KEYS: `alpha:${ALPHA}, beta:${BETA}`,
    });
    expect(env.API_KEYS).toEqual([
      { tenant: 'alpha', key: ALPHA },
      { tenant: 'beta', key: BETA },
    ]);
    expect(loadApiEnv({ ...base, NODE_ENV: 'development' }).API_KEYS).toBeUndefined();
  });

  it('names the bad entry of API_KEYS', () => {
    expect(() => loadApiEnv({ ...base, API_KEYS: 'alpha:short' })).toThrow(/at least 16/);
    expect(() => loadApiEnv({ ...base, API_KEYS: `no-colon-${ALPHA}` })).toThrow(/tenant:key/);
    expect(() => loadApiEnv({ ...base, API_KEYS: `a:${ALPHA},b:${ALPHA}` })).toThrow(/twice/);
  });
});

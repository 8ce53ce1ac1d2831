import { registry } from '@offload/tasks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type TestApi } from '../../../tests/support/api-server.ts';
import { testPrefix } from '../../../tests/support/processes.ts';
import { testRedis } from '../../../tests/support/redis-url.ts';

// No scheduler runs here: these tests are about what POST/GET/DELETE /v1/schedules store and answer.
const KEYS = [
  { tenant: 'acme', key: 'acme-key-0123456789' },
  { tenant: 'globex', key: 'globex-key-0123456789' },
];
const MAX_PER_TENANT = 3;
let api: TestApi;
beforeAll(async () => {
  api = await startApi({
    redis: testRedis(),
    prefix: testPrefix(),
    registry,
    listen: false,
    apiKeys: KEYS,
    schedules: { maxPerTenant: MAX_PER_TENANT },
  });
});
afterAll(() => api.close());

// biome-ignore lint/suspicious/noExplicitAny: response bodies are checked by the assertions that read them
type Body = any;
const call = async (tenant: 'acme' | 'globex', method: string, path: string, body?: unknown) => {
  const key = KEYS.find((k) => k.tenant === tenant)?.key;
  const res = await api.app.request(path, {
    method,
    headers: {
      authorization: `Bearer ${key}`,
      ...(body !== undefined && { 'content-type': 'application/json' }),
    },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return {
    status: res.status,
    headers: res.headers,
    body: (text ? JSON.parse(text) : null) as Body,
  };
};
const create = (tenant: 'acme' | 'globex', body: unknown) =>
  call(tenant, 'POST', '/v1/schedules', body);
const list = async (tenant: 'acme' | 'globex') =>
  (await call(tenant, 'GET', '/v1/schedules')).body.schedules as Body[];
const removeAll = async (tenant: 'acme' | 'globex') => {
  for (const s of await list(tenant)) await call(tenant, 'DELETE', `/v1/schedules/${s.id}`);
};
const primes = { task: 'primes.count', input: { below: 1000 } };

describe('POST /v1/schedules', () => {
  it('creates a cron schedule in a time zone and answers when it fires next', async () => {
    const before = Date.now();
    const res = await create('acme', { ...primes, cron: '30 2 * * *', timezone: 'Europe/Berlin' });
    expect(res.status).toBe(201);
    expect(res.headers.get('location')).toBe(`/v1/schedules/${res.body.id}`);
    expect(res.body).toMatchObject({
      task: 'primes.count',
      input: { below: 1000 },
      cron: '30 2 * * *',
      timezone: 'Europe/Berlin',
      lastError: null,
    });
    const next = Date.parse(res.body.nextRunAt);
    expect(next).toBeGreaterThan(before);
    expect(next - before).toBeLessThanOrEqual(25 * 3600 * 1000);
    // 02:30 in Berlin, whatever the season.
    const berlin = new Intl.DateTimeFormat('en-GB', {
      timeZone: 'Europe/Berlin',
      hour: '2-digit',
      minute: '2-digit',
    });
    expect(berlin.format(next)).toBe('02:30');
    await removeAll('acme');
  });

  it('creates an interval schedule, due one interval after its creation, in UTC', async () => {
    const before = Date.now();
    const res = await create('acme', { ...primes, options: { priority: 5 }, everyMs: 60_000 });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ everyMs: 60_000, timezone: 'UTC', options: { priority: 5 } });
    expect(res.body.cron).toBeUndefined();
    const next = Date.parse(res.body.nextRunAt);
    expect(next).toBeGreaterThanOrEqual(before + 60_000);
    expect(next).toBeLessThanOrEqual(Date.now() + 60_000);
    await removeAll('acme');
  });

  it.each([
    ['a cron expression of 4 fields', { ...primes, cron: '* * * *' }, ['cron']],
    ['a cron expression with a minute of 61', { ...primes, cron: '61 * * * *' }, ['cron']],
    ['a cron macro', { ...primes, cron: '@daily' }, ['cron']],
    ['a day that never comes', { ...primes, cron: '0 0 30 2 *' }, ['cron']],
    [
      'an unknown time zone',
      { ...primes, cron: '0 3 * * *', timezone: 'Mars/Olympus' },
      ['timezone'],
    ],
    ['an interval below the minimum', { ...primes, everyMs: 999 }, ['everyMs']],
    ['both cron and everyMs', { ...primes, cron: '0 3 * * *', everyMs: 60_000 }, ['cron']],
    ['neither cron nor everyMs', primes, ['cron']],
    ['a time zone with an interval', { ...primes, everyMs: 5000, timezone: 'UTC' }, ['timezone']],
    ['an unknown field', { ...primes, everyMs: 5000, every: 5 }, ['every']],
    [
      'an input the task refuses',
      { task: 'primes.count', input: { below: -1 }, everyMs: 5000 },
      ['input.below'],
    ],
    [
      'a bad cron and a bad input at once',
      { task: 'primes.count', input: {}, cron: 'x' },
      ['cron', 'input.below'],
    ],
  ])('refuses %s with 422, its path, and stores nothing', async (_, body, paths) => {
    const res = await create('acme', body);
    expect(res.status).toBe(422);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
    expect(res.body.code).toBe('validation_failed');
    expect(res.body.errors.map((e: Body) => e.path)).toEqual(expect.arrayContaining(paths));
    expect(await list('acme')).toEqual([]);
  });

  it('refuses an unknown task with 422 unknown_task and stores nothing', async () => {
    const res = await create('acme', { task: 'no.such', input: {}, everyMs: 5000 });
    expect(res.status).toBe(422);
    expect(res.body.code).toBe('unknown_task');
    expect(res.body.errors).toEqual([{ path: 'task', message: 'unknown task' }]);
    expect(await list('acme')).toEqual([]);
  });

  it(`keeps at most ${MAX_PER_TENANT} schedules per tenant (429 past it), counted per tenant`, async () => {
    for (let i = 0; i < MAX_PER_TENANT; i++) {
      expect((await create('acme', { ...primes, everyMs: 10_000 + i })).status).toBe(201);
    }
    const refused = await create('acme', { ...primes, everyMs: 5000 });
    expect(refused.status).toBe(429);
    expect(refused.body.code).toBe('schedule_quota_exceeded');
    expect(refused.headers.get('retry-after')).toBe('60');
    expect(await list('acme')).toHaveLength(MAX_PER_TENANT);
    // Another tenant is not held back by acme's schedules.
    expect((await create('globex', { ...primes, everyMs: 5000 })).status).toBe(201);
    // Deleting one makes room again.
    const [first] = await list('acme');
    expect((await call('acme', 'DELETE', `/v1/schedules/${first.id}`)).status).toBe(204);
    expect((await create('acme', { ...primes, everyMs: 5000 })).status).toBe(201);
    await removeAll('acme');
    await removeAll('globex');
  });
});

describe('GET and DELETE /v1/schedules/{id}', () => {
  it("lists the tenant's own schedules and reads one with its recent jobs", async () => {
    const a = (await create('acme', { ...primes, everyMs: 5000 })).body;
    const g = (await create('globex', { ...primes, cron: '*/5 * * * *' })).body;
    expect((await list('acme')).map((s) => s.id)).toEqual([a.id]);
    expect((await list('globex')).map((s) => s.id)).toEqual([g.id]);
    const one = await call('acme', 'GET', `/v1/schedules/${a.id}`);
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({ id: a.id, everyMs: 5000, recentJobs: [] });
    await removeAll('acme');
    await removeAll('globex');
  });

  it("answers 404 for another tenant's schedule, and does not delete it", async () => {
    const g = (await create('globex', { ...primes, everyMs: 5000 })).body;
    const read = await call('acme', 'GET', `/v1/schedules/${g.id}`);
    expect(read.status).toBe(404);
    expect(read.body.code).toBe('not_found');
    expect(JSON.stringify(read.body)).not.toContain('primes');
    expect((await call('acme', 'DELETE', `/v1/schedules/${g.id}`)).status).toBe(404);
    expect((await call('globex', 'GET', `/v1/schedules/${g.id}`)).status).toBe(200);
    await removeAll('globex');
  });

  it('deletes with 204, after which the schedule answers 404', async () => {
    const a = (await create('acme', { ...primes, everyMs: 5000 })).body;
    const deleted = await call('acme', 'DELETE', `/v1/schedules/${a.id}`);
    expect(deleted.status).toBe(204);
    expect((await call('acme', 'GET', `/v1/schedules/${a.id}`)).status).toBe(404);
    expect((await call('acme', 'DELETE', `/v1/schedules/${a.id}`)).status).toBe(404);
    expect(await list('acme')).toEqual([]);
  });
});

describe('a firing whose job is refused', () => {
  it("makes no job and says why in the schedule's lastError, then fires again on time", async () => {
    // One unfinished job per tenant and no worker: the first firing's job fills the quota.
    const firing = await startApi({
      redis: testRedis(),
      prefix: testPrefix(),
      registry,
      listen: false,
      maxOpenJobsPerTenant: 1,
      fireSchedules: true,
    });
    try {
      const request = async (path: string, init?: RequestInit) =>
        (await (await firing.app.request(path, init)).json()) as Body;
      const created = await request('/v1/schedules', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ ...primes, everyMs: 1000 }),
      });
      await new Promise((resolve) => setTimeout(resolve, 2600));
      const schedule = await request(`/v1/schedules/${created.id}`);
      expect(schedule.recentJobs).toHaveLength(1);
      expect(schedule.lastError).toMatch(
        /^\d{4}-\d\d-\d\dT.*Z: At most 1 unfinished jobs per tenant$/,
      );
      expect(Date.parse(schedule.nextRunAt)).toBeGreaterThan(Date.now());
      expect((await request('/v1/jobs')).jobs).toHaveLength(1);
    } finally {
      await firing.close();
    }
  });
});

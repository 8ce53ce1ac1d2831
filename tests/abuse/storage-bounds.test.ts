import { createRedis, offloadKeys, publishCatalog } from '@offload/queue';
import { catalogEntryOf, defineTask } from '@offload/tasks';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type KillableRedis, startKillableRedis } from '../support/private-redis.ts';
import { testRedis } from '../support/redis-url.ts';
import { type ApiProcess, startApiProcess } from './api-process.ts';

const redis = createRedis(testRedis(), 'worker');
afterAll(() => redis.disconnect());

let api: ApiProcess | undefined;
afterEach(async () => {
  await api?.stop();
  api = undefined;
});

const KIB = 1024;

function submit(url: string, body: unknown) {
  return fetch(`${url}/v1/jobs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

const defaults = { timeoutMs: 1000, attempts: 1, backoff: { type: 'fixed', delay: 0 } } as const;
/** A task whose schema takes texts longer than any size bound: only the size bound stops them. */
const text = defineTask({
  name: 'test.text',
  description: 'Accepts a long text.',
  queue: 'default',
  input: z.strictObject({ text: z.string().max(10_000_000), marker: z.string() }),
  output: z.object({}),
  defaults,
  run: () => ({}),
});
/** The same, with a larger bound of its own. */
const bigInput = defineTask({ ...text, name: 'test.big-input', maxInputBytes: 150 * KIB });

/** The API process with both test tasks in its catalog. */
async function startApi(env: Record<string, string> = {}): Promise<ApiProcess> {
  const started = await startApiProcess(env);
  const admin = env.REDIS_URL ? createRedis({ url: env.REDIS_URL }, 'worker') : redis;
  await publishCatalog(admin, offloadKeys(started.prefix), [text, bigInput].map(catalogEntryOf));
  if (admin !== redis) admin.disconnect();
  return started;
}

/** A test.text job (delayed, so it stays put) whose input is exactly `bytes` of JSON. */
function textOf(bytes: number, marker = 'x', delayMs = 3_600_000, task: string = text.name) {
  const input = { text: '', marker };
  input.text = 't'.repeat(bytes - Buffer.byteLength(JSON.stringify(input)));
  return { task, input, options: { delayMs } };
}

describe('every job input is bounded', () => {
  it('refuses an input past API_MAX_INPUT_BYTES with 413 input_too_large, below the body limit', async () => {
    api = await startApi({ API_MAX_INPUT_BYTES: String(64 * KIB) });
    const fits = await submit(api.url, textOf(64 * KIB));
    expect(fits.status).toBe(202);
    const over = await submit(api.url, textOf(64 * KIB + 1));
    expect(over.status).toBe(413);
    const problem = (await over.json()) as { code: string; errors: { path: string }[] };
    expect(problem.code).toBe('input_too_large');
    expect(problem.errors[0]?.path).toBe('input');
  });

  it('bounds the strings of the built-in tasks: a 1,040,000-character password is refused', async () => {
    api = await startApi({ API_MAX_INPUT_BYTES: String(2 * 1024 * KIB) });
    const res = await submit(api.url, {
      task: 'crypto.pbkdf2',
      input: {
        password: 'p'.repeat(1_040_000),
        salt: 's',
        iterations: 1,
        keyLength: 16,
        digest: 'sha256',
      },
    });
    expect(res.status).toBe(422);
    expect(((await res.json()) as { errors: { path: string }[] }).errors[0]?.path).toBe(
      'input.password',
    );
  });

  it("takes a task's own maxInputBytes over the default, as its catalog entry publishes it", async () => {
    api = await startApi({ API_MAX_INPUT_BYTES: String(64 * KIB) });
    const ok = await submit(api.url, textOf(150 * KIB, 'x', 0, bigInput.name));
    expect(ok.status).toBe(202);
    const over = await submit(api.url, textOf(150 * KIB + 1, 'x', 0, bigInput.name));
    expect(over.status).toBe(413);
    expect(((await over.json()) as { detail: string }).detail).toMatch(/at most 153600/);
  });
});

/** Bytes Redis spends on everything one tenant's jobs hold: its own keys and each job's hash. */
async function tenantMemory(prefix: string, tenant: string, ids: string[]): Promise<number> {
  const keys = offloadKeys(prefix);
  const names = [
    keys.tenantJobs(tenant),
    keys.tenantOpenJobs(tenant),
    keys.tenantStored(tenant),
    keys.tenantHeldUntil(tenant),
    ...ids.map((id) => offloadKeys(prefix).bullKey('default', id)),
  ];
  let total = 0;
  for (const name of names) total += Number((await redis.memory('USAGE', name, 'SAMPLES', 0)) ?? 0);
  return total;
}

describe("one tenant's storage is bounded", () => {
  it("a tenant filling its storage quota with max-size inputs holds no more than the quota and Redis' allocator's 25 %", async () => {
    const quota = 1024 * KIB;
    api = await startApi({
      API_MAX_INPUT_BYTES: String(64 * KIB),
      API_MAX_STORED_BYTES_PER_TENANT: String(quota),
    });
    const ids: string[] = [];
    let refused: Response | undefined;
    for (let i = 0; i < 40 && !refused; i++) {
      const res = await submit(api.url, textOf(64 * KIB));
      if (res.status === 202) ids.push(((await res.json()) as { id: string }).id);
      else refused = res;
    }
    // Each job counts its input and 2 KiB for BullMQ's and Offload's own records of it.
    expect(ids).toHaveLength(Math.floor(quota / (66 * KIB)));
    if (!refused) throw new Error('no submit was refused');
    expect(refused.status).toBe(429);
    expect(((await refused.json()) as { code: string }).code).toBe('storage_quota_exceeded');
    expect(refused.headers.get('retry-after')).toBe('60');
    const used = await tenantMemory(api.prefix, 'dev', ids);
    console.log(
      `${ids.length} jobs of 64 KiB inputs: ${used} bytes in Redis (${(used / ids.length - 64 * KIB).toFixed(0)} bytes over the input a job)`,
    );
    // jemalloc rounds each allocation up to its size class, at most 25 % more (a 64 KiB string takes 80 KiB).
    expect(used).toBeLessThanOrEqual(1.25 * quota);
  });

  it('a delayed job older than the failed-job retention still counts and is still listed', async () => {
    api = await startApi({ API_MAX_QUEUED_PER_TENANT: '2' });
    const keys = offloadKeys(api.prefix);
    const res = await submit(api.url, textOf(200, 'x', 20 * 24 * 3600 * 1000));
    const { id } = (await res.json()) as { id: string };
    // As if it had been submitted 8 days ago: older than JOB_RETENTION_FAILED_S (7 days).
    const eightDaysAgo = Date.now() - 8 * 24 * 3600 * 1000;
    await redis.zadd(keys.tenantJobs('dev'), eightDaysAgo, id);
    await redis.zadd(keys.tenantOpenJobs('dev'), eightDaysAgo, id);
    expect((await submit(api.url, textOf(200))).status).toBe(202);
    const third = await submit(api.url, textOf(200));
    expect(third.status).toBe(429);
    const list = (await (await fetch(`${api.url}/v1/jobs?limit=10`)).json()) as {
      jobs: { id: string }[];
    };
    expect(list.jobs.map((job) => job.id)).toContain(id);
  });
});

describe('Redis errors', () => {
  it("never put a job's input or Redis command arguments in the API's log", async () => {
    api = await startApi();
    // The queue's event stream as a plain string: BullMQ's add script fails with WRONGTYPE.
    await redis.set(offloadKeys(api.prefix).bullKey('default', 'events'), 'not a stream');
    const marker = `secret-input-${Math.random().toString(36).slice(2)}`;
    const res = await submit(api.url, textOf(300, marker, 0));
    expect(res.status).toBe(500);
    expect(((await res.json()) as { code: string }).code).toBe('internal');
    await new Promise((r) => setTimeout(r, 200));
    const lines = api.logLines();
    expect(lines.some((line) => line.msg === 'unhandled error')).toBe(true);
    expect(api.process.output()).not.toContain(marker);
    expect(api.process.output()).not.toContain('evalsha');
    await redis.del(offloadKeys(api.prefix).bullKey('default', 'events'));
  });
});

describe('a Redis out of memory', () => {
  let full: KillableRedis | undefined;
  afterEach(async () => {
    await full?.close();
    full = undefined;
  });

  it('answers 503 redis_out_of_memory and /readyz says so, until memory is free again', async () => {
    full = await startKillableRedis({ appendOnly: false });
    api = await startApi({ REDIS_URL: full.url });
    expect((await submit(api.url, textOf(1000))).status).toBe(202);
    const used = Number(/^used_memory:(\d+)/m.exec(await full.admin.info('memory'))?.[1]);
    await full.admin.config('SET', 'maxmemory', String(used + 1024 * KIB));
    const marker = `secret-input-${Math.random().toString(36).slice(2)}`;
    let res: Response | undefined;
    for (let i = 0; i < 100; i++) {
      res = await submit(api.url, textOf(60 * KIB, marker));
      if (res.status !== 202) break;
    }
    expect(res?.status).toBe(503);
    const problem = (await res?.json()) as { code: string };
    expect(problem.code).toBe('redis_out_of_memory');
    expect(res?.headers.get('retry-after')).toBe('30');
    const ready = await fetch(`${api.url}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ status: 'out_of_memory', redis: 'full' });
    expect(api.process.output()).not.toContain(marker);

    await full.admin.config('SET', 'maxmemory', '0');
    expect((await fetch(`${api.url}/readyz`)).status).toBe(200);
    expect((await submit(api.url, textOf(1000))).status).toBe(202);
  });
});

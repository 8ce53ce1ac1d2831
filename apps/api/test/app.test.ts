import { registry } from '@offload/tasks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../../scripts/redis-server.ts';
import { startApi, type TestApi } from '../../../tests/support/api-server.ts';
import { testPrefix } from '../../../tests/support/processes.ts';
import { testRedis } from '../../../tests/support/redis-url.ts';

// No worker runs here: these tests are about what the API accepts, refuses and records.
let api: TestApi;
beforeAll(async () => {
  api = await startApi({
    redis: testRedis(),
    prefix: testPrefix(),
    registry,
    listen: false,
  });
});
afterAll(() => api.close());

// biome-ignore lint/suspicious/noExplicitAny: response bodies are checked by the assertions that read them
type Body = any;
const json = (res: Response): Promise<Body> => res.json();

const post = (
  body: string,
  headers: Record<string, string> = { 'content-type': 'application/json' },
) => api.app.request('/v1/jobs', { method: 'POST', body, headers });

async function expectProblem(res: Response, status: number, code: string) {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  const body = await json(res);
  expect(body).toMatchObject({ status, code, type: expect.any(String), title: expect.any(String) });
  expect(typeof body.detail).toBe('string');
  return body;
}

describe('POST /v1/jobs — happy path', () => {
  it('answers 202 at once with a Location and a queued JobView', async () => {
    const res = await post(JSON.stringify({ task: 'primes.count', input: { below: 1000 } }));
    expect(res.status).toBe(202);
    const view = await json(res);
    expect(res.headers.get('location')).toBe(`/v1/jobs/${view.id}`);
    expect(view).toMatchObject({
      task: 'primes.count',
      state: 'queued',
      progress: 0,
      attempts: { made: 0, max: 3 },
      result: null,
      error: null,
      startedAt: null,
      finishedAt: null,
    });
    expect(view.id).toMatch(/^[A-Za-z0-9_-]{27}$/);
    expect(Date.parse(view.createdAt)).toBeGreaterThan(Date.now() - 60_000);

    const again = await api.app.request(`/v1/jobs/${view.id}`);
    expect(again.status).toBe(200);
    expect(await json(again)).toMatchObject({ id: view.id, state: 'queued' });
  });

  it('gives every job a fresh random id', async () => {
    const ids = new Set<string>();
    for (let i = 0; i < 20; i++) {
      const res = await post(JSON.stringify({ task: 'cpu.burn', input: { ms: 1 } }));
      ids.add((await json(res)).id);
    }
    expect(ids.size).toBe(20);
  });

  it('honours per-job options: delayed jobs are delayed, attempts and timeouts override the defaults', async () => {
    const res = await post(
      JSON.stringify({
        task: 'cpu.burn',
        input: { ms: 1 },
        options: { delayMs: 60_000, attempts: 5, timeoutMs: 2000, priority: 3 },
      }),
    );
    expect(res.status).toBe(202);
    const view = await json(res);
    expect(view).toMatchObject({ state: 'delayed', attempts: { made: 0, max: 5 } });
    const read = await json(await api.app.request(`/v1/jobs/${view.id}`));
    expect(read.state).toBe('delayed');
  });
});

describe('POST /v1/jobs — errors', () => {
  it('answers 400 to malformed JSON', async () => {
    await expectProblem(await post('{"task": '), 400, 'malformed_json');
  });

  it('answers 415 to a body that is not JSON', async () => {
    await expectProblem(
      await post('task=primes.count', { 'content-type': 'application/x-www-form-urlencoded' }),
      415,
      'unsupported_media_type',
    );
    await expectProblem(await post('{}', {}), 415, 'unsupported_media_type');
  });

  it('answers 422 to an unknown task, naming the known ones', async () => {
    const body = await expectProblem(
      await post(JSON.stringify({ task: 'nope.nothing', input: {} })),
      422,
      'unknown_task',
    );
    expect(body.detail).toContain('primes.count');
    expect(body.errors).toEqual([{ path: 'task', message: 'unknown task' }]);
    // Even without an input, the unknown task is what the answer is about.
    await expectProblem(await post(JSON.stringify({ task: 'nope.nothing' })), 422, 'unknown_task');
    const noInput = await expectProblem(
      await post(JSON.stringify({ task: 'primes.count' })),
      422,
      'validation_failed',
    );
    expect(noInput.errors[0].path).toBe('input');
  });

  it('does not resolve object-prototype names as tasks', async () => {
    for (const task of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
      await expectProblem(await post(JSON.stringify({ task, input: {} })), 422, 'unknown_task');
    }
  });

  it('answers 422 with field paths to input that does not fit the task', async () => {
    const body = await expectProblem(
      await post(JSON.stringify({ task: 'primes.count', input: { below: 1.5, extra: 1 } })),
      422,
      'validation_failed',
    );
    const paths = body.errors.map((e: { path: string }) => e.path);
    expect(paths).toContain('input.below');
    expect(paths.some((p: string) => p.startsWith('input'))).toBe(true);

    const range = await expectProblem(
      await post(JSON.stringify({ task: 'primes.count', input: { below: 3_000_000_000 } })),
      422,
      'validation_failed',
    );
    expect(range.errors[0].path).toBe('input.below');

    const missing = await expectProblem(
      await post(JSON.stringify({ task: 'crypto.pbkdf2', input: { password: 'x' } })),
      422,
      'validation_failed',
    );
    expect(missing.errors.map((e: { path: string }) => e.path)).toEqual(
      expect.arrayContaining(['input.salt', 'input.iterations', 'input.keyLength', 'input.digest']),
    );
  });

  it('answers 422 to a malformed envelope or options', async () => {
    const noTask = await expectProblem(
      await post(JSON.stringify({ input: {} })),
      422,
      'validation_failed',
    );
    expect(noTask.errors[0].path).toBe('task');
    const array = await expectProblem(await post('[1,2]'), 422, 'validation_failed');
    expect(array.errors[0].path).toBe('(body)');
    const options = await expectProblem(
      await post(
        JSON.stringify({
          task: 'cpu.burn',
          input: { ms: 1 },
          options: { timeoutMs: -1, retries: 2 },
        }),
      ),
      422,
      'validation_failed',
    );
    expect(options.errors.map((e: { path: string }) => e.path)).toEqual(
      expect.arrayContaining(['options.timeoutMs', 'options.retries']),
    );
  });

  it('answers 413 to a body over the size limit', async () => {
    const big = JSON.stringify({ task: 'cpu.burn', input: { ms: 1, pad: 'x'.repeat(100_000) } });
    await expectProblem(await post(big), 413, 'payload_too_large');
  });
});

describe('GET and DELETE /v1/jobs/:id', () => {
  it('answers 404 to an id never issued, and to one that could not be', async () => {
    await expectProblem(await api.app.request('/v1/jobs/AAAAAAAAAAAAAAAAAAAAAA'), 404, 'not_found');
    await expectProblem(await api.app.request('/v1/jobs/a:b*c'), 404, 'not_found');
    await expectProblem(
      await api.app.request('/v1/jobs/AAAAAAAAAAAAAAAAAAAAAA', { method: 'DELETE' }),
      404,
      'not_found',
    );
  });

  it('answers 404, not 500, to ids named like the queue’s own BullMQ keys', async () => {
    // A job makes the queue's keys (its event stream, meta, id counter…) exist.
    expect((await post(JSON.stringify({ task: 'cpu.burn', input: { ms: 1 } }))).status).toBe(202);
    for (const id of ['events', 'meta', 'id', 'delayed', 'marker', 'wait', 'completed']) {
      await expectProblem(await api.app.request(`/v1/jobs/${id}`), 404, 'not_found');
      await expectProblem(
        await api.app.request(`/v1/jobs/${id}`, { method: 'DELETE' }),
        404,
        'not_found',
      );
    }
  });

  it('answers 422 to a wait outside 0–60 seconds', async () => {
    for (const wait of ['61', '-1', 'abc', '1e3', '']) {
      const body = await expectProblem(
        await api.app.request(`/v1/jobs/AAAAAAAAAAAAAAAAAAAAAA?wait=${wait}`),
        422,
        'validation_failed',
      );
      expect(body.errors[0].path).toBe('wait');
    }
  });

  it('holds a long-poll on an unfinished job for the time asked, then answers its view', async () => {
    const view = await json(
      await post(
        JSON.stringify({ task: 'cpu.burn', input: { ms: 1 }, options: { delayMs: 60_000 } }),
      ),
    );
    const started = Date.now();
    const res = await api.app.request(`/v1/jobs/${view.id}?wait=0.5`);
    expect(Date.now() - started).toBeGreaterThanOrEqual(450);
    expect((await json(res)).state).toBe('delayed');
  });

  it('cancels a queued job: 200 canceled, and it stays canceled', async () => {
    const view = await json(await post(JSON.stringify({ task: 'cpu.burn', input: { ms: 1 } })));
    const res = await api.app.request(`/v1/jobs/${view.id}`, { method: 'DELETE' });
    expect(res.status).toBe(200);
    expect(await json(res)).toMatchObject({
      id: view.id,
      state: 'canceled',
      error: { code: 'canceled' },
      finishedAt: expect.any(String),
    });
    const again = await api.app.request(`/v1/jobs/${view.id}`, { method: 'DELETE' });
    expect(again.status).toBe(200);
    const read = await json(await api.app.request(`/v1/jobs/${view.id}?wait=1`));
    expect(read.state).toBe('canceled');
  });
});

describe('GET /v1/tasks', () => {
  it('lists every task with the JSON Schema of its input and output', async () => {
    const res = await api.app.request('/v1/tasks');
    expect(res.status).toBe(200);
    const { tasks } = await json(res);
    expect(tasks.map((t: { name: string }) => t.name).sort()).toEqual([
      'cpu.burn',
      'crypto.pbkdf2',
      'image.mandelbrot',
      'primes.count',
    ]);
    const primes = tasks.find((t: { name: string }) => t.name === 'primes.count');
    expect(primes.input).toMatchObject({
      type: 'object',
      properties: { below: { type: 'integer', minimum: 2, maximum: 2_000_000_000 } },
      required: ['below'],
      additionalProperties: false,
    });
    expect(primes.output.properties.count.type).toBe('integer');
    expect(primes.defaults).toMatchObject({
      timeoutMs: expect.any(Number),
      attempts: expect.any(Number),
    });
  });
});

describe('health', () => {
  it('is alive and ready while Redis answers', async () => {
    expect(await json(await api.app.request('/healthz'))).toEqual({ status: 'ok' });
    const ready = await api.app.request('/readyz');
    expect(ready.status).toBe(200);
    expect(await json(ready)).toEqual({ status: 'ready', redis: 'up', workers: 0 });
  });

  it('answers unknown routes with a 404 problem', async () => {
    await expectProblem(await api.app.request('/v2/nothing'), 404, 'not_found');
  });
});

describe('with Redis unreachable', () => {
  let down: TestApi;
  beforeAll(async () => {
    // A port nothing listens on.
    const port = await freePort();
    down = await startApi({
      redis: { url: `redis://127.0.0.1:${port}` },
      prefix: testPrefix(),
      listen: false,
    });
  });
  afterAll(() => down.close());

  it('answers 503 at once, never a hang or a 500', async () => {
    const started = Date.now();
    const submit = await down.app.request('/v1/jobs', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ task: 'cpu.burn', input: { ms: 1 } }),
    });
    const body = await expectProblem(submit, 503, 'redis_unavailable');
    expect(submit.headers.get('retry-after')).toBe('1');
    expect(body.detail).toMatch(/Redis/);
    await expectProblem(
      await down.app.request('/v1/jobs/AAAAAAAAAAAAAAAAAAAAAAAAAAA'),
      503,
      'redis_unavailable',
    );
    await expectProblem(
      await down.app.request('/v1/jobs/AAAAAAAAAAAAAAAAAAAAAAAAAAA', { method: 'DELETE' }),
      503,
      'redis_unavailable',
    );
    const ready = await down.app.request('/readyz');
    expect(ready.status).toBe(503);
    expect(await json(ready)).toMatchObject({ status: 'unavailable', redis: 'down' });
    expect((await down.app.request('/healthz')).status).toBe(200);
    expect(Date.now() - started).toBeLessThan(1000);
  });
});

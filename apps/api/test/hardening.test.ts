import { connect } from 'node:net';
import { registry } from '@offload/tasks';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type TestApi } from '../../../tests/support/api-server.ts';
import { testPrefix } from '../../../tests/support/processes.ts';
import { testRedis } from '../../../tests/support/redis-url.ts';

/**
 * Generated abuse of every route: random JSON, wrong types, huge numbers,
 * deep nesting, odd headers, unicode and prototype keys. Whatever comes in,
 * the answer is never a 5xx and every error is a problem document.
 */
const KEY = 'hardening-key-0123456789ab';
let api: TestApi;
beforeAll(async () => {
  api = await startApi({
    redis: testRedis(),
    prefix: testPrefix(),
    registry,
    apiKeys: [{ tenant: 'fuzz', key: KEY }],
    // Bounded so that generated valid jobs also meet the quota's 429.
    maxOpenJobsPerTenant: 50,
  });
});
afterAll(() => api.close());

const taskNames = registry.list().map((t) => t.name);
const PROTO = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty'];

const hugeNumber = fc.constantFrom(
  '1e308',
  '-1e308',
  '1e400',
  '9007199254740993',
  '-0',
  '0.0000000000000000000001',
  '123456789012345678901234567890',
);
const oddKey = fc.oneof(fc.constantFrom(...PROTO), fc.string({ unit: 'binary', maxLength: 12 }));
/** JSON text that JSON.stringify would never write: prototype keys, huge literals. */
const hostileObject = fc
  .tuple(oddKey, fc.oneof(hugeNumber, fc.json({ maxDepth: 2 })), fc.constantFrom(...taskNames))
  .map(
    ([key, value, task]) =>
      `{"task":"${task}","input":{${JSON.stringify(key)}:${value}},${JSON.stringify(key)}:${value}}`,
  );
const deepNesting = fc
  .tuple(fc.integer({ min: 1, max: 3000 }), fc.constantFrom('[', '{"a":'))
  .map(([depth, open]) => open.repeat(depth) + '1' + (open === '[' ? ']' : '}').repeat(depth));
/** Nearly valid job requests: a real task, fields of the wrong type or out of range. */
const almostValid = fc
  .record(
    {
      task: fc.oneof(fc.constantFrom(...taskNames, ...PROTO), fc.string()),
      input: fc.oneof(
        fc.dictionary(
          fc.constantFrom(
            'below',
            'ms',
            'width',
            'height',
            'password',
            'salt',
            'iterations',
            'keyLength',
            'digest',
            'zoom',
            ...PROTO,
          ),
          fc.oneof(
            fc.integer(),
            fc.double(),
            fc.string(),
            fc.boolean(),
            fc.constant(null),
            fc.jsonValue({ maxDepth: 2 }),
          ),
        ),
        fc.jsonValue({ maxDepth: 2 }),
      ),
      options: fc.dictionary(
        fc.constantFrom('priority', 'delayMs', 'attempts', 'timeoutMs', 'retries'),
        fc.oneof(fc.integer(), fc.double(), fc.string()),
      ),
    },
    { requiredKeys: [] },
  )
  .map((body) => JSON.stringify(body));
/** Valid job requests, so accepted jobs, idempotent replays, conflicts and the quota are reached too. */
const valid = fc
  .oneof(
    fc.record({
      task: fc.constant('primes.count'),
      input: fc.record({ below: fc.integer({ min: 2, max: 1e6 }) }),
    }),
    fc.record({
      task: fc.constant('cpu.burn'),
      input: fc.record({ ms: fc.integer({ min: 0, max: 100 }) }),
    }),
    fc.record({
      task: fc.constant('image.mandelbrot'),
      input: fc.record(
        {
          width: fc.integer({ min: 16, max: 64 }),
          height: fc.integer({ min: 16, max: 64 }),
          zoom: fc.double({ min: 0.1, max: 1e6, noNaN: true }),
        },
        { requiredKeys: ['width', 'height'] },
      ),
    }),
  )
  .map((request) => JSON.stringify({ ...request, options: { delayMs: 60_000 } }));
const body = fc.oneof(
  valid,
  valid,
  almostValid,
  hostileObject,
  deepNesting,
  fc.json({ maxDepth: 4 }),
  fc.string({ unit: 'binary', maxLength: 200 }),
  fc.constantFrom(
    '',
    'null',
    '[]',
    '{}',
    '{"task":',
    '\u0000',
    '\ufeff{}',
    '"\\ud800"',
    'x'.repeat(70_000),
  ),
);

const jobId = fc.oneof(
  fc.stringMatching(/^[A-Za-z0-9_-]{27}$/),
  fc.constantFrom(...PROTO, '..', '%2e%2e', 'a%2Fb', '%00', 'x'.repeat(500)),
  fc.string({ unit: 'binary', maxLength: 30 }).map(encodeURIComponent),
);
const query = fc
  .array(
    fc.tuple(
      fc.constantFrom('wait', 'state', 'task', 'limit', 'cursor', '__proto__', 'x'),
      fc.oneof(
        fc.constantFrom(
          '0',
          '0.01',
          '61',
          '-1',
          '1e3',
          'NaN',
          'queued',
          'primes.count',
          '100',
          '101',
          'bm9wZQ',
        ),
        fc.string({ unit: 'binary', maxLength: 20 }),
      ),
    ),
    { maxLength: 3 },
  )
  .map((pairs) => (pairs.length ? `?${new URLSearchParams(pairs)}` : ''));
const path = fc.oneof(
  fc.constantFrom(
    '/healthz',
    '/readyz',
    '/openapi.json',
    '/docs',
    '/v1/tasks',
    '/v1/jobs',
    '/',
    '/v1',
    '/v1/',
  ),
  jobId.map((id) => `/v1/jobs/${id}`),
  jobId.map((id) => `/v1/jobs/${id}/events`),
  fc.string({ unit: 'binary', maxLength: 30 }).map((s) => `/${encodeURIComponent(s)}`),
);
const headerValue = fc.string({ maxLength: 40 }).map((s) => s.replace(/[^\x20-\x7e]/g, ''));
const headers = fc.record(
  {
    authorization: fc.oneof(
      fc.constant(`Bearer ${KEY}`),
      fc.constant(`Bearer ${KEY}`),
      fc.constant(`bearer  ${KEY} `),
      headerValue,
      headerValue.map((v) => `Bearer ${v}`),
    ),
    'content-type': fc.oneof(
      fc.constantFrom(
        'application/json',
        'application/json; charset=utf-8',
        'application/problem+json',
        'text/plain',
        'application/json;',
        'APPLICATION/JSON',
      ),
      headerValue,
    ),
    'idempotency-key': fc.oneof(fc.constantFrom('key-1', 'key-2'), headerValue),
    accept: fc.constantFrom('text/event-stream', 'application/json', '*/*'),
    'x-odd': headerValue,
  },
  { requiredKeys: [] },
);
interface Generated {
  method: string;
  path: string;
  query: string;
  headers: Record<string, string>;
  body: string;
}
const anything = fc.record({
  method: fc.constantFrom(
    'GET',
    'GET',
    'POST',
    'POST',
    'DELETE',
    'PUT',
    'PATCH',
    'OPTIONS',
    'HEAD',
  ),
  path,
  query,
  headers,
  body,
});
/** Submits that mostly pass authentication and the media-type check, so the body's checks are reached. */
const submit = fc.record({
  method: fc.constant('POST'),
  path: fc.constant('/v1/jobs'),
  query: fc.constant(''),
  headers: fc.record(
    {
      authorization: fc.oneof(
        { arbitrary: fc.constant(`Bearer ${KEY}`), weight: 9 },
        { arbitrary: headerValue, weight: 1 },
      ),
      'content-type': fc.oneof(
        { arbitrary: fc.constant('application/json'), weight: 9 },
        { arbitrary: headerValue, weight: 1 },
      ),
      'idempotency-key': fc.oneof(fc.constantFrom('key-1', 'key-2'), headerValue),
    },
    { requiredKeys: ['authorization', 'content-type'] },
  ),
  body,
});
/** Reads, streams and cancels of job ids, authenticated. */
const jobCall = fc.record({
  method: fc.constantFrom('GET', 'DELETE'),
  path: fc.oneof(
    jobId.map((id) => `/v1/jobs/${id}`),
    jobId.map((id) => `/v1/jobs/${id}/events`),
    fc.constant('/v1/jobs'),
  ),
  query,
  headers: fc.constant({ authorization: `Bearer ${KEY}` }),
  body: fc.constant(''),
});
const request: fc.Arbitrary<Generated> = fc.oneof(
  { arbitrary: anything, weight: 4 },
  { arbitrary: submit, weight: 4 },
  { arbitrary: jobCall, weight: 2 },
);

function toRequest(base: string, r: Generated): Request {
  const withBody = r.method !== 'GET' && r.method !== 'HEAD';
  return new Request(`${base}${r.path}${r.query}`, {
    method: r.method,
    headers: r.headers,
    ...(withBody && { body: r.body }),
  });
}

/** What every answer must satisfy; an SSE stream of a found job is cut after its headers. */
async function checkAnswer(res: Response, r: Generated): Promise<void> {
  expect(res.status, `${r.method} ${r.path}${r.query}`).toBeLessThan(500);
  if (res.status < 400) {
    await res.body?.cancel();
    return;
  }
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  if (r.method === 'HEAD') return;
  const problem = (await res.json()) as { errors?: unknown[] };
  expect(problem).toMatchObject({
    type: expect.stringMatching(/^urn:offload:problem:/),
    title: expect.any(String),
    status: res.status,
    detail: expect.any(String),
    code: expect.any(String),
  });
  if (problem.errors) {
    for (const error of problem.errors) {
      expect(error).toEqual({ path: expect.any(String), message: expect.any(String) });
    }
  }
}

describe('generated requests to every route', () => {
  it('never answer 5xx and always answer errors as problem+json (10,000 through app.request)', async () => {
    const statuses = new Map<number, number>();
    const started = Date.now();
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const res = await api.app.request(toRequest('http://localhost', r));
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        await checkAnswer(res, r);
      }),
      { numRuns: 10_000 },
    );
    const count = [...statuses.values()].reduce((a, b) => a + b, 0);
    expect(count).toBe(10_000);
    // The generator reaches past authentication into every kind of answer, jobs accepted included.
    for (const status of [200, 202, 400, 401, 404, 409, 413, 415, 422, 429]) {
      expect(statuses.get(status) ?? 0, `answers with status ${status}`).toBeGreaterThan(0);
    }
    console.info(
      `hardening: ${count} requests through app.request in ${Date.now() - started} ms`,
      Object.fromEntries([...statuses].sort(([a], [b]) => a - b)),
    );
  }, 120_000);

  it('hold on a real server too: generated requests over HTTP, then raw malformed HTTP', async () => {
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        await checkAnswer(await fetch(toRequest(api.url, r)), r);
      }),
      { numRuns: 500 },
    );
    const { port } = new URL(api.url);
    const garbage = [
      'GARBAGE\r\n\r\n',
      'POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\nContent-Type: application/json\r\n\r\n{"task":',
      'POST /v1/jobs HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\nzz\r\n',
      'GET /v1/jobs/\u00ff\u0000 HTTP/1.1\r\nHost: x\r\n\r\n',
    ];
    for (const text of garbage) {
      await new Promise<void>((resolve) => {
        const socket = connect(Number(port), '127.0.0.1', () => socket.end(text));
        socket.on('data', () => {});
        socket.on('error', () => resolve());
        socket.on('close', () => resolve());
        socket.setTimeout(2000, () => socket.destroy());
      });
    }
    // Still serving.
    expect((await fetch(`${api.url}/healthz`)).status).toBe(200);
  }, 60_000);
});

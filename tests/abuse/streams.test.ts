import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { startApi, type TestApi } from '../support/api-server.ts';
import { type KillableRedis, startKillableRedis } from '../support/private-redis.ts';
import { type RunningProcess, startWorkerProcess, testPrefix } from '../support/processes.ts';
import { testRedis } from '../support/redis-url.ts';
import { registry } from '../support/test-tasks.ts';

/**
 * Event streams and long-polls are the API's long-lived resources: one tenant
 * may hold only so many at once, none lasts for ever, and however many follow
 * one job, each change of it costs Redis the same.
 */
const ACME = { tenant: 'acme', key: 'acme-streams-key-0123456789' };
const GLOBEX = { tenant: 'globex', key: 'globex-streams-key-0123456789' };
const HOUR_MS = 3_600_000;

const opened: TestApi[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((api) => api.close()));
});

async function api(options: Partial<Parameters<typeof startApi>[0]> = {}, target = testRedis()) {
  const started = await startApi({
    redis: target,
    prefix: testPrefix(),
    registry,
    apiKeys: [ACME, GLOBEX],
    ...options,
  });
  opened.push(started);
  return started;
}

const auth = (key: string) => ({ authorization: `Bearer ${key}` });

/** A job that stays delayed for an hour: nothing happens to it while the test runs. */
async function delayedJob(url: string, key: string): Promise<string> {
  const res = await fetch(`${url}/v1/jobs`, {
    method: 'POST',
    headers: { ...auth(key), 'content-type': 'application/json' },
    body: JSON.stringify({
      task: 'test.echo',
      input: { value: 'x' },
      options: { delayMs: HOUR_MS },
    }),
  });
  expect(res.status).toBe(202);
  return ((await res.json()) as { id: string }).id;
}

interface OpenStream {
  res: Response;
  /** Resolves with the next whole event's name and data; null once the stream has ended. */
  next(): Promise<{ event: string; data: { state: string; progress: number } } | null>;
  close(): Promise<void>;
}

/** Opens a job's event stream; when it answers 200, waits for its first event (the snapshot). */
async function openStream(url: string, key: string, id: string): Promise<OpenStream> {
  const res = await fetch(`${url}/v1/jobs/${id}/events`, { headers: auth(key) });
  const reader =
    res.status === 200 ? res.body?.pipeThrough(new TextDecoderStream()).getReader() : undefined;
  let buffer = '';
  const stream: OpenStream = {
    res,
    async next() {
      for (;;) {
        const end = buffer.indexOf('\n\n');
        if (end >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (event && data) return { event, data: JSON.parse(data) };
          continue;
        }
        const chunk = await reader?.read();
        if (!chunk || chunk.done) return null;
        buffer += chunk.value;
      }
    },
    close: async () => {
      await reader?.cancel().catch(() => {});
    },
  };
  if (res.status === 200) expect((await stream.next())?.event).toBe('state');
  return stream;
}

/** Reads a stream to its end; answers its events' names. */
async function drain(stream: OpenStream): Promise<string[]> {
  const events: string[] = [];
  for (let e = await stream.next(); e; e = await stream.next()) events.push(e.event);
  return events;
}

async function expectTooManyStreams(res: Response): Promise<void> {
  expect(res.status).toBe(429);
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
  expect(await res.json()).toMatchObject({ status: 429, code: 'too_many_streams' });
}

describe('streams per tenant', () => {
  it("refuses a tenant's 101st stream or waiting long-poll with 429 too_many_streams, while another tenant still opens one", async () => {
    const { url } = await api({ streams: { perTenant: 100 } });
    const [acmeJob, globexJob] = await Promise.all([
      delayedJob(url, ACME.key),
      delayedJob(url, GLOBEX.key),
    ]);
    const streams = await Promise.all(
      Array.from({ length: 100 }, () => openStream(url, ACME.key, acmeJob)),
    );
    try {
      expect(streams.map((s) => s.res.status)).toEqual(Array(100).fill(200));

      await expectTooManyStreams((await openStream(url, ACME.key, acmeJob)).res);
      await expectTooManyStreams(
        await fetch(`${url}/v1/jobs/${acmeJob}?wait=5`, { headers: auth(ACME.key) }),
      );
      // A plain read holds nothing and is still answered.
      expect((await fetch(`${url}/v1/jobs/${acmeJob}`, { headers: auth(ACME.key) })).status).toBe(
        200,
      );

      const other = await openStream(url, GLOBEX.key, globexJob);
      expect(other.res.status).toBe(200);
      await other.close();

      // A stream closed by its client gives its slot back.
      await streams[0]?.close();
      const again = await vi.waitFor(
        async () => {
          const stream = await openStream(url, ACME.key, acmeJob);
          expect(stream.res.status).toBe(200);
          return stream;
        },
        { timeout: 10_000, interval: 50 },
      );
      streams.push(again);
    } finally {
      await Promise.all(streams.map((s) => s.close()));
    }
  });

  it('refuses any tenant past the process-wide cap (API_MAX_STREAMS)', async () => {
    const { url } = await api({ streams: { perTenant: 2, total: 3 } });
    const [acmeJob, globexJob] = await Promise.all([
      delayedJob(url, ACME.key),
      delayedJob(url, GLOBEX.key),
    ]);
    const streams = [
      await openStream(url, ACME.key, acmeJob),
      await openStream(url, ACME.key, acmeJob),
      await openStream(url, GLOBEX.key, globexJob),
    ];
    try {
      expect(streams.map((s) => s.res.status)).toEqual([200, 200, 200]);
      await expectTooManyStreams((await openStream(url, GLOBEX.key, globexJob)).res);
    } finally {
      await Promise.all(streams.map((s) => s.close()));
    }
  });

  it('ends a stream after API_STREAM_MAX_S without a final event, and gives its slot back', async () => {
    const { url } = await api({ streams: { perTenant: 1, maxLifetimeMs: 500 } });
    const id = await delayedJob(url, ACME.key);
    const started = performance.now();
    const stream = await openStream(url, ACME.key, id);
    expect(stream.res.status).toBe(200);
    // The snapshot was read already; nothing more happens to a delayed job, so the stream just ends.
    expect(await drain(stream)).toEqual([]);
    expect(performance.now() - started).toBeGreaterThanOrEqual(450);
    const next = await vi.waitFor(
      async () => {
        const reopened = await openStream(url, ACME.key, id);
        expect(reopened.res.status).toBe(200);
        return reopened;
      },
      { timeout: 10_000, interval: 50 },
    );
    await next.close();
  });
});

describe('many streams on one job', () => {
  let redis: KillableRedis;
  let worker: RunningProcess;
  let shared: TestApi;
  const prefix = testPrefix();
  const TICKS = 10;

  beforeAll(async () => {
    redis = await startKillableRedis({ appendOnly: false });
    [shared, worker] = await Promise.all([
      startApi({
        redis: { url: redis.url },
        prefix,
        registry,
        apiKeys: [ACME, GLOBEX],
        streams: { perTenant: 1000 },
      }),
      startWorkerProcess({ redis: { url: redis.url }, prefix, concurrency: 1, testTasks: true }),
    ]);
  }, 60_000);
  afterAll(async () => {
    await worker?.stop('SIGKILL');
    await shared?.close();
    await redis?.close();
  });

  const commandsProcessed = async () =>
    Number(/total_commands_processed:(\d+)/.exec(await redis.admin.info('stats'))?.[1]);

  /**
   * Redis commands per progress report of one job followed by `followers`
   * streams, from the moment the job may run until every stream has its final
   * event. The job waits, delayed, until every stream is open.
   */
  async function commandsPerChange(followers: number) {
    const res = await fetch(`${shared.url}/v1/jobs`, {
      method: 'POST',
      headers: { ...auth(ACME.key), 'content-type': 'application/json' },
      body: JSON.stringify({
        task: 'test.ticks',
        input: { ticks: TICKS, everyMs: 150 },
        options: { delayMs: HOUR_MS },
      }),
    });
    const { id } = (await res.json()) as { id: string };
    const streams = await Promise.all(
      Array.from({ length: followers }, () => openStream(shared.url, ACME.key, id)),
    );
    expect(streams.every((s) => s.res.status === 200)).toBe(true);
    const before = await commandsProcessed();
    const queue = shared.jobs.bullQueues().find((q) => q.name === 'default');
    await (await queue?.getJob(id))?.promote();
    const events = await Promise.all(streams.map(drain));
    const after = await commandsProcessed();
    for (const names of events) expect(names.at(-1)).toBe('completed');
    return {
      perChange: (after - before) / TICKS,
      progressEvents: events[0]?.filter((e) => e === 'progress').length ?? 0,
    };
  }

  it('costs Redis the same per change of the job with 1 or 200 streams open on it', async () => {
    const one = await commandsPerChange(1);
    const many = await commandsPerChange(200);
    console.log(
      `Redis commands per progress report: 1 stream ${one.perChange.toFixed(1)}, 200 streams ${many.perChange.toFixed(1)}`,
    );
    expect(one.progressEvents).toBeGreaterThanOrEqual(3);
    expect(many.progressEvents).toBeGreaterThanOrEqual(3);
    // One read per change shared by every stream. Reading per stream would add 200 × 3 commands or
    // more per change; the slack is for the longer window's own timers (heartbeats, lock renewals).
    expect(many.perChange - one.perChange).toBeLessThan(30);
  });

  it('answers every long-poll waiting on one job with its result once it finishes', async () => {
    const res = await fetch(`${shared.url}/v1/jobs`, {
      method: 'POST',
      headers: { ...auth(ACME.key), 'content-type': 'application/json' },
      body: JSON.stringify({
        task: 'test.echo',
        input: { value: 'polled' },
        options: { delayMs: HOUR_MS },
      }),
    });
    const { id } = (await res.json()) as { id: string };
    const polls = Array.from({ length: 50 }, () =>
      fetch(`${shared.url}/v1/jobs/${id}?wait=30`, { headers: auth(ACME.key) }).then((r) =>
        r.json(),
      ),
    );
    const queue = shared.jobs.bullQueues().find((q) => q.name === 'default');
    await (await queue?.getJob(id))?.promote();
    for (const view of await Promise.all(polls)) {
      expect(view).toMatchObject({ state: 'completed', result: { value: 'polled' } });
    }
  });
});

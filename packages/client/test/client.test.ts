import { registry } from '@offload/tasks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../../scripts/redis-server.ts';
import { startApi, type TestApi } from '../../../tests/support/api-server.ts';
import {
  type RunningProcess,
  startWorkerProcess,
  testPrefix,
} from '../../../tests/support/processes.ts';
import { testRedis } from '../../../tests/support/redis-url.ts';
import { type JobEvent, OfflineError, OffloadClient, ProblemError } from '../src/index.ts';

const KEY = 'client-test-key-0123456789';
let api: TestApi;
let worker: RunningProcess;
let offload: OffloadClient;

const prefix = testPrefix();

beforeAll(async () => {
  const target = testRedis();
  [api, worker] = await Promise.all([
    startApi({
      redis: target,
      prefix,
      registry,
      apiKeys: [{ tenant: 'acme', key: KEY }],
      workflows: true,
    }),
    startWorkerProcess({ redis: target, prefix, concurrency: 2 }),
  ]);
  offload = new OffloadClient({ baseUrl: api.url, apiKey: KEY });
});
afterAll(async () => {
  await worker?.stop('SIGKILL');
  await api?.close();
});

describe('the typed client against a real API and worker', () => {
  it('starts a workflow whose inputs name earlier results, waits for it, and cancels another', async () => {
    const started = await offload.workflows.submit({
      count: { task: 'primes.count', input: { below: 100 } },
      again: {
        task: 'primes.count',
        input: { below: { $result: 'count.count' } },
        needs: ['count'],
      },
    });
    expect(started.steps.again?.state).toBe('blocked');
    const ended = await offload.workflows.wait(started, { timeoutMs: 30_000 });
    expect(ended.state).toBe('completed');
    expect(ended.steps.again?.result).toEqual({ count: 9 });
    expect((await offload.workflows.get(started.id)).state).toBe('completed');

    const long = await offload.workflows.submit({
      burn: { task: 'cpu.burn', input: { ms: 30_000 } },
      after: { task: 'cpu.burn', input: { ms: 10 }, needs: ['burn'] },
    });
    expect((await offload.workflows.cancel(long)).state).toBe('canceled');
    const once = { count: { task: 'primes.count', input: { below: 10 } } } as const;
    const first = await offload.workflows.submit(once, { idempotencyKey: 'flow-1' });
    expect((await offload.workflows.submit(once, { idempotencyKey: 'flow-1' })).id).toBe(first.id);
    await expect(offload.workflows.cancel(started)).rejects.toMatchObject({
      problem: { status: 409, code: 'workflow_finished' },
    });
    await expect(
      offload.workflows.submit({
        // @ts-expect-error primes.count takes a number (or a $result), not a string
        count: { task: 'primes.count', input: { below: 'many' } },
      }),
    ).rejects.toMatchObject({
      problem: { status: 422, errors: [{ path: 'steps.count.input.below' }] },
    });
  });

  it('submits, waits and reads a typed result', async () => {
    const job = await offload.submit('primes.count', { below: 1_000_000 });
    expect(job.state).toBe('queued');
    const done = await offload.wait(job, { timeoutMs: 30_000 });
    expect(done.state).toBe('completed');
    // `result` is typed from the task's output schema: { count: number } | null.
    const count: number | undefined = done.result?.count;
    expect(count).toBe(78_498);
    expect((await offload.get(job)).result).toEqual({ count: 78_498 });
  });

  it('fetches a binary result as bytes with its content type, and a JSON result as JSON text', async () => {
    const image = await offload.wait(
      await offload.submit('image.mandelbrot', { width: 96, height: 64 }),
      { timeoutMs: 30_000 },
    );
    // The view holds the descriptor, typed; the bytes come from result().
    expect(image.result).toMatchObject({
      contentType: 'image/png',
      url: `/v1/jobs/${image.id}/result`,
    });
    const png = await offload.result(image);
    expect(png.contentType).toBe('image/png');
    expect(png.bytes.byteLength).toBe(image.result?.size);
    expect(Buffer.from(png.bytes.subarray(0, 8)).toString('hex')).toBe('89504e470d0a1a0a');

    const count = await offload.wait(await offload.submit('primes.count', { below: 100 }));
    const json = await offload.result(count);
    expect(json.contentType).toMatch(/^application\/json/);
    expect(JSON.parse(new TextDecoder().decode(json.bytes))).toEqual({ count: 25 });

    const running = await offload.submit('cpu.burn', { ms: 20_000 });
    await expect(offload.result(running)).rejects.toMatchObject({
      problem: { status: 409, code: 'job_not_finished' },
    });
    await offload.cancel(running);
  });

  it('streams state, progress and the final event of a running job, then ends', async () => {
    const job = await offload.submit('cpu.burn', { ms: 1500 });
    const events: JobEvent<{ burnedMs: number }>[] = [];
    const arrivals: number[] = [];
    for await (const event of offload.events(job)) {
      events.push(event);
      arrivals.push(Date.now());
    }
    const types = events.map((e) => e.type);
    expect(types[0]).toBe('state');
    expect(types).toContain('progress');
    expect(types.at(-1)).toBe('completed');
    expect(events.some((e) => e.type === 'state' && e.job.state === 'running')).toBe(true);
    const progress = events.filter((e) => e.type === 'progress').map((e) => e.job.progress);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
    const last = events.at(-1) as JobEvent<{ burnedMs: number }>;
    expect(last.job.result?.burnedMs).toBeGreaterThanOrEqual(1500);
    // The final event arrives soon after the job finished: pushed, not polled.
    const latency = (arrivals.at(-1) as number) - Date.parse(last.job.finishedAt as string);
    expect(latency).toBeLessThan(500);
  });

  it('reopens a stream the server ends after its lifetime and still ends with the final event', async () => {
    // A second API on the same Redis whose streams last 400 ms: a 2 s job outlives several.
    const shortLived = await startApi({
      redis: testRedis(),
      prefix,
      apiKeys: [{ tenant: 'acme', key: KEY }],
      streams: { maxLifetimeMs: 400 },
    });
    try {
      const client = new OffloadClient({ baseUrl: shortLived.url, apiKey: KEY });
      const job = await client.submit('cpu.burn', { ms: 2000 });
      const events: JobEvent<{ burnedMs: number }>[] = [];
      for await (const event of client.events(job)) events.push(event);
      expect(events.at(-1)).toMatchObject({ type: 'completed', job: { state: 'completed' } });
      expect(events.at(-1)?.job.result?.burnedMs).toBeGreaterThanOrEqual(2000);
      // The job starts running once; every reopened stream starts with a snapshot of it running.
      const running = events.filter((e) => e.type === 'state' && e.job.state === 'running');
      expect(running.length).toBeGreaterThanOrEqual(2);
    } finally {
      await shortLived.close();
    }
  });

  it('ends the stream with `canceled` when the job is canceled, and starts a reconnect with a snapshot', async () => {
    const job = await offload.submit('cpu.burn', { ms: 10 }, { delayMs: 60_000 });
    const stream = offload.events(job);
    const first = await stream.next();
    expect(first.value).toMatchObject({ type: 'state', job: { state: 'delayed' } });
    // A second connection begins with the same snapshot.
    const again = offload.events(job);
    expect((await again.next()).value).toMatchObject({ type: 'state', job: { state: 'delayed' } });
    await again.return(undefined);

    await offload.cancel(job);
    const rest: JobEvent[] = [];
    for await (const event of { [Symbol.asyncIterator]: () => stream }) rest.push(event);
    expect(rest.map((e) => e.type)).toEqual(['canceled']);
    expect(rest[0]?.job.error?.code).toBe('canceled');
  });

  it('long-polls: wait answers as soon as the job finishes', async () => {
    const job = await offload.submit('cpu.burn', { ms: 700 });
    const done = await offload.wait(job, { timeoutMs: 20_000 });
    const answeredAfterFinish = Date.now() - Date.parse(done.finishedAt as string);
    expect(done.state).toBe('completed');
    expect(answeredAfterFinish).toBeLessThan(300);
  });

  it('gives back the job as it stands when wait runs out of time', async () => {
    const job = await offload.submit('cpu.burn', { ms: 1 }, { delayMs: 60_000 });
    const started = Date.now();
    const view = await offload.wait(job, { timeoutMs: 400 });
    expect(view.state).toBe('delayed');
    expect(Date.now() - started).toBeGreaterThanOrEqual(380);
    await offload.cancel(job);
  });

  it("lists the caller's jobs, filtered", async () => {
    const job = await offload.submit('crypto.pbkdf2', {
      password: 'pw',
      salt: 'salt',
      iterations: 1000,
      keyLength: 32,
      digest: 'sha256',
    });
    await offload.wait(job, { timeoutMs: 20_000 });
    const page = await offload.list({ task: 'crypto.pbkdf2', limit: 5 });
    expect(page.jobs.map((j) => j.id)).toEqual([job.id]);
    expect(page.jobs[0]?.state).toBe('completed');
    // A list shows each job without its result; `get` has it.
    expect(page.jobs[0]).not.toHaveProperty('result');
    const tasks = await offload.tasks();
    expect(tasks.map((t) => t.name)).toContain('image.mandelbrot');
  });

  it('submits once per Idempotency-Key', async () => {
    const input = { ms: 1 };
    const a = await offload.submit('cpu.burn', input, {
      idempotencyKey: 'client-once',
      delayMs: 60_000,
    });
    const b = await offload.submit('cpu.burn', input, {
      idempotencyKey: 'client-once',
      delayMs: 60_000,
    });
    expect(b.id).toBe(a.id);
    await offload.cancel(a);
  });
});

describe('submitMany', () => {
  it('queues a batch in one request, runs every job, and refuses an invalid batch whole', async () => {
    const jobs = await offload.submitMany([
      { task: 'primes.count', input: { below: 100 } },
      { task: 'cpu.burn', input: { ms: 1 }, options: { idempotencyKey: 'many-1' } },
    ]);
    expect(jobs.map((job) => job.task)).toEqual(['primes.count', 'cpu.burn']);
    const done = await Promise.all(jobs.map((job) => offload.wait(job, { timeoutMs: 20_000 })));
    expect(done.map((job) => job.state)).toEqual(['completed', 'completed']);
    expect(done[0]?.result).toEqual({ count: 25 });

    const again = await offload.submitMany([
      { task: 'cpu.burn', input: { ms: 1 }, options: { idempotencyKey: 'many-1' } },
    ]);
    expect(again[0]?.id).toBe(jobs[1]?.id);

    const refused = await offload
      .submitMany([
        { task: 'primes.count', input: { below: 10 } },
        { task: 'primes.count', input: { below: -1 } },
      ])
      .catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(ProblemError);
    expect((refused as ProblemError).problem.errors?.[0]?.path).toBe('jobs.1.input.below');
  });
});

describe('errors', () => {
  it('throws ProblemError with the problem document for refused requests', async () => {
    // A request the types would refuse, sent anyway as an untyped caller could.
    const bad = offload.submit('primes.count', { below: 1.5 } as unknown as { below: number });
    await expect(bad).rejects.toBeInstanceOf(ProblemError);
    const problem = (await bad.catch((err) => err)) as ProblemError;
    expect(problem.status).toBe(422);
    expect(problem.code).toBe('validation_failed');
    expect(problem.problem.errors?.[0]?.path).toBe('input.below');

    const stranger = new OffloadClient({ baseUrl: api.url, apiKey: 'not-a-key-0123456789' });
    await expect(stranger.tasks()).rejects.toMatchObject({ status: 401, code: 'unauthorized' });
    await expect(offload.get('AAAAAAAAAAAAAAAAAAAAAA')).rejects.toMatchObject({
      status: 404,
      code: 'not_found',
    });
    const done = await offload.submit('primes.count', { below: 10 });
    await offload.wait(done, { timeoutMs: 10_000 });
    await expect(offload.cancel(done)).rejects.toMatchObject({ status: 409, code: 'job_finished' });
  });

  it('throws OfflineError when nothing answers', async () => {
    const nowhere = new OffloadClient({ baseUrl: `http://127.0.0.1:${await freePort()}` });
    await expect(nowhere.tasks()).rejects.toBeInstanceOf(OfflineError);
  });
});

// Compile-time checks, run by `npm run typecheck`: the client's types follow the task registry.
async function typeChecks(client: OffloadClient) {
  // @ts-expect-error primes.count takes { below: number }, not a string
  await client.submit('primes.count', { below: '10' });
  // @ts-expect-error unknown fields are refused, as the server refuses them
  await client.submit('cpu.burn', { ms: 1, extra: true });
  // @ts-expect-error no task has this name
  await client.submit('primes.cuont', { below: 10 });
  // Defaults may be left out (maxIterations, centerX, …).
  const image = await client.submit('image.mandelbrot', { width: 64, height: 64 });
  // @ts-expect-error a mandelbrot result has no `count`
  image.result?.count;
  // A binary result's descriptor: the bytes are fetched with result(id).
  const size: number | undefined = image.result?.size;
  return size;
}
void typeChecks;

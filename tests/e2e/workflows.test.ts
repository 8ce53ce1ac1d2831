import type { JobView, WorkflowView } from '@offload/contract';
import { createRedis, offloadKeys, WORKFLOW_RECHECK_MS } from '@offload/queue';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startApi, type TestApi } from '../support/api-server.ts';
import { client } from '../support/http.ts';
import { type RunningProcess, startWorkerProcess, testPrefix } from '../support/processes.ts';
import { testRedis } from '../support/redis-url.ts';
import { registry } from '../support/test-tasks.ts';

/**
 * Workflows with real parts: the API on a real port advancing them, worker
 * processes running the steps, a real Redis. Each test has its own prefix.
 */
const target = testRedis();
const ACME = { tenant: 'acme', key: 'acme-key-0123456789abcdef' };
const GLOBEX = { tenant: 'globex', key: 'globex-key-0123456789abcdef' };
let prefix: string;
let api: TestApi;
let http: ReturnType<typeof client>;
const closing: (() => Promise<unknown>)[] = [];

beforeEach(async () => {
  prefix = testPrefix();
  api = await startApi({
    redis: target,
    prefix,
    registry,
    workflows: true,
    apiKeys: [ACME, GLOBEX],
  });
  closing.push(() => api.close());
  http = client(api.url, ACME.key);
});
afterEach(async () => {
  await Promise.all(closing.splice(0).map((close) => close()));
});

async function worker(concurrency = 2): Promise<RunningProcess> {
  const started = await startWorkerProcess({ redis: target, prefix, testTasks: true, concurrency });
  closing.push(() => started.stop('SIGKILL'));
  return started;
}

async function submit(body: unknown): Promise<WorkflowView> {
  const res = await http.call('POST', '/v1/workflows', body);
  if (res.status !== 202) throw new Error(`answered ${res.status}: ${JSON.stringify(res.body)}`);
  expect(res.headers.get('location')).toBe(`/v1/workflows/${res.body.id}`);
  return res.body as unknown as WorkflowView;
}

async function getWorkflow(id: string, as = http) {
  const res = await as.call('GET', `/v1/workflows/${id}`);
  return { status: res.status, body: res.body as unknown as WorkflowView & { code?: string } };
}

/** Polls the workflow until it is no longer running. */
async function finished(id: string, timeoutMs = 30_000, as = http): Promise<WorkflowView> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { body } = await getWorkflow(id, as);
    if (body.state !== 'running') return body;
    if (Date.now() > deadline) throw new Error(`still running: ${JSON.stringify(body)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A second API on the same Redis whose tenants may hold `bytes` at most; its client for ACME. */
async function apiWithStorageQuota(bytes: number) {
  const limited = await startApi({
    redis: target,
    prefix,
    registry,
    workflows: true,
    apiKeys: [ACME],
    maxStoredBytesPerTenant: bytes,
  });
  closing.push(() => limited.close());
  return client(limited.url, ACME.key);
}

const ms = (iso: string | null) => Date.parse(iso as string);
const step = (view: WorkflowView, name: string) => view.steps[name] as JobView;

describe('a workflow runs each step once the steps it needs have completed', () => {
  it('runs a diamond, filling each input with the results it names', async () => {
    await worker();
    const started = await submit({
      steps: {
        a: { task: 'primes.count', input: { below: 100 } },
        b: { task: 'primes.count', input: { below: { $result: 'a.count' } }, needs: ['a'] },
        c: { task: 'test.sleep', input: { ms: { $result: 'a.count' } }, needs: ['a'] },
        d: { task: 'primes.count', input: { below: { $result: 'b.count' } }, needs: ['b', 'c'] },
        e: { task: 'test.echo', input: { value: 'whole' } },
        f: { task: 'test.echo', input: { $result: 'e' }, needs: ['e'] },
      },
    });
    expect(started.state).toBe('running');
    expect(step(started, 'a').state).toBe('queued');
    for (const name of ['b', 'c', 'd', 'f']) {
      expect(step(started, name)).toMatchObject({
        state: 'blocked',
        startedAt: null,
        result: null,
      });
    }

    const done = await finished(started.id);
    expect(done.state).toBe('completed');
    expect(ms(done.finishedAt)).toBeGreaterThanOrEqual(ms(done.createdAt));
    // 25 primes below 100; 9 below 25; 4 below 9.
    expect(step(done, 'a').result).toEqual({ count: 25 });
    expect(step(done, 'b').result).toEqual({ count: 9 });
    expect(step(done, 'c').result).toEqual({ sleptMs: 25 });
    expect(step(done, 'd').result).toEqual({ count: 4 });
    expect(step(done, 'f').result).toEqual({ value: 'whole' });
    // Each step keeps the job id it was given at the start, and is an ordinary job of the tenant.
    for (const [name, view] of Object.entries(started.steps)) {
      expect(step(done, name).id).toBe(view.id);
      expect(step(done, name).attempts.made).toBe(1);
    }
    expect((await http.get(step(done, 'd').id)).result).toEqual({ count: 4 });
    const needsDone = Math.max(ms(step(done, 'b').finishedAt), ms(step(done, 'c').finishedAt));
    expect(ms(step(done, 'd').startedAt)).toBeGreaterThanOrEqual(needsDone);
    console.log(
      `diamond: d started ${ms(step(done, 'd').startedAt) - needsDone} ms after the last step it needs finished; b ${ms(step(done, 'b').startedAt) - ms(step(done, 'a').finishedAt)} ms after a`,
    );
  });

  it('a step whose $result names a field the result lacks fails when it starts, without running its task, and cancels the rest at once', async () => {
    await worker();
    const started = await submit({
      steps: {
        a: { task: 'test.echo', input: { value: 'x' } },
        b: { task: 'primes.count', input: { below: { $result: 'a.nope' } }, needs: ['a'] },
        long: { task: 'test.sleep', input: { ms: 30_000 } },
      },
    });
    const done = await finished(started.id);
    expect(done.state).toBe('failed');
    expect(step(done, 'a').state).toBe('completed');
    // Failed final at its first attempt: no retry can give the result another field.
    expect(step(done, 'b')).toMatchObject({
      state: 'failed',
      attempts: { made: 1 },
      error: { code: 'invalid_input', message: expect.stringContaining('"nope"') },
    });
    expect(step(done, 'long').error?.message).toBe('Canceled: step "b" failed');
    // In the same advance as b's end, not at the next recheck (5 s).
    expect(ms(done.finishedAt) - ms(step(done, 'b').finishedAt)).toBeLessThan(1000);
  });
});

describe('when a step fails', () => {
  it('cancel_rest (the default) stops the running steps and cancels the blocked ones', async () => {
    await worker();
    const started = await submit({
      steps: {
        bad: { task: 'test.throw', input: {}, options: { attempts: 1 } },
        long: { task: 'test.sleep', input: { ms: 30_000 } },
        after: { task: 'test.echo', input: { value: 'never' }, needs: ['bad'] },
      },
    });
    const done = await finished(started.id, 15_000);
    expect(done.state).toBe('failed');
    expect(step(done, 'bad')).toMatchObject({ state: 'failed', error: { code: 'task_error' } });
    expect(step(done, 'long')).toMatchObject({
      state: 'canceled',
      error: { code: 'canceled', message: 'Canceled: step "bad" failed' },
    });
    expect(step(done, 'after')).toMatchObject({
      state: 'canceled',
      startedAt: null,
      error: { code: 'canceled', message: 'Canceled: step "bad" failed' },
    });
    // The long step's job was stopped, not left to run its 30 s.
    expect(ms(done.finishedAt) - ms(step(done, 'bad').finishedAt)).toBeLessThan(2000);
    console.log(
      `cancel_rest: workflow failed ${ms(done.finishedAt) - ms(step(done, 'bad').finishedAt)} ms after its step did`,
    );
  });

  it('continue runs every step that does not need it, and cancels those that do, transitively', async () => {
    await worker();
    const started = await submit({
      onStepFailure: 'continue',
      steps: {
        bad: { task: 'test.throw', input: {}, options: { attempts: 1 } },
        other: { task: 'test.sleep', input: { ms: 300 } },
        follow: { task: 'test.echo', input: { value: 'ok' }, needs: ['other'] },
        after: { task: 'test.echo', input: { value: 'never' }, needs: ['bad'] },
        later: { task: 'test.echo', input: { value: 'never' }, needs: ['after', 'other'] },
      },
    });
    const done = await finished(started.id);
    expect(done.state).toBe('failed');
    expect(step(done, 'other').state).toBe('completed');
    expect(step(done, 'follow')).toMatchObject({ state: 'completed', result: { value: 'ok' } });
    expect(step(done, 'after').error).toEqual({
      code: 'canceled',
      message: 'Canceled: it needs step "bad", which failed',
    });
    expect(step(done, 'later').error).toEqual({
      code: 'canceled',
      message: 'Canceled: it needs step "after", which canceled',
    });
  });

  it('a queued step canceled on its own (DELETE /v1/jobs/{id}), which no worker reports, fails the workflow within the recheck interval', async () => {
    // No worker: the step stays queued, and its cancel removes it without any worker hearing of it.
    const started = await submit({
      steps: {
        first: { task: 'test.echo', input: { value: 'x' } },
        next: { task: 'test.echo', input: { value: 'y' }, needs: ['first'] },
      },
    });
    const canceledAt = Date.now();
    expect((await http.cancel(step(started, 'first').id)).status).toBe(200);
    const done = await finished(started.id, WORKFLOW_RECHECK_MS + 5000);
    expect(done.state).toBe('failed');
    expect(step(done, 'first').state).toBe('canceled');
    expect(step(done, 'next').error?.message).toBe('Canceled: step "first" canceled');
    const tookMs = ms(done.finishedAt) - canceledAt;
    expect(tookMs).toBeLessThan(WORKFLOW_RECHECK_MS + 1000);
    console.log(
      `a queued step canceled alone: workflow failed ${tookMs} ms later (recheck every ${WORKFLOW_RECHECK_MS} ms)`,
    );
  });
});

describe('DELETE /v1/workflows/{id}', () => {
  it('cancels the running and blocked steps at once; again answers 200; a completed workflow answers 409', async () => {
    await worker();
    const started = await submit({
      steps: {
        slow: { task: 'test.sleep', input: { ms: 30_000 } },
        next: { task: 'test.echo', input: { value: 'x' }, needs: ['slow'] },
      },
    });
    await http.until(step(started, 'slow').id, (view) => view.state === 'running');
    const res = await http.call('DELETE', `/v1/workflows/${started.id}`);
    expect(res.status).toBe(200);
    const view = res.body as unknown as WorkflowView;
    expect(view.state).toBe('canceled');
    expect(step(view, 'slow').state).toBe('canceled');
    expect(step(view, 'next')).toMatchObject({ state: 'canceled', error: { code: 'canceled' } });
    expect((await getWorkflow(started.id)).body.state).toBe('canceled');
    expect((await http.call('DELETE', `/v1/workflows/${started.id}`)).status).toBe(200);
    // The running step's computation was stopped: its job is canceled for good.
    await new Promise((r) => setTimeout(r, 500));
    expect((await http.get(step(view, 'slow').id)).state).toBe('canceled');

    const quick = await submit({ steps: { one: { task: 'test.echo', input: { value: 'x' } } } });
    expect((await finished(quick.id)).state).toBe('completed');
    const late = await http.call('DELETE', `/v1/workflows/${quick.id}`);
    expect(late.status).toBe(409);
    expect(late.body).toMatchObject({ code: 'workflow_finished' });
  });
});

describe('a blocked step at /v1/jobs/{id}', () => {
  it('is read as blocked, has no events yet, and DELETE cancels it: its workflow then ends as for any step canceled', async () => {
    // No worker: the first step stays queued, so the second stays blocked.
    const started = await submit({
      onStepFailure: 'continue',
      steps: {
        first: { task: 'test.echo', input: { value: 'x' } },
        second: { task: 'test.echo', input: { value: 'y' }, needs: ['first'] },
        third: { task: 'test.echo', input: { value: 'z' }, needs: ['second'] },
      },
    });
    const second = step(started, 'second').id;
    const read = await http.call('GET', `/v1/jobs/${second}`);
    expect(read.status).toBe(200);
    expect(read.body).toEqual(step(started, 'second'));
    expect((await http.call('GET', `/v1/jobs/${second}?wait=5`)).body.state).toBe('blocked');
    const events = await http.call('GET', `/v1/jobs/${second}/events`);
    expect(events.status).toBe(404);
    expect(events.body.detail).toContain('workflow step that is blocked');
    // Another tenant learns nothing of it.
    expect((await client(api.url, GLOBEX.key).call('GET', `/v1/jobs/${second}`)).status).toBe(404);

    const canceled = await http.cancel(second);
    expect(canceled.status).toBe(200);
    expect(canceled.body).toMatchObject({
      id: second,
      state: 'canceled',
      error: { code: 'canceled' },
    });
    expect((await http.cancel(second)).status).toBe(200);
    const now = (await getWorkflow(started.id)).body;
    expect(step(now, 'second').state).toBe('canceled');
    expect(step(now, 'third').error?.message).toBe(
      'Canceled: it needs step "second", which canceled',
    );
    expect(step(now, 'first').state).toBe('queued');

    await worker();
    const done = await finished(started.id);
    expect(done.state).toBe('failed');
    expect(step(done, 'first').state).toBe('completed');
    expect((await http.get(second)).state).toBe('canceled');
  });
});

describe('POST /v1/workflows with an Idempotency-Key', () => {
  it('starts one workflow however often the same request comes, at once or later; another body is 409', async () => {
    const body = {
      steps: {
        a: { task: 'test.echo', input: { value: 'x' } },
        b: { task: 'test.echo', input: { value: 'y' }, needs: ['a'] },
      },
    };
    const send = (payload: unknown, key = 'nightly-1') =>
      fetch(`${api.url}/v1/workflows`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${ACME.key}`,
          'content-type': 'application/json',
          'idempotency-key': key,
        },
        body: JSON.stringify(payload),
      }).then(async (res) => ({ status: res.status, body: (await res.json()) as WorkflowView }));
    const answers = await Promise.all(Array.from({ length: 10 }, () => send(body)));
    const ids = new Set(answers.map((answer) => answer.body.id));
    expect(ids.size).toBe(1);
    expect(answers.map((answer) => answer.status).sort()).toEqual([
      200, 200, 200, 200, 200, 200, 200, 200, 200, 202,
    ]);
    const again = await send(body);
    expect(again).toMatchObject({ status: 200, body: { id: [...ids][0] } });
    const other = await send({ steps: { a: { task: 'test.echo', input: { value: 'other' } } } });
    expect(other.status).toBe(409);
    expect(other.body).toMatchObject({ code: 'idempotency_conflict' });
    // A job's key of the same text is another key.
    const job = await fetch(`${api.url}/v1/jobs`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${ACME.key}`,
        'content-type': 'application/json',
        'idempotency-key': 'nightly-1',
      },
      body: JSON.stringify({ task: 'test.echo', input: { value: 'job' } }),
    });
    expect(job.status).toBe(202);
    // One workflow's first step and the job: nothing more was added.
    expect((await http.call('GET', '/v1/jobs')).body.jobs).toHaveLength(2);
  });
});

describe('workflows are their tenant’s', () => {
  it('another tenant and an unknown id get 404', async () => {
    const started = await submit({ steps: { one: { task: 'test.echo', input: { value: 'x' } } } });
    const globex = client(api.url, GLOBEX.key);
    for (const method of ['GET', 'DELETE']) {
      const res = await globex.call(method, `/v1/workflows/${started.id}`);
      expect(res.status).toBe(404);
      expect(res.body).toMatchObject({ code: 'not_found' });
    }
    expect((await getWorkflow('Zwyo85fHW0Ny-30Tt6xbcQ')).status).toBe(404);
    expect((await getWorkflow(started.id)).status).toBe(200);
  });
});

describe('a workflow that cannot run answers 422 and starts nothing', () => {
  const refused = async (body: unknown) => {
    const res = await http.call('POST', '/v1/workflows', body);
    expect(res.status).toBe(422);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
    return res.body as unknown as { code: string; errors: { path: string; message: string }[] };
  };

  it('names the fault at its path', async () => {
    const echo = { task: 'test.echo', input: { value: 'x' } };
    expect(
      await refused({ steps: { a: { ...echo, needs: ['b'] }, b: { ...echo, needs: ['a'] } } }),
    ).toMatchObject({
      code: 'validation_failed',
      errors: [{ path: 'steps.a.needs', message: expect.stringContaining('a → b → a') }],
    });
    expect(await refused({ steps: { a: { ...echo, needs: ['a'] } } })).toMatchObject({
      errors: [{ path: 'steps.a.needs', message: expect.stringContaining('a → a') }],
    });
    expect(await refused({ steps: { a: { ...echo, needs: ['ghost'] } } })).toMatchObject({
      errors: [{ path: 'steps.a.needs.0', message: 'no step is named "ghost"' }],
    });
    expect(
      await refused({
        steps: { a: echo, b: { task: 'primes.count', input: { below: { $result: 'a.count' } } } },
      }),
    ).toMatchObject({ errors: [{ path: 'steps.b.input.below' }] });
    expect(
      await refused({ steps: { a: echo, b: { task: 'no.such.task', input: {}, needs: ['a'] } } }),
    ).toMatchObject({ code: 'unknown_task', errors: [{ path: 'steps.b.task' }] });
    expect(
      await refused({ steps: { a: { task: 'primes.count', input: { below: 'many' } } } }),
    ).toMatchObject({ errors: [{ path: 'steps.a.input.below' }] });
    expect(await refused({ steps: {} })).toMatchObject({ code: 'validation_failed' });
    expect(await refused({ steps: { 'a.b': echo } })).toMatchObject({ code: 'validation_failed' });
    // JSON.parse makes `__proto__` an own key, as a body parsed by the API has it.
    expect(
      await refused(
        JSON.parse(`{"steps":{"a":${JSON.stringify(echo)},"__proto__":${JSON.stringify(echo)}}}`),
      ),
    ).toMatchObject({ errors: [{ path: 'steps.__proto__' }] });
    expect(await refused({ steps: { a: echo }, onStepFailure: 'shrug' })).toMatchObject({
      errors: [{ path: 'onStepFailure' }],
    });
    const list = await http.call('GET', '/v1/jobs');
    expect((list.body as unknown as { jobs: unknown[] }).jobs).toEqual([]);
  });

  it('accepts a placeholder where the schema wants another type: the filled input is checked by the worker', async () => {
    const started = await submit({
      steps: {
        a: { task: 'primes.count', input: { below: 10 } },
        b: { task: 'primes.count', input: { below: { $result: 'a.count' } }, needs: ['a'] },
      },
    });
    expect(step(started, 'b').state).toBe('blocked');
  });
});

describe('a workflow’s record counts in its tenant’s storage quota', () => {
  it('is refused (429) when it would not fit, and holds only what its views need once it has ended', async () => {
    const acme = await apiWithStorageQuota(40_000);
    const big = 'x'.repeat(10_000);
    const refused = await acme.call('POST', '/v1/workflows', {
      steps: Object.fromEntries([
        ['root', { task: 'test.echo', input: { value: 'x' } }],
        ...[1, 2, 3, 4, 5].map((i) => [
          `step${i}`,
          { task: 'test.echo', input: { value: big }, needs: ['root'] },
        ]),
      ]),
    });
    expect(refused.status).toBe(429);
    expect(refused.body).toMatchObject({ code: 'storage_quota_exceeded' });
    expect((await acme.call('GET', '/v1/jobs')).body.jobs).toEqual([]);

    await worker();
    const started = (
      await acme.call('POST', '/v1/workflows', {
        steps: {
          root: { task: 'test.echo', input: { value: 'x' } },
          next: { task: 'test.echo', input: { value: big }, needs: ['root'] },
        },
      })
    ).body as unknown as WorkflowView;
    const redis = createRedis(target, 'worker');
    closing.push(async () => redis.disconnect());
    const stored = offloadKeys(prefix).tenantStored(ACME.tenant);
    const whileRunning = Number(await redis.hget(stored, `workflow:${started.id}`));
    expect(whileRunning).toBeGreaterThan(big.length);
    const ended = await finished(started.id, 20_000, acme);
    expect(ended.state).toBe('completed');
    expect(step(ended, 'next').result).toEqual({ value: big });
    const afterEnd = Number(await redis.hget(stored, `workflow:${started.id}`));
    // The 10 kB input is no longer held; the steps' final views are.
    expect(afterEnd).toBeLessThan(big.length);
    console.log(
      `a workflow's record held ${whileRunning} bytes while running, ${afterEnd} once ended`,
    );
  });
});

describe('results are passed by reference', () => {
  it('a 20 kB result read by 10 steps is stored once: they fit a quota that 10 copies would not', async () => {
    const acme = await apiWithStorageQuota(100_000);
    await worker();
    const readers = Array.from({ length: 10 }, (_, i) => `reader${i}`);
    const started = (
      await acme.call('POST', '/v1/workflows', {
        steps: {
          root: { task: 'test.bulky', input: { bytes: 20_000 } },
          ...Object.fromEntries(
            readers.map((name) => [
              name,
              { task: 'test.measure', input: { value: { $result: 'root.text' } }, needs: ['root'] },
            ]),
          ),
        },
      })
    ).body as unknown as WorkflowView;
    const ended = await finished(started.id, 30_000, acme);
    expect(ended.state).toBe('completed');
    // Each reader got the whole 20,000-character string (20,002 bytes of JSON).
    for (const name of readers) expect(step(ended, name).result).toEqual({ bytes: 20_002 });
    const redis = createRedis(target, 'worker');
    closing.push(async () => redis.disconnect());
    const held = Number(await redis.hget(offloadKeys(prefix).tenantStored(ACME.tenant), 'total'));
    console.log(
      `a 20 kB result read by 10 steps: the tenant holds ${held} bytes in all (10 copies would be 200,020 more; quota 100,000)`,
    );
    expect(held).toBeLessThan(100_000);
  });
});

describe('the traps of other workflow engines', () => {
  it('a chord of 50 on 2 executors: the join holds no executor while it waits, and starts once all 50 are done', async () => {
    await worker(2);
    const header = Array.from({ length: 50 }, (_, i) => `part${i}`);
    const started = await submit({
      steps: {
        ...Object.fromEntries(
          header.map((name) => [name, { task: 'test.sleep', input: { ms: 20 } }]),
        ),
        join: {
          task: 'test.measure',
          input: { value: header.map((name) => ({ $result: `${name}.sleptMs` })) },
          needs: header,
        },
      },
    });
    const done = await finished(started.id, 120_000);
    expect(done.state).toBe('completed');
    // The join read the 50 results: [20,20,…] is 151 bytes of JSON.
    expect(step(done, 'join').result).toEqual({
      bytes: JSON.stringify(header.map(() => 20)).length,
    });
    // At no moment did more steps run than the 2 executors: the waiting join took none.
    const events = Object.values(done.steps).flatMap((job) => [
      { at: ms(job.startedAt), delta: 1 },
      { at: ms(job.finishedAt), delta: -1 },
    ]);
    events.sort((a, b) => a.at - b.at || a.delta - b.delta);
    let running = 0;
    let most = 0;
    for (const { delta } of events) {
      running += delta;
      most = Math.max(most, running);
    }
    const lastPart = Math.max(...header.map((name) => ms(step(done, name).finishedAt)));
    const joinGap = ms(step(done, 'join').startedAt) - lastPart;
    console.log(
      `chord of 50 on 2 executors: ${ms(done.finishedAt) - ms(done.createdAt)} ms in all, at most ${most} steps running at once, the join started ${joinGap} ms after the last part`,
    );
    expect(most).toBeLessThanOrEqual(2);
    expect(joinGap).toBeGreaterThanOrEqual(0);
  });

  it('a step failing at its last attempt fails the workflow then, not before, and its dependents are canceled, not left waiting', async () => {
    await worker();
    const started = await submit({
      steps: {
        flaky: { task: 'test.throw', input: {}, options: { attempts: 3 } },
        after: { task: 'test.echo', input: { value: 'never' }, needs: ['flaky'] },
        beside: { task: 'test.sleep', input: { ms: 30_000 } },
      },
    });
    const done = await finished(started.id);
    expect(done.state).toBe('failed');
    expect(step(done, 'flaky')).toMatchObject({
      state: 'failed',
      attempts: { made: 3, max: 3 },
      error: { code: 'task_error' },
    });
    expect(step(done, 'after')).toMatchObject({
      state: 'canceled',
      startedAt: null,
      error: { code: 'canceled', message: 'Canceled: step "flaky" failed' },
    });
    expect(step(done, 'beside').state).toBe('canceled');
    const endGap = ms(done.finishedAt) - ms(step(done, 'flaky').finishedAt);
    console.log(
      `a step failing at its 3rd and last attempt: the workflow failed ${endGap} ms after it, its dependent and the running step canceled`,
    );
    expect(endGap).toBeGreaterThanOrEqual(0);
    expect(endGap).toBeLessThan(WORKFLOW_RECHECK_MS);
  });
});

describe('several API processes', () => {
  it('add each step exactly once while all of them advance the same workflows', async () => {
    const second = await startApi({ redis: target, prefix, workflows: true, apiKeys: [ACME] });
    closing.push(() => second.close());
    await worker(4);
    const fanOut = Object.fromEntries(
      Array.from({ length: 20 }, (_, i) => [
        `leaf${i}`,
        { task: 'test.echo', input: { value: { $result: 'root.value' } }, needs: ['root'] },
      ]),
    );
    const body = {
      steps: {
        root: { task: 'test.echo', input: { value: 'seed' } },
        ...fanOut,
        join: { task: 'test.echo', input: { value: 'end' }, needs: Object.keys(fanOut) },
      },
    };
    const started = await Promise.all(Array.from({ length: 5 }, () => submit(body)));
    const t0 = Date.now();
    const done = await Promise.all(started.map((w) => finished(w.id)));
    console.log(
      `5 workflows of 22 steps, two API processes: all completed in ${Date.now() - t0} ms`,
    );
    for (const view of done) {
      expect(view.state).toBe('completed');
      for (const job of Object.values(view.steps)) expect(job.attempts.made).toBe(1);
      expect(step(view, 'leaf7').result).toEqual({ value: 'seed' });
    }
    // Every job the tenant has is a step of these workflows, and each step has one.
    const ids = new Set<string>();
    let cursor: string | null = null;
    do {
      const page = await http.call('GET', `/v1/jobs?limit=100${cursor ? `&cursor=${cursor}` : ''}`);
      const body = page.body as unknown as { jobs: JobView[]; nextCursor: string | null };
      for (const job of body.jobs) ids.add(job.id);
      cursor = body.nextCursor;
    } while (cursor);
    expect(ids.size).toBe(5 * 22);
    expect(ids).toEqual(
      new Set(done.flatMap((view) => Object.values(view.steps).map((j) => j.id))),
    );
  });
});

describe('workflows at their size limit', () => {
  it('runs a chain of 30 steps one after another, and a fan-out of 98 steps into one join', async () => {
    await worker(4);
    const chain = Object.fromEntries(
      Array.from({ length: 30 }, (_, i) => [
        `s${i}`,
        i === 0
          ? { task: 'test.echo', input: { value: 'link' } }
          : {
              task: 'test.echo',
              input: { value: { $result: `s${i - 1}.value` } },
              needs: [`s${i - 1}`],
            },
      ]),
    );
    const chained = await submit({ steps: chain });
    const chainDone = await finished(chained.id, 60_000);
    expect(chainDone.state).toBe('completed');
    expect(step(chainDone, 's29').result).toEqual({ value: 'link' });
    const gaps = Array.from({ length: 29 }, (_, i) => {
      const next = step(chainDone, `s${i + 1}`);
      return ms(next.startedAt) - ms(step(chainDone, `s${i}`).finishedAt);
    }).sort((a, b) => a - b);
    const chainMs = ms(chainDone.finishedAt) - ms(chainDone.createdAt);

    const leaves = Array.from({ length: 98 }, (_, i) => `leaf${i}`);
    const fanned = await submit({
      steps: {
        root: { task: 'test.echo', input: { value: 'seed' } },
        ...Object.fromEntries(
          leaves.map((name) => [
            name,
            { task: 'test.echo', input: { value: { $result: 'root.value' } }, needs: ['root'] },
          ]),
        ),
        join: { task: 'test.echo', input: { value: 'end' }, needs: leaves },
      },
    });
    const fanDone = await finished(fanned.id, 60_000);
    expect(fanDone.state).toBe('completed');
    const lastLeaf = Math.max(...leaves.map((name) => ms(step(fanDone, name).finishedAt)));
    const joinGap = ms(step(fanDone, 'join').startedAt) - lastLeaf;
    console.log(
      `chain of 30: ${chainMs} ms in all, a step started ${gaps[14]} ms (median) / ${gaps[28]} ms (worst) after the one it needs finished; ` +
        `fan-out of 98 into a join: ${ms(fanDone.finishedAt) - ms(fanDone.createdAt)} ms in all, the join started ${joinGap} ms after the last leaf`,
    );
    expect(gaps[14]).toBeLessThan(1000);
    expect(joinGap).toBeLessThan(2000);
  });
});

import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { JobView, WorkflowView } from '@offload/contract';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startApi, type TestApi } from '../support/api-server.ts';
import { client } from '../support/http.ts';
import { ROOT, type RunningProcess, startWorkerProcess, testPrefix } from '../support/processes.ts';
import { testRedis } from '../support/redis-url.ts';
import { registry } from '../support/test-tasks.ts';
import { type Received, startReceiver } from '../support/webhook-receiver.ts';

/**
 * Webhooks end to end: a real API, a real worker process delivering, a real
 * HTTP receiver on 127.0.0.1 (so WEBHOOK_ALLOW_PRIVATE=true for them), and
 * every delivery verified with the `standardwebhooks` library, as a receiver would.
 */
const target = testRedis();
const secret = () => `whsec_${randomBytes(32).toString('base64')}`;
/** Tenant `dev` (open development mode) rotating: two secrets. */
const OLD_SECRET = secret();
const NEW_SECRET = secret();
/** Short, so that retries run out within a test. */
const RETRY_SCHEDULE = '200ms,400ms,600ms';
const ATTEMPTS_IN_ALL = 4;
const TIMEOUT_MS = 2000;
const webhookEnv = {
  WEBHOOK_SECRETS: `dev:${OLD_SECRET},dev:${NEW_SECRET}`,
  WEBHOOK_ALLOW_PRIVATE: 'true',
  WEBHOOK_RETRY_SCHEDULE: RETRY_SCHEDULE,
  WEBHOOK_TIMEOUT_MS: String(TIMEOUT_MS),
};

let prefix: string;
let api: TestApi;
let worker: RunningProcess;
let receiver: Awaited<ReturnType<typeof startReceiver>>;
let http: ReturnType<typeof client>;

beforeAll(async () => {
  prefix = testPrefix();
  receiver = await startReceiver();
  api = await startApi({
    redis: target,
    prefix,
    registry,
    workflows: true,
    webhookEnv,
  });
  http = client(api.url);
  worker = await startWorkerProcess({ redis: target, prefix, testTasks: true, env: webhookEnv });
});
afterAll(async () => {
  await worker?.stop('SIGKILL');
  await api?.close();
  await receiver?.close();
});

let tags = 0;
const tag = () => `${Date.now().toString(36)}-${++tags}`;

/** The event of a delivery, verified with `secretText` as the receiver's library does it; throws when it does not verify. */
function verify(delivery: Received, secretText: string) {
  return new Webhook(secretText).verify(delivery.body, delivery.headers) as {
    type: string;
    timestamp: string;
    data: JobView & WorkflowView;
  };
}

const submitWithWebhook = (
  path: string,
  task = 'test.echo',
  input: unknown = { value: 'x' },
  options = {},
) => http.submit(task, input, { webhook: { url: `${receiver.url}${path}` }, ...options });

const webhookSettled = (id: string) =>
  http.until(id, (view) => view.webhook !== undefined && view.webhook.state !== 'pending', 30_000);

describe('a job with a webhook', () => {
  it('delivers job.completed, signed with both secrets while the tenant rotates them; the view says delivered', async () => {
    const path = `/ok/${tag()}`;
    const job = await submitWithWebhook(path, 'test.echo', { value: 'hello' });
    expect(job.webhook).toEqual({ state: 'pending', attempts: 0, lastStatus: null });
    const [delivery] = (await receiver.waitFor(path)) as [Received];

    const signatures = delivery.headers['webhook-signature']?.split(' ') ?? [];
    expect(signatures).toHaveLength(2);
    for (const key of [OLD_SECRET, NEW_SECRET]) {
      const event = verify(delivery, key);
      expect(event.type).toBe('job.completed');
      expect(event.data).toMatchObject({
        id: job.id,
        state: 'completed',
        result: { value: 'hello' },
      });
      expect(event.timestamp).toBe(event.data.finishedAt);
    }
    expect(delivery.headers['webhook-id']).toBe(`msg_${job.id}`);
    const view = await webhookSettled(job.id);
    expect(view.webhook).toEqual({ state: 'delivered', attempts: 1, lastStatus: 200 });
    // GET /v1/jobs lists it with its webhook too.
    const page = (await http.call('GET', '/v1/jobs?limit=100')).body as unknown as {
      jobs: JobView[];
    };
    expect(page.jobs.find((j) => j.id === job.id)?.webhook?.state).toBe('delivered');
  });

  it('a receiver rejects a delivery tampered with, signed with another secret, or replayed ten minutes later', async () => {
    const path = `/ok/${tag()}`;
    await submitWithWebhook(path);
    const [delivery] = (await receiver.waitFor(path)) as [Received];
    expect(() => verify(delivery, NEW_SECRET)).not.toThrow();

    const tampered = { ...delivery, body: delivery.body.replace('"completed"', '"failed"') };
    expect(() => verify(tampered, NEW_SECRET)).toThrow(/signature/i);
    expect(() => verify(delivery, secret())).toThrow(/signature/i);
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + 10 * 60 * 1000 });
    try {
      expect(() => verify(delivery, NEW_SECRET)).toThrow(/timestamp/i);
    } finally {
      vi.useRealTimers();
    }
  });

  it('delivers job.failed and job.canceled', async () => {
    const failedPath = `/ok/${tag()}`;
    const failed = await submitWithWebhook(failedPath, 'test.throw', {}, { attempts: 1 });
    const canceledPath = `/ok/${tag()}`;
    const queued = await submitWithWebhook(
      canceledPath,
      'test.echo',
      { value: 'later' },
      { delayMs: 60_000 },
    );
    expect((await http.cancel(queued.id)).status).toBe(200);

    const [failedEvent] = (await receiver.waitFor(failedPath)) as [Received];
    expect(verify(failedEvent, NEW_SECRET)).toMatchObject({
      type: 'job.failed',
      data: { id: failed.id, state: 'failed', error: { code: 'task_error' } },
    });
    const [canceledEvent] = (await receiver.waitFor(canceledPath)) as [Received];
    expect(verify(canceledEvent, NEW_SECRET)).toMatchObject({
      type: 'job.canceled',
      data: { id: queued.id, state: 'canceled', error: { code: 'canceled' } },
    });
  });

  it('retries a receiver that fails twice and shows the three attempts in the job view', async () => {
    const path = `/fail/2/${tag()}`;
    const job = await submitWithWebhook(path);
    const view = await webhookSettled(job.id);
    expect(view.webhook).toEqual({ state: 'delivered', attempts: 3, lastStatus: 200 });
    const deliveries = receiver.to(path);
    expect(deliveries).toHaveLength(3);
    // One message: the same id on every attempt, each attempt signed afresh.
    expect(new Set(deliveries.map((d) => d.headers['webhook-id'])).size).toBe(1);
    for (const delivery of deliveries) verify(delivery, OLD_SECRET);
    const gaps = deliveries.slice(1).map((d, i) => d.at - (deliveries[i] as Received).at);
    console.log(`retry gaps after 500s: ${gaps.join(' ms, ')} ms (schedule ${RETRY_SCHEDULE})`);
    expect(gaps[0]).toBeGreaterThanOrEqual(150);
    expect(gaps[1]).toBeGreaterThanOrEqual(350);
  });

  it('stops at a 410: one attempt, the webhook failed', async () => {
    const path = `/gone/${tag()}`;
    const job = await submitWithWebhook(path);
    const view = await webhookSettled(job.id);
    expect(view.webhook).toEqual({ state: 'failed', attempts: 1, lastStatus: 410 });
    expect(receiver.to(path)).toHaveLength(1);
  });

  it('follows no redirect: a receiver that answers 302 forever fails every attempt, and its target hears nothing', async () => {
    const path = `/redirect/${tag()}`;
    const job = await submitWithWebhook(path);
    const view = await webhookSettled(job.id);
    expect(view.webhook).toEqual({ state: 'failed', attempts: ATTEMPTS_IN_ALL, lastStatus: 302 });
    expect(receiver.to('/ok/redirected')).toHaveLength(0);
  });

  it('takes a slow answer within the timeout, and ignores a huge answer body', async () => {
    const slow = await submitWithWebhook(`/slow/500/${tag()}`);
    const huge = await submitWithWebhook(`/huge/${tag()}`);
    expect((await webhookSettled(slow.id)).webhook).toEqual({
      state: 'delivered',
      attempts: 1,
      lastStatus: 200,
    });
    expect((await webhookSettled(huge.id)).webhook).toEqual({
      state: 'delivered',
      attempts: 1,
      lastStatus: 200,
    });
  });

  it('a receiver that hangs times out, and does not hold up another job’s delivery', async () => {
    const hangPath = `/hang/${tag()}`;
    const hung = await submitWithWebhook(hangPath);
    await receiver.waitFor(hangPath);
    const okPath = `/ok/${tag()}`;
    await submitWithWebhook(okPath);
    await receiver.waitFor(okPath);
    // Delivered while the hanging receiver still holds its first attempt open.
    expect(receiver.hangingNow()).toBeGreaterThan(0);
    expect(receiver.to(hangPath)).toHaveLength(1);
    const view = await http.until(hung.id, (v) => (v.webhook?.attempts ?? 0) >= 1, 30_000);
    expect(view.webhook?.lastStatus).toBeNull();
  });

  it(`delivers promptly: time from a job's end to its delivery over 30 jobs`, async () => {
    const jobs = await Promise.all(
      Array.from({ length: 30 }, async () => {
        const path = `/ok/${tag()}`;
        return { path, job: await submitWithWebhook(path) };
      }),
    );
    const latencies: number[] = [];
    for (const { path } of jobs) {
      const [delivery] = (await receiver.waitFor(path)) as [Received];
      const event = verify(delivery, NEW_SECRET);
      latencies.push(delivery.at - Date.parse(event.data.finishedAt as string));
    }
    latencies.sort((a, b) => a - b);
    const at = (q: number) =>
      latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))];
    console.log(
      `job end → webhook received, 30 jobs: p50 ${at(0.5)} ms, p95 ${at(0.95)} ms, max ${at(1)} ms`,
    );
    // Woken by the job's end, not found by the recheck a minute later.
    expect(at(0.5)).toBeLessThan(5000);
  });
});

describe("README's Python verification", () => {
  /** The README's `verify_webhook`, run by python3 on a delivery; `shiftS` moves Python's clock. */
  const pythonVerify = (delivery: Received, secretText: string, shiftS = 0) => {
    const readme = readFileSync(`${ROOT}/README.md`, 'utf8');
    const snippet = /```python\n(import base64[^`]*def verify_webhook[^`]*)```/.exec(readme)?.[1];
    expect(snippet, 'the README shows verify_webhook').toBeDefined();
    const driver = `${snippet}
import sys
given = json.load(sys.stdin)
now = time.time
time.time = lambda: now() + given["shift"]
try:
    print(verify_webhook(given["secret"], given["headers"], given["body"].encode())["type"])
except ValueError as err:
    print("refused:", err)
`;
    const run = spawnSync('python3', ['-c', driver], {
      input: JSON.stringify({
        secret: secretText,
        headers: delivery.headers,
        body: delivery.body,
        shift: shiftS,
      }),
      encoding: 'utf8',
    });
    expect(run.stderr).toBe('');
    return run.stdout.trim();
  };

  it('accepts a real delivery with either secret, and refuses it tampered, under another secret, or replayed 10 minutes later', async () => {
    const path = `/ok/${tag()}`;
    await submitWithWebhook(path);
    const [delivery] = (await receiver.waitFor(path)) as [Received];
    const outcomes = {
      oldSecret: pythonVerify(delivery, OLD_SECRET),
      newSecret: pythonVerify(delivery, NEW_SECRET),
      tampered: pythonVerify(
        { ...delivery, body: delivery.body.replace('"x"', '"y"') },
        NEW_SECRET,
      ),
      otherSecret: pythonVerify(delivery, secret()),
      replayed: pythonVerify(delivery, NEW_SECRET, 600),
    };
    console.log('README Python verify_webhook:', outcomes);
    expect(outcomes).toEqual({
      oldSecret: 'job.completed',
      newSecret: 'job.completed',
      tampered: 'refused: no signature matches',
      otherSecret: 'refused: no signature matches',
      replayed: 'refused: timestamp too far from now: a replay, or a clock far off',
    });
  });
});

describe('a workflow with a webhook', () => {
  it('delivers workflow.completed with every step, and its view says delivered', async () => {
    const path = `/ok/${tag()}`;
    const res = await http.call('POST', '/v1/workflows', {
      steps: {
        first: { task: 'test.echo', input: { value: 'a' } },
        second: { task: 'test.echo', input: { value: 'b' }, needs: ['first'] },
      },
      webhook: { url: `${receiver.url}${path}` },
    });
    expect(res.status).toBe(202);
    const id = res.body.id;
    const [delivery] = (await receiver.waitFor(path)) as [Received];
    const event = verify(delivery, OLD_SECRET);
    expect(event.type).toBe('workflow.completed');
    expect(event.data.id).toBe(id);
    expect(Object.keys(event.data.steps).sort()).toEqual(['first', 'second']);
    const deadline = Date.now() + 30_000;
    for (;;) {
      const view = (await http.call('GET', `/v1/workflows/${id}`)).body as unknown as WorkflowView;
      if (view.webhook?.state === 'delivered') break;
      if (Date.now() > deadline)
        throw new Error(`webhook never delivered: ${JSON.stringify(view)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  });
});

describe('the worker process', () => {
  it('counts deliveries by outcome and their latency on its /metrics, without a tenant label', async () => {
    const line = await worker.waitForLine(/metrics listening/);
    const url = /"url":"([^"]+)"/.exec(line)?.[1] as string;
    const text = await (await fetch(url)).text();
    expect(text).toMatch(/offload_webhook_attempts_total\{outcome="delivered"\} \d+/);
    expect(text).toMatch(/offload_webhook_attempts_total\{outcome="failed"\} \d+/);
    expect(text).toMatch(/offload_webhook_delivery_seconds_count \d+/);
    expect(text).not.toMatch(/offload_webhook[^\n]*tenant/);
  });
});

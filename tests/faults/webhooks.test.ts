import { randomBytes } from 'node:crypto';
import { createRedis, offloadKeys } from '@offload/queue';
import { Worker } from 'bullmq';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startApi, type TestApi } from '../support/api-server.ts';
import { client } from '../support/http.ts';
import { type RunningProcess, startWorkerProcess, testPrefix } from '../support/processes.ts';
import { testRedis } from '../support/redis-url.ts';
import { registry, TEST_QUEUE } from '../support/test-tasks.ts';
import { startReceiver } from '../support/webhook-receiver.ts';

/**
 * Crashes around a webhook: a worker process killed while it delivers one
 * (another delivers it, under the same webhook-id), and a job whose end was
 * recorded by a worker that never woke its delivery (it comes due by itself).
 */
const target = testRedis();
const SECRET = `whsec_${randomBytes(32).toString('base64')}`;
const webhookEnv = {
  WEBHOOK_SECRETS: `dev:${SECRET}`,
  WEBHOOK_ALLOW_PRIVATE: 'true',
  // Longer than the test takes to kill the worker: the first attempt is in flight when it dies.
  WEBHOOK_TIMEOUT_MS: '60000',
};
const prefix = testPrefix();
let api: TestApi;
let receiver: Awaited<ReturnType<typeof startReceiver>>;
const workers: RunningProcess[] = [];

beforeAll(async () => {
  receiver = await startReceiver();
  api = await startApi({
    redis: target,
    prefix,
    registry,
    webhookEnv,
  });
});
afterAll(async () => {
  await Promise.all(workers.map((worker) => worker.stop('SIGKILL')));
  await api?.close();
  await receiver?.close();
});

it('a worker SIGKILLed mid-delivery: another worker delivers the webhook, same id, within seconds', async () => {
  const first = await startWorkerProcess({
    redis: target,
    prefix,
    testTasks: true,
    env: webhookEnv,
  });
  workers.push(first);
  const http = client(api.url);
  const path = `/hang-once/${prefix}`;
  const job = await http.submit(
    'test.echo',
    { value: 'x' },
    { webhook: { url: `${receiver.url}${path}` } },
  );
  await receiver.waitFor(path);
  await first.stop('SIGKILL');
  const killedAt = Date.now();
  workers.push(
    await startWorkerProcess({ redis: target, prefix, testTasks: true, env: webhookEnv }),
  );

  const [hung, delivered] = await receiver.waitFor(path, 2, 60_000);
  console.log(
    `webhook delivered ${((Date.now() - killedAt) / 1000).toFixed(1)} s after its worker was killed mid-delivery`,
  );
  expect(delivered?.headers['webhook-id']).toBe(hung?.headers['webhook-id']);
  const event = new Webhook(SECRET).verify(delivered?.body as string, delivered?.headers ?? {});
  expect(event).toMatchObject({ type: 'job.completed', data: { id: job.id } });
  const view = await http.until(job.id, (v) => v.webhook?.state === 'delivered', 30_000);
  // The killed attempt never recorded its end: the view counts the attempts that did.
  expect(view.webhook).toEqual({ state: 'delivered', attempts: 1, lastStatus: 200 });
}, 120_000);

it('a job ended by a worker that died before waking its delivery: the delivery comes due by itself and is sent', async () => {
  // Only an Offload worker that serves another queue: it sends webhooks, but never ends this job.
  await Promise.all(workers.splice(0).map((worker) => worker.stop('SIGKILL')));
  workers.push(
    await startWorkerProcess({
      redis: target,
      prefix,
      testTasks: true,
      queues: TEST_QUEUE,
      env: webhookEnv,
    }),
  );
  const http = client(api.url);
  const path = `/ok/unwoken-${prefix}`;
  const job = await http.submit(
    'test.echo',
    { value: 'x' },
    { webhook: { url: `${receiver.url}${path}` } },
  );
  // The job ends as an Offload worker's BullMQ would record it, and nothing wakes its delivery:
  // what a worker killed between the two leaves behind.
  const redis = createRedis(target, 'worker');
  const bare = new Worker('default', async () => ({ value: 'x' }), {
    connection: redis,
    prefix: offloadKeys(prefix).queuePrefix('default'),
  });
  try {
    const ended = await http.until(job.id, (v) => v.state === 'completed', 30_000);
    const [delivery] = await receiver.waitFor(path, 1, 100_000);
    const lateS = ((delivery?.at ?? 0) - Date.parse(ended.finishedAt as string)) / 1000;
    console.log(
      `an unwoken delivery was sent ${lateS.toFixed(1)} s after its job ended (its recheck)`,
    );
    expect(
      new Webhook(SECRET).verify(delivery?.body as string, delivery?.headers ?? {}),
    ).toMatchObject({
      type: 'job.completed',
      data: { id: job.id, result: { value: 'x' } },
    });
  } finally {
    await bare.close();
    redis.disconnect();
  }
}, 150_000);

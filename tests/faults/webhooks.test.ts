import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadApiEnv } from '../../apps/api/src/env.ts';
import { startApi, type TestApi } from '../support/api-server.ts';
import { client } from '../support/http.ts';
import { type RunningProcess, startWorkerProcess, testPrefix } from '../support/processes.ts';
import { testRedis } from '../support/redis-url.ts';
import { registry } from '../support/test-tasks.ts';
import { startReceiver } from '../support/webhook-receiver.ts';

/**
 * A worker process killed while it delivers a webhook: the delivery is not
 * lost; another worker process delivers it, under the same webhook-id.
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
  const env = loadApiEnv(webhookEnv);
  api = await startApi({
    redis: target,
    prefix,
    registry,
    webhooks: { secrets: env.WEBHOOK_SECRETS, allowPrivate: env.WEBHOOK_ALLOW_PRIVATE },
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

import { randomBytes } from 'node:crypto';
import { nonPublicRange } from '@offload/queue';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type TestApi } from '../support/api-server.ts';
import { client } from '../support/http.ts';
import { type RunningProcess, startWorkerProcess, testPrefix } from '../support/processes.ts';
import { testRedis } from '../support/redis-url.ts';
import { registry } from '../support/test-tasks.ts';
import { startReceiver } from '../support/webhook-receiver.ts';

/**
 * Webhook URLs that point Offload at its own network (SSRF): refused at
 * submit with 422 and a path, and refused again at delivery, where the
 * address connected to is the one checked.
 */
const target = testRedis();
const SECRETS = `dev:whsec_${randomBytes(32).toString('base64')}`;

describe('which addresses are public', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['192.168.1.1', 'private'],
    ['169.254.169.254', 'linkLocal'],
    ['100.100.100.200', 'carrierGradeNat'],
    ['0.0.0.0', 'unspecified'],
    ['224.0.0.1', 'multicast'],
    ['255.255.255.255', 'broadcast'],
    ['::1', 'loopback'],
    ['::', 'unspecified'],
    ['fe80::1', 'linkLocal'],
    ['fd00:ec2::254', 'uniqueLocal'],
    ['ff02::1', 'multicast'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:169.254.169.254', 'linkLocal'],
    ['64:ff9b::a00:1', 'rfc6052'],
    ['2002:a00:1::', '6to4'],
  ])('%s is refused (%s)', (address, range) => {
    expect(nonPublicRange(address)).toBe(range);
  });

  it.each(['93.184.215.14', '8.8.8.8', '2606:4700:4700::1111', '::ffff:8.8.8.8'])(
    '%s is public',
    (address) => {
      expect(nonPublicRange(address)).toBeNull();
    },
  );
});

describe('at submit', () => {
  let api: TestApi;
  let withoutSecret: TestApi;
  beforeAll(async () => {
    const prefix = testPrefix();
    api = await startApi({
      redis: target,
      prefix,
      registry,
      webhookEnv: { WEBHOOK_SECRETS: SECRETS },
    });
    withoutSecret = await startApi({ redis: target, prefix, registry });
  });
  afterAll(async () => {
    await api?.close();
    await withoutSecret?.close();
  });

  const submit = (app: TestApi, url: string) =>
    client(app.url).call('POST', '/v1/jobs', {
      task: 'test.echo',
      input: { value: 'x' },
      options: { webhook: { url } },
    });

  it.each([
    ['http://user:secret@93.184.215.14/hook', /credentials/],
    ['ftp://93.184.215.14/hook', /http or https/],
    ['not a url', /not a URL/],
    ['http://[::1]:8080/hook', /loopback/],
    ['http://[fe80::1]/hook', /linkLocal/],
    ['http://[::ffff:127.0.0.1]/hook', /loopback/],
    ['http://169.254.169.254/latest/meta-data/', /linkLocal/],
    ['http://100.64.0.1/hook', /carrierGradeNat/],
    ['http://10.0.0.1/hook', /private/],
    ['http://0.0.0.0:3000/hook', /unspecified/],
    ['http://localhost:3000/hook', /resolves to (127\.0\.0\.1|::1).*loopback/],
    ['http://no-such-host.invalid/hook', /does not resolve/],
  ])('%s answers 422 at options.webhook.url', async (url, message) => {
    const res = await submit(api, url);
    const problem = res.body as unknown as {
      code: string;
      errors: { path: string; message: string }[];
    };
    console.log(`${url} → ${res.status} ${problem.code}: ${problem.errors?.[0]?.message}`);
    expect(res.status).toBe(422);
    expect(problem.code).toBe('validation_failed');
    expect(problem.errors[0]?.path).toBe('options.webhook.url');
    expect(problem.errors[0]?.message).toMatch(message);
  });

  it('takes a public address', async () => {
    const res = await submit(api, 'https://93.184.215.14/hook');
    expect(res.status).toBe(202);
    expect(res.body.webhook).toEqual({ state: 'pending', attempts: 0, lastStatus: null });
  });

  it('answers 422 webhook_secret_missing to a tenant without a signing secret', async () => {
    const res = await submit(withoutSecret, 'https://93.184.215.14/hook');
    expect(res.status).toBe(422);
    expect(res.body).toMatchObject({
      code: 'webhook_secret_missing',
      errors: [{ path: 'options.webhook' }],
    });
  });

  it('names the item of a batch whose webhook is refused', async () => {
    const good = { url: 'https://93.184.215.14/hook' };
    const res = await client(api.url).call('POST', '/v1/jobs/batch', {
      jobs: [0, 1, 2].map((i) => ({
        task: 'test.echo',
        input: { value: `${i}` },
        options: { webhook: i === 2 ? { url: 'http://192.168.0.10/hook' } : good },
      })),
    });
    expect(res.status).toBe(422);
    expect(res.body).toMatchObject({ errors: [{ path: 'jobs.2.options.webhook.url' }] });
  });

  it("checks the webhook of a schedule's jobs when the schedule is created", async () => {
    const res = await client(api.url).call('POST', '/v1/schedules', {
      task: 'test.echo',
      input: { value: 'x' },
      everyMs: 60_000,
      options: { webhook: { url: 'http://[::1]/hook' } },
    });
    expect(res.status).toBe(422);
    expect(res.body).toMatchObject({ errors: [{ path: 'options.webhook.url' }] });
  });

  it('checks the webhook of a workflow and of its steps', async () => {
    const http = client(api.url);
    const top = await http.call('POST', '/v1/workflows', {
      steps: { a: { task: 'test.echo', input: { value: 'x' } } },
      webhook: { url: 'http://127.0.0.1/hook' },
    });
    expect(top.status).toBe(422);
    expect(top.body).toMatchObject({ errors: [{ path: 'webhook.url' }] });
    const step = await http.call('POST', '/v1/workflows', {
      steps: {
        a: {
          task: 'test.echo',
          input: { value: 'x' },
          options: { webhook: { url: 'http://127.0.0.1/hook' } },
        },
      },
    });
    expect(step.status).toBe(422);
    expect(step.body).toMatchObject({ errors: [{ path: 'steps.a.options.webhook.url' }] });
  });
});

describe('at delivery', () => {
  let api: TestApi;
  let worker: RunningProcess;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  beforeAll(async () => {
    const prefix = testPrefix();
    receiver = await startReceiver();
    // The API took these URLs (as if their names resolved to public addresses then);
    // the worker, which does not allow private addresses, must refuse them now.
    api = await startApi({
      redis: target,
      prefix,
      registry,
      webhookEnv: { WEBHOOK_SECRETS: SECRETS, WEBHOOK_ALLOW_PRIVATE: 'true' },
    });
    worker = await startWorkerProcess({
      redis: target,
      prefix,
      testTasks: true,
      env: { WEBHOOK_SECRETS: SECRETS, WEBHOOK_RETRY_SCHEDULE: '100ms' },
    });
  });
  afterAll(async () => {
    await worker?.stop('SIGKILL');
    await api?.close();
    await receiver?.close();
  });

  it.each([
    ['a name resolving to 127.0.0.1', 'localhost'],
    ['an IPv4 literal', '127.0.0.1'],
    ['an IPv4-mapped IPv6 literal', '[::ffff:127.0.0.1]'],
  ])('refuses %s: no request reaches the receiver, the webhook fails', async (_, host) => {
    const http = client(api.url);
    const port = new URL(receiver.url).port;
    const path = `/ok/${host.replace(/\W/g, '')}`;
    const job = await http.submit(
      'test.echo',
      { value: 'x' },
      { webhook: { url: `http://${host}:${port}${path}` } },
    );
    const view = await http.until(job.id, (v) => v.webhook?.state === 'failed', 30_000);
    expect(view.webhook).toEqual({ state: 'failed', attempts: 2, lastStatus: null });
    expect(receiver.to(path)).toHaveLength(0);
    const deliveries = await api.jobs.webhooks.read(job.id);
    console.log(`${host}: ${deliveries?.log.at(-1)?.error}`);
    expect(deliveries?.log.at(-1)?.error).toMatch(/refused: .*not a public address/);
  });
});

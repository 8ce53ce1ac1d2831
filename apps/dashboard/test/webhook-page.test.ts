import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { WorkflowView } from '@offload/contract';
import { JobQueues } from '@offload/queue';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type TestApi } from '../../../tests/support/api-server.ts';
import { admin, openBrowser, SHOTS, serveDashboard } from '../../../tests/support/dashboard.ts';
import { client } from '../../../tests/support/http.ts';
import {
  type RunningProcess,
  startWorkerProcess,
  testPrefix,
} from '../../../tests/support/processes.ts';
import { testRedis } from '../../../tests/support/redis-url.ts';
import { registry } from '../../../tests/support/test-tasks.ts';
import { startReceiver } from '../../../tests/support/webhook-receiver.ts';

/**
 * A webhook's deliveries in Chromium, on a job's page and on a workflow's webhook page: jobs and a workflow submitted through
 * the API with webhooks, delivered by a real worker process to a real
 * receiver that fails first, read by the dashboard from the same Redis. The
 * screenshot lands in test-results/dashboard/webhook.png.
 */
const target = testRedis();
const prefix = testPrefix();
const webhookEnv = {
  WEBHOOK_SECRETS: `dev:whsec_${randomBytes(32).toString('base64')}`,
  WEBHOOK_ALLOW_PRIVATE: 'true',
  WEBHOOK_RETRY_SCHEDULE: '100ms,200ms',
};

let api: TestApi;
let worker: RunningProcess;
let receiver: Awaited<ReturnType<typeof startReceiver>>;
let dashboard: { url: string; close(): Promise<void> };
let browser: Browser;
let page: Page;
let http: ReturnType<typeof client>;

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  receiver = await startReceiver();
  api = await startApi({
    redis: target,
    prefix,
    registry,
    workflows: true,
    webhookEnv,
  });
  worker = await startWorkerProcess({ redis: target, prefix, testTasks: true, env: webhookEnv });
  dashboard = await serveDashboard(JobQueues.create({ redis: target, prefix }), admin);
  ({ browser, page } = await openBrowser(admin));
  http = client(api.url);
});

afterAll(async () => {
  await browser?.close();
  await dashboard?.close();
  await worker?.stop();
  await api?.close();
  await receiver?.close();
});

/** The attempts table: the text of each cell, row by row. */
const attemptRows = () =>
  page
    .locator('#attempts tbody tr')
    .evaluateAll((rows) =>
      rows.map((row) => [...row.querySelectorAll('td')].map((td) => (td.textContent ?? '').trim())),
    );

describe("a job's page", () => {
  it('lists each attempt of its webhook with its time, status and duration: two 500s, then the 200', async () => {
    const job = await http.submit(
      'test.echo',
      { value: 'x' },
      { webhook: { url: `${receiver.url}/fail/2/dashboard` } },
    );
    await http.until(job.id, (view) => view.webhook?.state === 'delivered', 30_000);

    await page.goto(`${dashboard.url}/jobs/${job.id}`);
    await expect(page.locator('#webhook-state').textContent()).resolves.toBe('delivered');
    const rows = await attemptRows();
    console.log('attempts as the page lists them:', rows);
    expect(rows.map((row) => row[0])).toEqual(['1', '2', '3']);
    expect(rows.map((row) => row[2])).toEqual(['failed 500', 'failed 500', 'completed 200']);
    for (const row of rows) {
      expect(row[1]).toMatch(/^\d{4}-\d\d-\d\dT/);
      expect(row[3]).toMatch(/\d+ ms|s$/);
    }
    expect(rows[0]?.[4]).toBe('answered 500');
    await page.screenshot({ path: join(SHOTS, 'webhook.png'), fullPage: true });
  });

  it("says why an attempt got no answer, and escapes what the receiver's URL carries", async () => {
    const job = await http.submit(
      'test.echo',
      { value: 'x' },
      { webhook: { url: `${receiver.url}/gone/"><script>alert(1)</script>` } },
    );
    await http.until(job.id, (view) => view.webhook?.state === 'failed', 30_000);
    await page.goto(`${dashboard.url}/jobs/${job.id}`);
    expect((await attemptRows())[0]?.[2]).toBe('failed 410');
    expect(await page.locator('#webhook script').count()).toBe(0);
  });

  it('shows no webhook section for a job without one', async () => {
    const job = await http.submit('test.echo', { value: 'x' });
    await http.until(job.id, (view) => view.state === 'completed');
    await page.goto(`${dashboard.url}/jobs/${job.id}`);
    await expect(page.locator('#job').count()).resolves.toBe(1);
    await expect(page.locator('#webhook').count()).resolves.toBe(0);
  });
});

describe("a workflow's webhook page", () => {
  it('answers 404 for an id with no webhook', async () => {
    const res = await page.goto(`${dashboard.url}/webhooks/no-such-job`);
    expect(res?.status()).toBe(404);
    await expect(page.locator('#missing').textContent()).resolves.toContain('no-such-job');
  });

  it("is linked from a workflow's page, for the workflow's webhook", async () => {
    const res = await http.call('POST', '/v1/workflows', {
      steps: { only: { task: 'test.echo', input: { value: 'w' } } },
      webhook: { url: `${receiver.url}/ok/dashboard-workflow` },
    });
    const id = (res.body as unknown as WorkflowView).id;
    await receiver.waitFor('/ok/dashboard-workflow');
    for (;;) {
      await page.goto(`${dashboard.url}/workflows/${id}`);
      if ((await page.locator('#webhook-link').textContent()) === 'delivered') break;
    }
    await page.locator('#webhook-link').click();
    await expect(page.locator('h1').textContent()).resolves.toMatch(/Webhook of workflow/);
    expect((await attemptRows())[0]?.[2]).toBe('completed 200');
  });
});

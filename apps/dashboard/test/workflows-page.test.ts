import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { WorkflowView } from '@offload/contract';
import { JobQueues } from '@offload/queue';
import { registry } from '@offload/tasks';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type TestApi } from '../../../tests/support/api-server.ts';
import { admin, openBrowser, SHOTS, serveDashboard } from '../../../tests/support/dashboard.ts';
import { client } from '../../../tests/support/http.ts';
import { testPrefix } from '../../../tests/support/processes.ts';
import { testRedis } from '../../../tests/support/redis-url.ts';

/**
 * The Workflows page in Chromium: workflows started through the API (no
 * worker, so they keep running), shown with their tenant and step counts,
 * and one canceled with the page's button. The screenshot lands in
 * test-results/dashboard/workflows.png.
 */
const target = testRedis();
const prefix = testPrefix();

let api: TestApi;
let dashboard: { url: string; close(): Promise<void> };
let browser: Browser;
let page: Page;

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  api = await startApi({ redis: target, prefix, registry, workflows: true });
  dashboard = await serveDashboard(JobQueues.create({ redis: target, prefix }), admin);
  ({ browser, page } = await openBrowser(admin));
});

afterAll(async () => {
  await browser?.close();
  await dashboard?.close();
  await api?.close();
});

describe('the Workflows page', () => {
  it('shows each running workflow with its tenant and steps, and cancels one', async () => {
    const http = client(api.url);
    const start = async () =>
      (
        await http.call('POST', '/v1/workflows', {
          steps: {
            count: { task: 'primes.count', input: { below: 1000 } },
            again: {
              task: 'primes.count',
              input: { below: { $result: 'count.count' } },
              needs: ['count'],
            },
            burn: { task: 'cpu.burn', input: { ms: 10 }, needs: ['again'] },
          },
        })
      ).body as unknown as WorkflowView;
    const first = await start();
    const second = await start();

    await page.goto(`${dashboard.url}/fleet`);
    await page.getByRole('link', { name: 'Workflows' }).click();
    await page.waitForURL(/\/workflows$/);
    expect(await page.locator('main p.muted').first().textContent()).toMatch(
      /^2 workflows running, every tenant's ·/,
    );
    const firstRow = page.locator(`tr[data-workflow="${first.id}"]`);
    const secondRow = page.locator(`tr[data-workflow="${second.id}"]`);
    await expect(firstRow.locator('td').nth(1).textContent()).resolves.toBe('dev');
    await expect(firstRow.locator('td').nth(3).textContent()).resolves.toBe(
      '3 steps · 1 started · 0 finished',
    );
    // Newest first.
    expect(await page.locator('tr[data-workflow]').first().getAttribute('data-workflow')).toBe(
      second.id,
    );
    await page.screenshot({ path: join(SHOTS, 'workflows.png'), fullPage: true });

    await firstRow.getByRole('button', { name: `Cancel workflow ${first.id}` }).click();
    await page.getByRole('status').waitFor();
    expect(await page.getByRole('status').textContent()).toContain(first.id);
    expect(await firstRow.count()).toBe(0);
    expect(await secondRow.count()).toBe(1);
    const canceled = (await http.call('GET', `/v1/workflows/${first.id}`))
      .body as unknown as WorkflowView;
    expect(canceled.state).toBe('canceled');
    expect(canceled.steps.count?.state).toBe('canceled');
    expect(canceled.steps.burn?.state).toBe('canceled');
  });

  it('refuses a cancel without credentials (401) or from another origin (403)', async () => {
    const started = (
      await client(api.url).call('POST', '/v1/workflows', {
        steps: { one: { task: 'cpu.burn', input: { ms: 10 } } },
      })
    ).body as unknown as WorkflowView;
    const url = `${dashboard.url}/workflows/${started.id}/cancel`;
    const form = { 'content-type': 'application/x-www-form-urlencoded' };
    expect((await fetch(url, { method: 'POST', headers: form })).status).toBe(401);
    const auth = `Basic ${Buffer.from(`${admin.user}:${admin.password}`).toString('base64')}`;
    const forged = await fetch(url, {
      method: 'POST',
      headers: { ...form, authorization: auth, origin: 'https://evil.example' },
    });
    expect(forged.status).toBe(403);
    expect((await client(api.url).call('GET', `/v1/workflows/${started.id}`)).body.state).toBe(
      'running',
    );
  });
});

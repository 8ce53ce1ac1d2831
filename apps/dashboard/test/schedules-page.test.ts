import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
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
 * The Schedules page in Chromium: schedules created through the API (which
 * fires them), shown with their next firing and latest jobs, and deleted with
 * the page's button. The screenshot lands in test-results/dashboard/schedules.png.
 */
const target = testRedis();
const prefix = testPrefix();

let api: TestApi;
let dashboard: { url: string; close(): Promise<void> };
let browser: Browser;
let page: Page;

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  api = await startApi({ redis: target, prefix, registry, fireSchedules: true });
  dashboard = await serveDashboard(JobQueues.create({ redis: target, prefix }), admin);
  ({ browser, page } = await openBrowser(admin));
});

afterAll(async () => {
  await browser?.close();
  await dashboard?.close();
  await api?.close();
});

describe('the Schedules page', () => {
  it('shows each schedule with its tenant, timing, next firing and latest jobs, and deletes one', async () => {
    const http = client(api.url);
    const every = (
      await http.call('POST', '/v1/schedules', {
        task: 'primes.count',
        input: { below: 1000 },
        everyMs: 1000,
      })
    ).body;
    const nightly = (
      await http.call('POST', '/v1/schedules', {
        task: 'primes.count',
        input: { below: 50_000_000 },
        cron: '0 3 * * *',
        timezone: 'Europe/Berlin',
      })
    ).body;
    // Two firings of the interval schedule.
    const deadline = Date.now() + 10_000;
    let recent: string[] = [];
    while (recent.length < 2 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      recent = (await http.call('GET', `/v1/schedules/${every.id}`)).body.recentJobs as string[];
    }
    expect(recent.length).toBeGreaterThanOrEqual(2);

    await page.goto(`${dashboard.url}/fleet`);
    await page.getByRole('link', { name: 'Schedules' }).click();
    await page.waitForURL(/\/schedules$/);
    expect(await page.locator('main p.muted').first().textContent()).toMatch(
      /^2 schedules, every tenant's, by next firing ·/,
    );
    const everyRow = page.locator(`tr[data-schedule="${every.id}"]`);
    const nightlyRow = page.locator(`tr[data-schedule="${nightly.id}"]`);
    await expect(everyRow.locator('td').nth(1).textContent()).resolves.toBe('dev');
    await expect(everyRow.locator('td').nth(2).textContent()).resolves.toBe('primes.count');
    await expect(everyRow.locator('td').nth(3).textContent()).resolves.toBe('every 1.0 s');
    await expect(nightlyRow.locator('td').nth(3).textContent()).resolves.toBe(
      '0 3 * * * Europe/Berlin',
    );
    await expect(nightlyRow.locator('td').nth(4).textContent()).resolves.toContain(
      nightly.nextRunAt as string,
    );
    // The latest jobs link to their page in the queue view.
    const link = everyRow.locator('td').nth(5).locator('a').first();
    const href = await link.getAttribute('href');
    const shown = (await link.textContent()) ?? '';
    expect(recent).toContain(shown);
    expect(href).toBe(`/queues/queue/default/${shown}`);
    await page.screenshot({ path: join(SHOTS, 'schedules.png'), fullPage: true });

    await everyRow.getByRole('button', { name: `Delete schedule ${every.id}` }).click();
    await page.getByRole('status').waitFor();
    expect(await page.getByRole('status').textContent()).toContain(every.id);
    expect(await everyRow.count()).toBe(0);
    expect(await nightlyRow.count()).toBe(1);
    expect((await http.call('GET', `/v1/schedules/${every.id}`)).status).toBe(404);
  });

  it('refuses a delete without credentials (401) or from another origin (403)', async () => {
    const nightly = (
      await client(api.url).call('POST', '/v1/schedules', {
        task: 'primes.count',
        input: { below: 1000 },
        cron: '0 4 * * *',
      })
    ).body;
    const url = `${dashboard.url}/schedules/${nightly.id}/delete`;
    const form = { 'content-type': 'application/x-www-form-urlencoded' };
    const anonymous = await fetch(url, { method: 'POST', headers: form });
    expect(anonymous.status).toBe(401);
    const auth = `Basic ${Buffer.from(`${admin.user}:${admin.password}`).toString('base64')}`;
    const forged = await fetch(url, {
      method: 'POST',
      headers: { ...form, authorization: auth, origin: 'https://evil.example' },
    });
    expect(forged.status).toBe(403);
    expect(await forged.json()).toMatchObject({ code: 'cross_site_request' });
    expect((await client(api.url).call('GET', `/v1/schedules/${nightly.id}`)).status).toBe(200);
  });
});

import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiProcess, startApiProcess } from './api-process.ts';

let api: ApiProcess;
let browser: Browser;
beforeAll(async () => {
  api = await startApiProcess();
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
});
afterAll(async () => {
  await browser?.close();
  await api?.stop();
});

describe('GET /docs on a network without internet', () => {
  it('renders every operation of /openapi.json from files the API serves itself', async () => {
    const page = await browser.newPage();
    const elsewhere: string[] = [];
    await page.route('**/*', (route) => {
      const url = route.request().url();
      if (url.startsWith(`${api.url}/`)) return route.continue();
      elsewhere.push(url);
      return route.abort();
    });
    const refused: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error') refused.push(message.text());
    });

    const res = await page.goto(`${api.url}/docs`);
    expect(res?.status()).toBe(200);
    const document = (await (await fetch(`${api.url}/openapi.json`)).json()) as {
      paths: Record<string, Record<string, { operationId: string }>>;
    };
    const operations = Object.values(document.paths).flatMap((methods) =>
      Object.values(methods).map((op) => op.operationId),
    );
    expect(operations.length).toBeGreaterThan(5);
    await page.locator('.opblock').first().waitFor({ timeout: 20_000 });
    expect(await page.locator('.opblock').count()).toBe(operations.length);
    await expect(page.locator('.opblock-summary-path').allTextContents()).resolves.toContain(
      '/v1/jobs/{id}',
    );
    expect(elsewhere).toEqual([]);
    expect(refused).toEqual([]);
  });
});

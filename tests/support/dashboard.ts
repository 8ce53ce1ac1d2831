import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { serve } from '@hono/node-server';
import type { JobQueues } from '@offload/queue';
import { pino } from 'pino';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { createDashboard } from '../../apps/dashboard/src/app.ts';
import type { AdminCredentials } from '../../apps/dashboard/src/auth.ts';
import { ROOT } from './processes.ts';

/** Where the dashboard's browser tests save their screenshots. */
export const SHOTS = join(ROOT, 'test-results', 'dashboard');
/** The operator the dashboard's browser tests sign in as. */
export const admin = { user: 'admin', password: 'correct horse battery staple' };

/** The dashboard on a real port, built as apps/dashboard/src/index.ts builds it. */
export async function serveDashboard(jobs: JobQueues, admin: AdminCredentials) {
  const app = createDashboard({ jobs, logger: pino({ level: 'silent' }), admin });
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const s = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, () => resolve(s));
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      (server as unknown as { closeAllConnections(): void }).closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await jobs.close();
    },
  };
}

/**
 * Debian's Chromium, headless, signed in with the admin credentials. It must
 * not reach the network: `requested` lists every URL it asked for.
 */
export async function openBrowser(admin: { user: string; password: string }): Promise<{
  browser: Browser;
  context: BrowserContext;
  page: Page;
  requested: string[];
}> {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
  const context = await browser.newContext({
    httpCredentials: { username: admin.user, password: admin.password },
    viewport: { width: 1280, height: 800 },
  });
  const page = await context.newPage();
  const requested: string[] = [];
  page.on('request', (request) => requested.push(request.url()));
  return { browser, context, page, requested };
}

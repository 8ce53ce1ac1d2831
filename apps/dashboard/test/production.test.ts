import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { registry } from '@offload/tasks';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../../scripts/redis-server.ts';
import { publishTasks } from '../../../tests/support/api-server.ts';
import {
  ROOT,
  type RunningProcess,
  startNodeProcess,
  testPrefix,
} from '../../../tests/support/processes.ts';
import { redisEnv, testRedis } from '../../../tests/support/redis-url.ts';

/** What the image runs: the esbuild bundle under plain node, bull-board's UI files from node_modules. */
const running: RunningProcess[] = [];
afterAll(() => Promise.all(running.map((p) => p.stop('SIGKILL'))));

const BUNDLE = 'apps/dashboard/dist/index.js';
const env = () => ({
  ...redisEnv(),
  OFFLOAD_PREFIX: testPrefix(),
  NODE_ENV: 'production',
});

describe('the dashboard bundle in production', () => {
  it('builds', () => {
    const build = spawnSync('npm', ['run', 'build'], {
      cwd: join(ROOT, 'apps/dashboard'),
      encoding: 'utf8',
    });
    expect(build.status, build.stdout + build.stderr).toBe(0);
  });

  it('refuses to start without admin credentials', async () => {
    const dashboard = startNodeProcess(BUNDLE, env(), { tsx: false });
    running.push(dashboard);
    expect(await dashboard.exited).not.toBe(0);
    expect(dashboard.output()).toMatch(/ADMIN_USER: required when NODE_ENV=production/);
  });

  it('serves bull-board and its static files behind the credentials', async () => {
    const port = await freePort();
    const settings = env();
    // The queues come from the catalog workers publish: as if a worker of the built-ins had started.
    await publishTasks(testRedis(), settings.OFFLOAD_PREFIX, registry);
    const dashboard = startNodeProcess(
      BUNDLE,
      {
        ...settings,
        DASHBOARD_PORT: String(port),
        ADMIN_USER: 'ops',
        ADMIN_PASSWORD: 's3cret-pass-of-some-length',
      },
      { tsx: false },
    );
    running.push(dashboard);
    await dashboard.waitForLine(/dashboard listening/);
    const base = `http://127.0.0.1:${port}`;
    const auth = {
      authorization: `Basic ${Buffer.from('ops:s3cret-pass-of-some-length').toString('base64')}`,
    };

    expect((await fetch(`${base}/queues`)).status).toBe(401);
    const wrong = await fetch(`${base}/queues`, {
      headers: { authorization: `Basic ${Buffer.from('ops:guess').toString('base64')}` },
    });
    expect(wrong.status).toBe(401);

    const page = await fetch(`${base}/queues`, { headers: auth });
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).not.toMatch(/https?:\/\//);
    const css = /href="(static\/css\/[^"]+)"/.exec(html)?.[1];
    expect(css).toBeDefined();
    const asset = await fetch(`${base}/queues/${css}`, { headers: auth });
    expect(asset.status).toBe(200);
    expect(asset.headers.get('content-type')).toMatch(/text\/css/);

    const api = await fetch(`${base}/queues/api/queues`, { headers: auth });
    const names = ((await api.json()) as { queues: { name: string }[] }).queues.map((q) => q.name);
    expect(names).toContain('default');

    // A forged cross-site form post is refused, even with the browser's saved credentials.
    const forged = await fetch(`${base}/jobs/AAAAAAAAAAAAAAAAAAAAAA/cancel`, {
      method: 'POST',
      headers: {
        ...auth,
        origin: 'https://evil.example',
        'content-type': 'application/x-www-form-urlencoded',
      },
    });
    expect(forged.status).toBe(403);
    expect(await forged.json()).toMatchObject({ code: 'cross_site_request' });
    // The password never reaches a log line.
    expect(dashboard.output()).not.toContain('s3cret-pass-of-some-length');
  });
});

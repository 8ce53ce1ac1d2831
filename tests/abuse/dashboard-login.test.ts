import { request } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { type RunningProcess, startNodeProcess, testPrefix } from '../support/processes.ts';
import { redisEnv } from '../support/redis-url.ts';
import { basic, type DashboardProcess, startDashboardProcess } from './dashboard-process.ts';

const running: (DashboardProcess | RunningProcess)[] = [];
afterAll(() => Promise.all(running.map((p) => p.stop())));

function startInProduction(password: string): RunningProcess {
  const dashboard = startNodeProcess('apps/dashboard/src/index.ts', {
    ...redisEnv(),
    OFFLOAD_PREFIX: testPrefix(),
    DASHBOARD_PORT: '0',
    NODE_ENV: 'production',
    ADMIN_USER: 'ops',
    ADMIN_PASSWORD: password,
  });
  running.push(dashboard);
  return dashboard;
}

/** GET over a connection from `localAddress`: another client address on loopback. */
function getFrom(localAddress: string, url: string, headers: Record<string, string>) {
  return new Promise<number>((resolve, reject) => {
    const req = request(url, { localAddress, headers }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('the dashboard in production', () => {
  it.each([
    ['shorter than 12 characters', 'Xk9#mQ2$vL', /use at least 12 characters \(it has 10\)/],
    ['a common password', 'password1234', /common or easily guessed password/],
    ['a keyboard walk', 'qwertyuiop123', /common or easily guessed password/],
  ])('refuses to start with an admin password %s, in one line', async (_, password, reason) => {
    const dashboard = startInProduction(password);
    expect(await dashboard.exited).toBe(1);
    const lines = dashboard.output().trim().split('\n');
    expect(lines).toEqual([
      'Invalid dashboard configuration:',
      expect.stringMatching(/^ {2}ADMIN_PASSWORD: too weak for NODE_ENV=production: /),
    ]);
    expect(lines[1]).toMatch(reason);
    expect(dashboard.output()).not.toContain(password);
  });

  it('starts with a long, uncommon one', async () => {
    const dashboard = startInProduction('correct horse battery staple');
    await dashboard.waitForLine(/dashboard listening/);
  });
});

describe('failed sign-ins', () => {
  it('are refused with 429 past DASHBOARD_LOGIN_MAX_FAILURES per client address, until the window ends', async () => {
    const dashboard = await startDashboardProcess({
      ADMIN_USER: 'ops',
      ADMIN_PASSWORD: 'a long and unusual passphrase',
      DASHBOARD_LOGIN_MAX_FAILURES: '3',
      DASHBOARD_LOGIN_WINDOW_S: '2',
    });
    running.push(dashboard);
    const page = `${dashboard.url}/fleet`;
    const right = basic('ops', 'a long and unusual passphrase');
    const get = async (headers: Record<string, string>) => (await fetch(page, { headers })).status;

    // A browser's first request carries no credentials: not a failure.
    for (let i = 0; i < 5; i++) expect(await get({})).toBe(401);
    expect(await get(right)).toBe(200);

    for (let i = 0; i < 3; i++) expect(await get(basic('ops', `guess-${i}`))).toBe(401);
    const refused = await fetch(page, { headers: right });
    expect(refused.status).toBe(429);
    expect(refused.headers.get('content-type')).toBe('application/problem+json');
    expect(await refused.json()).toMatchObject({ code: 'rate_limited', status: 429 });
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);

    // Another address is not held up by this one's guesses.
    expect(await getFrom('127.0.0.2', page, right)).toBe(200);

    await sleep(2200);
    expect(await get(right)).toBe(200);
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiProcess, startApiProcess } from './api-process.ts';
import { basic, type DashboardProcess, startDashboardProcess } from './dashboard-process.ts';

const admin = { user: 'ops', password: 'a long and unusual passphrase' };
let api: ApiProcess;
let dashboard: DashboardProcess;
beforeAll(async () => {
  [api, dashboard] = await Promise.all([
    startApiProcess(),
    startDashboardProcess({ ADMIN_USER: admin.user, ADMIN_PASSWORD: admin.password }),
  ]);
});
afterAll(() => Promise.all([api?.stop(), dashboard?.stop()]));

function expectHardened(res: Response) {
  expect(res.headers.get('x-content-type-options')).toBe('nosniff');
  expect(res.headers.get('x-frame-options')).toBe('DENY');
  expect(res.headers.get('referrer-policy')).toBe('no-referrer');
  expect(res.headers.get('strict-transport-security')).toMatch(/^max-age=\d+/);
  expect(res.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
}

describe('security headers', () => {
  it('on every API answer, problems included, with a policy that loads nothing', async () => {
    for (const path of ['/healthz', '/metrics', '/openapi.json', '/v1/tasks', '/no-such-route']) {
      const res = await fetch(`${api.url}${path}`);
      expectHardened(res);
      expect(res.headers.get('content-security-policy'), path).toMatch(/^default-src 'none'/);
    }
  });

  it('on /docs, whose one inline script runs by a nonce that changes with each answer', async () => {
    const nonces: string[] = [];
    for (let i = 0; i < 2; i++) {
      const res = await fetch(`${api.url}/docs`);
      expectHardened(res);
      const policy = res.headers.get('content-security-policy') ?? '';
      const nonce = /script-src 'self' 'nonce-([^']+)'/.exec(policy)?.[1];
      expect(nonce, policy).toBeDefined();
      expect(await res.text()).toContain(`<script nonce="${nonce}">`);
      nonces.push(nonce as string);
    }
    expect(nonces[0]).not.toBe(nonces[1]);
  });

  it('on every dashboard answer, signed in or not', async () => {
    for (const [path, headers] of [
      ['/healthz', {}],
      ['/fleet', {}],
      ['/fleet', basic(admin.user, admin.password)],
      ['/queues', basic(admin.user, admin.password)],
    ] as const) {
      const res = await fetch(`${dashboard.url}${path}`, { headers });
      expectHardened(res);
      expect(res.headers.get('content-security-policy'), path).toContain("script-src 'self'");
    }
  });
});

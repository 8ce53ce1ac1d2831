import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiProcess, startApiProcess } from './api-process.ts';

const TENANTS = [
  { tenant: 'acme-private-tenant', key: 'acme-key-0123456789abcdef' },
  { tenant: 'globex-private-tenant', key: 'globex-key-0123456789abcdef' },
];
/** Label names of the API's own series and of prom-client's process and runtime metrics. */
const ALLOWED_LABELS = new Set([
  'method',
  'route',
  'status',
  'task',
  'queue',
  'state',
  'le',
  'version',
  'major',
  'minor',
  'patch',
  'space',
  'kind',
  'type',
]);

let api: ApiProcess;
beforeAll(async () => {
  api = await startApiProcess({
    API_KEYS: TENANTS.map(({ tenant, key }) => `${tenant}:${key}`).join(','),
  });
});
afterAll(() => api?.stop());

describe('GET /metrics without credentials', () => {
  it("tells nothing of tenants: no tenant label, no tenant's name, key or job id", async () => {
    const ids: string[] = [];
    for (const { key } of TENANTS) {
      const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
      const res = await fetch(`${api.url}/v1/jobs`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ task: 'primes.count', input: { below: 100 } }),
      });
      expect(res.status).toBe(202);
      const { id } = (await res.json()) as { id: string };
      ids.push(id);
      expect((await fetch(`${api.url}/v1/jobs/${id}`, { headers })).status).toBe(200);
      await fetch(`${api.url}/v1/jobs`, { method: 'POST', headers, body: '{"task":' });
    }

    const res = await fetch(`${api.url}/metrics`);
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toContain('offload_api_jobs_submitted_total{task="primes.count"} 2');
    for (const secret of [...TENANTS.flatMap(({ tenant, key }) => [tenant, key]), ...ids]) {
      expect(text).not.toContain(secret);
    }
    const labels = new Set(
      [...text.matchAll(/[{,]([a-zA-Z_][a-zA-Z0-9_]*)="/g)].map((match) => match[1]),
    );
    expect([...labels].filter((label) => !ALLOWED_LABELS.has(label as string))).toEqual([]);
  });
});

import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type TestApi } from '../../../tests/support/api-server.ts';
import { testPrefix } from '../../../tests/support/processes.ts';
import { testRedis } from '../../../tests/support/redis-url.ts';
import { registry } from '../../../tests/support/test-tasks.ts';

let api: TestApi;
beforeAll(async () => {
  api = await startApi({ redis: testRedis(), prefix: testPrefix(), registry, listen: false });
});
afterAll(() => api.close());

describe('GET /metrics', () => {
  it('counts requests by route pattern and status, and reports queue depth', async () => {
    await api.app.request('/healthz');
    await api.app.request('/v1/jobs/AAAAAAAAAAAAAAAAAAAAAA');
    const res = await api.app.request('/metrics');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    expect(text).toContain(
      'offload_api_requests_total{method="GET",route="/healthz",status="200"} 1',
    );
    // The pattern, not the id: one series for every job.
    expect(text).toMatch(
      /offload_api_requests_total\{method="GET",route="\/v1\/jobs\/:id",status="\d{3}"\} 1/,
    );
    // Its duration is in the histogram (the +Inf bucket: how fast it was depends on the machine's load).
    expect(text).toMatch(
      /offload_api_request_duration_seconds_bucket\{le="\+Inf",method="GET",route="\/healthz",status="200"\} 1/,
    );
    expect(text).toContain('offload_queue_jobs{queue="default",state="waiting"} 0');
    expect(text).toContain('# TYPE offload_api_jobs_submitted_total counter');
    expect(text).toContain('offload_workflows_running 0');
  });

  it('counts the workflows not yet ended', async () => {
    const started = await api.app.request('/v1/workflows', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        steps: {
          a: { task: 'test.echo', input: { value: 'x' } },
          b: { task: 'test.echo', input: { value: 'y' }, needs: ['a'] },
        },
      }),
    });
    expect(started.status).toBe(202);
    const { id } = (await started.json()) as { id: string };
    expect(await (await api.app.request('/metrics')).text()).toContain(
      'offload_workflows_running 1',
    );
    expect((await api.app.request(`/v1/workflows/${id}`, { method: 'DELETE' })).status).toBe(200);
    expect(await (await api.app.request('/metrics')).text()).toContain(
      'offload_workflows_running 0',
    );
  });
});

describe('the request log', () => {
  it('logs a probe of /healthz or /readyz at debug, and any other request at info', async () => {
    type Line = { level: number; path: string };
    const lines: Line[] = [];
    const logger = pino(
      { level: 'info' },
      { write: (line: string) => lines.push(JSON.parse(line) as Line) },
    );
    const logged = await startApi({
      redis: testRedis(),
      prefix: testPrefix(),
      registry,
      listen: false,
      logger,
    });
    try {
      await logged.app.request('/healthz');
      await logged.app.request('/readyz');
      await logged.app.request('/v1/tasks');
      expect(lines.map((line) => line.path)).toEqual(['/v1/tasks']);
      expect(lines[0]?.level).toBe(logger.levels.values.info);
    } finally {
      await logged.close();
    }
  });
});

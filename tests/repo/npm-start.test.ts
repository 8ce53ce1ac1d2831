import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../../scripts/redis-server.ts';
import { client } from '../support/http.ts';
import { type RunningProcess, startNodeProcess, testPrefix } from '../support/processes.ts';
import { redisEnv } from '../support/redis-url.ts';

let started: RunningProcess | undefined;
afterEach(async () => {
  // SIGINT first: start.ts stops its children too, which SIGKILL of it alone would leave running.
  if (started && started.child.exitCode === null) {
    const killer = setTimeout(() => started?.child.kill('SIGKILL'), 10_000);
    await started.stop('SIGINT');
    clearTimeout(killer);
  }
  started = undefined;
});

const answers = (url: string) =>
  fetch(url, { signal: AbortSignal.timeout(1000) }).then(
    (res) => res.status,
    () => null,
  );

describe('npm start', () => {
  it('runs the API, a worker and the dashboard with prefixed logs, and SIGINT stops them all', async () => {
    const [port, dashboardPort, metricsPort] = await Promise.all([
      freePort(),
      freePort(),
      freePort(),
    ]);
    started = startNodeProcess('scripts/start.ts', {
      ...redisEnv(),
      OFFLOAD_PREFIX: testPrefix(),
      PORT: String(port),
      DASHBOARD_PORT: String(dashboardPort),
      WORKER_METRICS_PORT: String(metricsPort),
      WORKER_CONCURRENCY: '1',
    });
    // The test run's Redis: one server, or in the cluster project a Redis Cluster.
    await started.waitForLine(
      /^\[start\] using the Redis (at redis:\/\/127\.0\.0\.1:|Cluster at 127\.0\.0\.1:)/,
      30_000,
    );
    await started.waitForLine(/^\[api\] .*api listening/, 30_000);
    await started.waitForLine(/^\[worker\] .*worker ready/, 30_000);
    await started.waitForLine(/^\[dashboard\] .*dashboard listening/, 30_000);

    const http = client(`http://127.0.0.1:${port}`);
    const job = await http.submit('primes.count', { below: 1_000_000 });
    expect(await http.get(job.id, 20)).toMatchObject({
      state: 'completed',
      result: { count: 78_498 },
    });
    expect(await answers(`http://127.0.0.1:${dashboardPort}/healthz`)).toBe(200);
    expect(await answers(`http://127.0.0.1:${metricsPort}/metrics`)).toBe(200);

    // What Ctrl-C sends; start.ts passes it on to every process and waits for them.
    started.child.kill('SIGINT');
    expect(await started.exited).toBe(0);
    for (const url of [
      `http://127.0.0.1:${port}/healthz`,
      `http://127.0.0.1:${dashboardPort}/healthz`,
      `http://127.0.0.1:${metricsPort}/metrics`,
    ]) {
      expect(await answers(url)).toBeNull();
    }
  });
});

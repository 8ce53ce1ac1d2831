import { spawnSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../scripts/redis-server.ts';
import { client } from '../support/http.ts';
import { ROOT, type RunningProcess, startNodeProcess, testPrefix } from '../support/processes.ts';
import { redisEnv } from '../support/redis-url.ts';
import { PYTHON_TEST_TASKS } from '../support/test-tasks.ts';

/** What the Docker image runs: the esbuild bundles under plain node, no tsx. */
const running: RunningProcess[] = [];
afterAll(() => Promise.all(running.map((p) => p.stop('SIGKILL'))));

describe('the production bundles', () => {
  it('build, and run a job end to end under plain node', async () => {
    const build = spawnSync('npm', ['run', 'build'], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, TURBO_TELEMETRY_DISABLED: '1' },
    });
    expect(build.status, build.stdout + build.stderr).toBe(0);

    const env = { ...redisEnv(), OFFLOAD_PREFIX: testPrefix(), NODE_ENV: 'production' };
    // Production refuses to start without keys.
    const apiKey = 'prod-test-key-0123456789';
    const port = await freePort();
    const api = startNodeProcess(
      'apps/api/dist/index.js',
      { ...env, PORT: String(port), API_KEYS: `acme:${apiKey}` },
      { tsx: false },
    );
    // The bundled worker finds the offload Python package where the image puts it (sdk/python).
    const worker = startNodeProcess(
      'apps/worker/dist/index.js',
      {
        ...env,
        WORKER_CONCURRENCY: '1',
        OFFLOAD_TASKS: `@offload/tasks/builtin,${PYTHON_TEST_TASKS}`,
      },
      { tsx: false },
    );
    running.push(api, worker);
    await Promise.all([api.waitForLine(/api listening/), worker.waitForLine(/worker ready/)]);

    const http = client(`http://127.0.0.1:${port}`, apiKey);
    const job = await http.submit('image.mandelbrot', { width: 64, height: 48 });
    const done = await http.get(job.id, 30);
    expect(done.state).toBe('completed');
    // The bundled executor thread hands the PNG over as bytes; the API serves them from the blob store.
    const res = await fetch(`http://127.0.0.1:${port}/v1/jobs/${job.id}/result`, {
      headers: { authorization: `Bearer ${apiKey}` },
    });
    expect(res.headers.get('content-type')).toBe('image/png');
    const png = Buffer.from(await res.arrayBuffer());
    expect(png.subarray(0, 8).toString('hex')).toBe('89504e470d0a1a0a');
    const python = await http.submit('py.echo', { value: 'bundled' });
    expect(await http.get(python.id, 30)).toMatchObject({
      state: 'completed',
      result: { value: 'bundled' },
    });
  });
});

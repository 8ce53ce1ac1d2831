import { afterAll, beforeAll, describe, expect, inject, it, onTestFailed } from 'vitest';
import { freePort } from '../../scripts/redis-server.ts';
import { apiRequest, composeOf, engine, sh, timed, until } from './engine.ts';

/**
 * The production-like stack as a new user runs it, with nothing but
 * docker-compose.yml and the variables the README names: `up -d --build`, a job
 * through the API over HTTP, `--scale worker=3`, `stop worker`, `down -v`.
 * Redis is not published on this machine, so the stack starts beside a Redis
 * that already holds 6379 here.
 */

// Letters and digits only: Compose v1 drops other characters from project names.
const project = `offloadstack${process.pid}`;
const image = inject('offloadImage');
const apiKey = 'stack-test-key-0123456789';
let stackEnv: NodeJS.ProcessEnv = {};
let api = '';
let dashboard = '';
const compose = composeOf(['docker-compose.yml'], () => stackEnv);

const request = (path: string, body?: unknown) => apiRequest(api, apiKey, path, body);

async function submit(task: string, input: unknown): Promise<string> {
  const submitted = await request('/v1/jobs', { task, input });
  expect(submitted.status, JSON.stringify(submitted.body)).toBe(202);
  return String(submitted.body.id);
}

/** Polls the job, as a client without long-polls would, until it is in `state`. */
const jobIn = (id: string, state: string, timeoutMs: number) =>
  until(
    `job ${id} ${state}`,
    async () => {
      const { body } = await request(`/v1/jobs/${id}`);
      return body.state === state ? body : undefined;
    },
    timeoutMs,
  );

/** Waits until /readyz answers 200 and counts `workers` live workers. */
const readyWith = (workers: number) =>
  until(
    `/readyz counts ${workers} workers`,
    async () => {
      const { status, body } = await request('/readyz');
      return status === 200 && body.workers === workers ? body : undefined;
    },
    60_000,
  );

const workerContainers = async () => (await compose('ps', '-q', 'worker')).trim().split(/\s+/);

beforeAll(async () => {
  const [apiPort, dashboardPort] = [await freePort(), await freePort()];
  api = `http://127.0.0.1:${apiPort}`;
  dashboard = `http://127.0.0.1:${dashboardPort}`;
  stackEnv = {
    ...process.env,
    COMPOSE_PROJECT_NAME: project,
    OFFLOAD_IMAGE: image,
    API_KEYS: `acme:${apiKey}`,
    API_PORT: String(apiPort),
    DASHBOARD_PORT: String(dashboardPort),
    ADMIN_USER: 'admin',
    ADMIN_PASSWORD: 'stack test admin password',
  };
});

afterAll(async () => {
  // Also after a failure midway; after the last test, a second `down` finds nothing.
  await compose('down', '-v').catch((err) => console.error(String(err)));
});

describe('the compose stack, as a new user runs it', () => {
  it('starts with up -d --build: the API and the dashboard answer on the ports given', async () => {
    onTestFailed(async () => console.error(await compose('logs', '--no-color', '--tail', '60')));
    await timed('up -d --build', () => compose('up', '-d', '--build'));
    await timed('the API answers /healthz', () =>
      until(
        'the API answers',
        () => fetch(`${api}/healthz`).then((r) => r.ok || undefined),
        60_000,
      ),
    );
    // A worker publishes its tasks as it starts: until then the API knows none.
    await timed('/readyz counts the worker', () => readyWith(1));
    const page = await until(
      'the dashboard answers',
      () => fetch(dashboard).then((r) => (r.status === 401 ? r : undefined)),
      60_000,
    );
    // Credentials from ADMIN_USER and ADMIN_PASSWORD: without them it would not have started.
    expect(page.headers.get('www-authenticate')).toMatch(/^Basic /);
  });

  it('runs a job submitted over HTTP to the end', async () => {
    onTestFailed(async () => console.error(await compose('logs', '--no-color', '--tail', '60')));
    const id = await submit('primes.count', { below: 100_000 });
    const job = await timed('a job, submitted and polled to completed', () =>
      jobIn(id, 'completed', 60_000),
    );
    expect(job.result).toEqual({ count: 9592 });
  });

  it('scales to three workers with --scale worker=3, and /readyz counts them', async () => {
    onTestFailed(async () => console.error(await compose('logs', '--no-color', '--tail', '60')));
    await timed('up -d --scale worker=3', () => compose('up', '-d', '--scale', 'worker=3'));
    const ready = await timed('/readyz counts 3 workers', () => readyWith(3));
    expect(ready).toMatchObject({ status: 'ready', redis: 'up', workers: 3 });
    expect(await workerContainers()).toHaveLength(3);
  });

  it('stops every worker with exit code 0, once the job it runs is done', async () => {
    onTestFailed(async () => console.error(await compose('logs', '--no-color', '--tail', '60')));
    const id = await submit('cpu.burn', { ms: 3000 });
    await jobIn(id, 'running', 30_000);
    const workers = await workerContainers();
    await timed('stop worker', () => compose('stop', 'worker'));
    const exitCodes = await sh([engine, 'inspect', '--format', '{{.State.ExitCode}}', ...workers]);
    expect(exitCodes.trim().split(/\s+/)).toEqual(['0', '0', '0']);
    // Drained, not abandoned: the job finished on its first attempt, before its worker exited.
    const job = (await request(`/v1/jobs/${id}`)).body;
    expect(job).toMatchObject({ state: 'completed', attempts: { made: 1 } });
  });

  it('leaves no container, network or volume after down -v', async () => {
    await timed('down -v', () => compose('down', '-v'));
    const label = `label=com.docker.compose.project=${project}`;
    const left = await Promise.all([
      sh([engine, 'ps', '-aq', '--filter', label]),
      sh([engine, 'network', 'ls', '-q', '--filter', label]),
      sh([engine, 'volume', 'ls', '-q', '--filter', label]),
    ]);
    expect(left.map((ids) => ids.trim())).toEqual(['', '', '']);
  });
});

describe('the image', () => {
  it('holds the apps’ production dependencies only: no TypeScript compiler, tsx or esbuild', async () => {
    const [bytes, listing] = await Promise.all([
      sh([engine, 'image', 'inspect', '--format', '{{.Size}}', image]),
      sh([
        engine,
        'run',
        '--rm',
        image,
        'sh',
        '-c',
        'du -sk node_modules | cut -f1; ls node_modules',
      ]),
    ]);
    const [kib = '', ...modules] = listing.trim().split(/\s+/);
    console.log(
      `image: ${(Number(bytes) / 1e6).toFixed(0)} MB, node_modules: ${(Number(kib) / 1024).toFixed(0)} MiB`,
    );
    expect(modules).toContain('bullmq');
    for (const name of ['typescript', 'tsx', 'esbuild', '@esbuild', 'vitest', 'turbo']) {
      expect(modules, name).not.toContain(name);
    }
  });
});

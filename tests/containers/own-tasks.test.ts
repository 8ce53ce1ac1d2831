import { execFile } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { freePort } from '../../scripts/redis-server.ts';

/**
 * Your own tasks in containers, for real: Offload's image built from the root
 * Dockerfile, a task project's image built FROM it (examples/markdown-tasks),
 * and the compose stack with a single task file mounted into the stock worker
 * (docker-compose.tasks.yml). Jobs of both go through the API over HTTP.
 *
 * Engine: CONTAINER_ENGINE (`docker` or `podman`) and CONTAINER_COMPOSE (the
 * compose command, words split on spaces). Unset: `podman` with
 * `podman-docker-compose` when that is on PATH, else `docker` with `docker compose`.
 */
const root = fileURLToPath(new URL('../../', import.meta.url));
const run = promisify(execFile);

const hasCommand = async (name: string) =>
  run('sh', ['-c', `command -v ${name}`]).then(
    () => true,
    () => false,
  );
const podmanCompose = await hasCommand('podman-docker-compose');
const { CONTAINER_ENGINE, CONTAINER_COMPOSE } = process.env;
const engine = CONTAINER_ENGINE ?? (podmanCompose ? 'podman' : 'docker');
const composeCommand = (
  CONTAINER_COMPOSE ??
  (engine === 'podman' && podmanCompose ? 'podman-docker-compose' : `${engine} compose`)
).split(' ');

// Letters and digits only: Compose v1 drops other characters from project names,
// v2 keeps them, and the network name below must be the same under both.
const project = `offloadcontainers${process.pid}`;
const baseImage = 'offload:containers-test';
const tasksImage = 'offload-markdown-tasks:containers-test';
const markdownWorker = `${project}-markdown-worker`;
const apiKey = 'containers-test-key-0123456789';
const tasksDir = mkdtempSync(join(tmpdir(), 'offload-tasks-'));

let stackEnv: NodeJS.ProcessEnv = {};
let api = '';

/** Runs a command to its end; a failure carries the tail of its output. */
async function sh(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const [command = '', ...args] = argv;
  try {
    const { stdout } = await run(command, args, { cwd: root, env, maxBuffer: 64 << 20 });
    return stdout;
  } catch (err) {
    const { stdout = '', stderr = '' } = err as { stdout?: string; stderr?: string };
    const tail = `${stdout}\n${stderr}`.trim().split('\n').slice(-40).join('\n');
    throw new Error(`${argv.join(' ')} failed:\n${tail}`);
  }
}

const compose = (...args: string[]) =>
  sh(
    [...composeCommand, '-f', 'docker-compose.yml', '-f', 'docker-compose.tasks.yml', ...args],
    stackEnv,
  );

async function stackLogs(): Promise<string> {
  const logs = await Promise.all([
    compose('logs', '--no-color', '--tail', '60').catch(String),
    sh([engine, 'logs', '--tail', '60', markdownWorker]).catch(String),
  ]);
  return logs.join('\n');
}

/** Runs one step of the setup and says how long it took, for deciding where this test can run. */
async function timed<T>(step: string, work: () => Promise<T>): Promise<T> {
  const started = performance.now();
  const value = await work();
  console.log(`${step}: ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return value;
}

/** Polls until `check` returns a value; ms. */
async function until<T>(what: string, check: () => Promise<T | undefined>, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

async function request(path: string, body?: unknown) {
  const response = await fetch(`${api}${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

/** Submits a job and long-polls it until it finishes. */
async function runJob(task: string, input: unknown) {
  const submitted = await request('/v1/jobs', { task, input });
  expect(submitted.status, JSON.stringify(submitted.body)).toBe(202);
  const done = await request(`/v1/jobs/${submitted.body.id}?wait=30`);
  expect(done.status).toBe(200);
  return done.body;
}

beforeAll(async () => {
  // A folder anywhere on this machine, with one .ts file and no package.json.
  // The worker runs as uid 1000: the folder must be readable to it.
  copyFileSync(join(root, 'tests/containers/tasks/word-count.ts'), join(tasksDir, 'word-count.ts'));
  chmodSync(tasksDir, 0o755);
  chmodSync(join(tasksDir, 'word-count.ts'), 0o644);

  const [apiPort, redisPort] = [await freePort(), await freePort()];
  api = `http://127.0.0.1:${apiPort}`;
  stackEnv = {
    ...process.env,
    COMPOSE_PROJECT_NAME: project,
    API_KEYS: `acme:${apiKey}`,
    API_PORT: String(apiPort),
    // This machine may run a Redis of its own on 6379.
    REDIS_PORT: String(redisPort),
    TASKS_DIR: tasksDir,
    TASKS_FILE: 'word-count.ts',
  };

  // The compose path, as a user starts it: Offload's image built from the root
  // Dockerfile, the task file mounted into the stock worker.
  await timed('compose up --build', () => compose('up', '-d', '--build', 'redis', 'api', 'worker'));
  // The production path: a task project's image FROM Offload's. The worker's image is
  // Offload's: tagging it spares a second build of the same Dockerfile (under podman,
  // compose's builds and `podman build` keep separate caches).
  const workerContainer = (await compose('ps', '-q', 'worker')).trim();
  const offloadImage = (
    await sh([engine, 'inspect', '--format', '{{.Image}}', workerContainer])
  ).trim();
  await sh([engine, 'tag', offloadImage, baseImage]);
  await timed('the task project image', () =>
    sh([
      ...[engine, 'build', '--build-arg', `OFFLOAD_IMAGE=${baseImage}`],
      ...['-t', tasksImage, 'examples/markdown-tasks'],
    ]),
  );
  // Its worker joins the stack's network, as a worker on another machine would reach Redis.
  await timed('the task project worker', () =>
    sh([
      ...[engine, 'run', '-d', '--name', markdownWorker, '--init'],
      ...['--network', `${project}_default`],
      ...['-e', 'NODE_ENV=production', '-e', 'REDIS_URL=redis://:offload@redis:6379'],
      tasksImage,
    ]),
  );
  await timed('the API answers /healthz', () =>
    until(
      'the API answers /healthz',
      () => fetch(`${api}/healthz`).then((r) => r.ok || undefined),
      60_000,
    ),
  );
});

afterAll(async () => {
  await sh([engine, 'rm', '-f', markdownWorker]).catch(() => {});
  // --rmi local removes the images compose built under this project's name; their
  // layers stay under the tags above, so the next run builds from cache.
  await timed('compose down', () =>
    compose('down', '-v', '--rmi', 'local').catch((err) => console.error(String(err))),
  );
  rmSync(tasksDir, { recursive: true, force: true });
});

describe('your own tasks in containers', () => {
  it('publishes the task project’s tasks and the mounted file’s, each served by a live worker', async () => {
    onTestFailed(async () => console.error(await stackLogs()));
    const served = await until(
      'both workers publish their tasks',
      async () => {
        const { body } = await request('/v1/tasks');
        const tasks = body.tasks as { name: string; queue: string; workers: number }[];
        const wanted = ['markdown.render', 'markdown.render-many', 'text.word-count'];
        const live = tasks.filter((t) => wanted.includes(t.name) && t.workers > 0);
        return live.length === wanted.length ? live : undefined;
      },
      60_000,
    );
    expect(Object.fromEntries(served.map((t) => [t.name, t.queue]))).toEqual({
      'markdown.render': 'markdown',
      'markdown.render-many': 'markdown',
      'text.word-count': 'text',
    });
  });

  it('runs markdown.render on the worker image built FROM Offload’s, with the project’s own marked', async () => {
    onTestFailed(async () => console.error(await stackLogs()));
    const job = await runJob('markdown.render', {
      markdown: '# Hello\n\nRendered by *Offload*.\n\n## Hello',
    });
    expect(job.state, JSON.stringify(job.error)).toBe('completed');
    expect(job.result).toEqual({
      html: '<h1 id="hello">Hello</h1>\n<p>Rendered by <em>Offload</em>.</p>\n<h2 id="hello-1">Hello</h2>\n',
      headings: [
        { depth: 1, text: 'Hello', slug: 'hello' },
        { depth: 2, text: 'Hello', slug: 'hello-1' },
      ],
    });
  });

  it('runs a single .ts file mounted into the stock worker, with no install beside it', async () => {
    onTestFailed(async () => console.error(await stackLogs()));
    const job = await runJob('text.word-count', { text: 'The cat and the hat, and the bat.' });
    expect(job.state, JSON.stringify(job.error)).toBe('completed');
    expect(job.result).toEqual({ words: 8, top: 'the' });
  });

  it('validates a mounted task’s input at the API, from the schema its worker published', async () => {
    const submitted = await request('/v1/jobs', { task: 'text.word-count', input: { text: 42 } });
    expect(submitted.status).toBe(422);
    expect(submitted.body).toMatchObject({
      code: 'validation_failed',
      errors: [expect.objectContaining({ path: 'input.text' })],
    });
  });

  it('ships TypeScript only where task modules import it, from outside node_modules, and no example’s packages', async () => {
    const listing = await sh([
      engine,
      'run',
      '--rm',
      baseImage,
      'sh',
      '-c',
      "find /app -path /app/node_modules -prune -o -name '*.ts' -print | LC_ALL=C sort; " +
        'realpath /app/node_modules/@offload/tasks /app/node_modules/@offload/contract; ' +
        "test -e /app/node_modules/marked && echo 'marked: installed' || echo 'marked: absent'",
    ]);
    const sources = (dir: string): string[] =>
      readdirSync(join(root, dir), { recursive: true, withFileTypes: true })
        .filter((entry) => entry.isFile() && entry.name.endsWith('.ts'))
        .map((entry) => `/app/${relative(root, join(entry.parentPath, entry.name))}`);
    expect(listing.trim().split('\n')).toEqual([
      ...[...sources('packages/contract/src'), ...sources('packages/tasks/src')].sort(),
      '/app/packages/tasks',
      '/app/packages/contract',
      // The task project's image brings its own: the first test's jobs ran with it.
      'marked: absent',
    ]);
  });
});

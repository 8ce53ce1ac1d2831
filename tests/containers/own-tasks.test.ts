import { chmodSync, copyFileSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it, onTestFailed } from 'vitest';
import { freePort } from '../../scripts/redis-server.ts';
import { apiRequest, composeOf, engine, root, sh, timed, until } from './engine.ts';

/**
 * Your own tasks in containers, for real: Offload's image built from the root
 * Dockerfile (once for every file, global-image.ts), a task project's image
 * built FROM it (examples/markdown-tasks), and the compose stack with a single
 * task file mounted into the stock worker (docker-compose.tasks.yml). Jobs of
 * both go through the API over HTTP. Engine: see engine.ts.
 */

// Letters and digits only: Compose v1 drops other characters from project names,
// v2 keeps them, and the network name below must be the same under both.
const project = `offloadcontainers${process.pid}`;
const baseImage = inject('offloadImage');
const tasksImage = `offload-markdown-tasks:containers-test-${process.pid}`;
const markdownWorker = `${project}-markdown-worker`;
const apiKey = 'containers-test-key-0123456789';
const tasksDir = mkdtempSync(join(tmpdir(), 'offload-tasks-'));

let stackEnv: NodeJS.ProcessEnv = {};
let api = '';

const compose = composeOf(['docker-compose.yml', 'docker-compose.tasks.yml'], () => stackEnv);

async function stackLogs(): Promise<string> {
  const logs = await Promise.all([
    compose('logs', '--no-color', '--tail', '60').catch(String),
    sh([engine, 'logs', '--tail', '60', markdownWorker]).catch(String),
  ]);
  return logs.join('\n');
}

const request = (path: string, body?: unknown) => apiRequest(api, apiKey, path, body);

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

  const apiPort = await freePort();
  api = `http://127.0.0.1:${apiPort}`;
  stackEnv = {
    ...process.env,
    COMPOSE_PROJECT_NAME: project,
    OFFLOAD_IMAGE: baseImage,
    API_KEYS: `acme:${apiKey}`,
    API_PORT: String(apiPort),
    TASKS_DIR: tasksDir,
    TASKS_FILE: 'word-count.ts',
  };

  // The compose path: Offload's image (already built), the task file mounted into
  // the stock worker.
  await timed('compose up, a task file mounted', () =>
    compose('up', '-d', 'redis', 'api', 'worker'),
  );
  // The production path: a task project's image FROM Offload's.
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
  await timed('compose down -v', () =>
    compose('down', '-v').catch((err) => console.error(String(err))),
  );
  // Its layers stay in the engine's build cache for the next run.
  await sh([engine, 'rmi', '-f', tasksImage]).catch((err) => console.error(String(err)));
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

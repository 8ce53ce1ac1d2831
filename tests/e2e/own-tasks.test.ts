import { join } from 'node:path';
import type { TaskInfo } from '@offload/contract';
import { createRedis, offloadKeys } from '@offload/queue';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { REFRESH_MS } from '../../apps/api/src/task-catalog.ts';
import { startApi, type TestApi } from '../support/api-server.ts';
import { client } from '../support/http.ts';
import {
  type RunningProcess,
  refusedWorker,
  startWorkerProcess,
  testPrefix,
} from '../support/processes.ts';
import { redisEnv, testRedis } from '../support/redis-url.ts';
import { TaskFolder } from '../support/task-files.ts';

/**
 * A team's own tasks (DESIGN.md §2): task files in a folder outside this
 * repository, no install next to them, loaded by real worker processes; an
 * API started with no task module at all learns them from the catalog.
 */
const target = testRedis();
let prefix: string;
let api: TestApi;
let http: ReturnType<typeof client>;
const workers: RunningProcess[] = [];
const files = new TaskFolder();
const taskFile = (name: string, source: string) => files.write(name, source);
const reverseTask = files.reverse();
const shoutVersion = (version: 1 | 2) => files.shout(version);

async function worker(tasks: string, concurrency = 1): Promise<RunningProcess> {
  const started = await startWorkerProcess({ redis: target, prefix, tasks, concurrency });
  workers.push(started);
  return started;
}

async function tasks(): Promise<TaskInfo[]> {
  const res = await http.call('GET', '/v1/tasks');
  return (res.body as unknown as { tasks: TaskInfo[] }).tasks;
}

/** Polls /v1/tasks until `predicate` holds; returns how long it took, ms. */
async function catalogUntil(predicate: (list: TaskInfo[]) => boolean, timeoutMs = 5000) {
  const started = Date.now();
  for (;;) {
    const list = await tasks();
    if (predicate(list)) return Date.now() - started;
    if (Date.now() - started > timeoutMs) {
      throw new Error(`catalog never matched; last: ${JSON.stringify(list.map((t) => t.name))}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeEach(async () => {
  prefix = testPrefix();
  // No registry: the API starts with no task module and an empty catalog.
  api = await startApi({ redis: target, prefix });
  http = client(api.url);
});
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.stop('SIGKILL')));
  await api.close();
});
afterAll(() => files.remove());

describe('your own tasks', () => {
  it('runs a task file from a folder outside the repository, with no install next to it', async () => {
    expect(await tasks()).toEqual([]);
    const unknown = await http.call('POST', '/v1/jobs', { task: 'text.reverse', input: {} });
    expect(unknown.status).toBe(422);
    expect(unknown.body).toMatchObject({ code: 'unknown_task' });

    await worker(reverseTask);
    const job = await http.submit('text.reverse', { text: 'offload' });
    expect(await http.get(job.id, 20)).toMatchObject({
      state: 'completed',
      result: { reversed: 'daolffo' },
    });
    const [info] = await tasks();
    expect(info).toMatchObject({
      name: 'text.reverse',
      queue: 'default',
      description: 'Reverses a text.',
      workers: 1,
      defaults: { timeoutMs: 10_000, attempts: 1 },
      input: { type: 'object', properties: { text: { type: 'string', maxLength: 1000 } } },
    });
    expect(info?.fingerprint).toMatch(/^[0-9a-f]{16}$/);
  });

  it('validates at the API against the published schema, naming each field', async () => {
    await worker(reverseTask);
    const res = await http.call('POST', '/v1/jobs', {
      task: 'text.reverse',
      input: { text: 'x'.repeat(1001), colour: 'red' },
    });
    expect(res.status).toBe(422);
    expect(res.body).toMatchObject({ code: 'validation_failed' });
    const paths = (res.body.errors as { path: string }[]).map((e) => e.path).sort();
    expect(paths).toEqual(['input.colour', 'input.text']);
  });

  it('learns the tasks of a worker started later within 2 s, and shows the built-ins beside them', async () => {
    await worker(reverseTask);
    await catalogUntil((list) => list.some((t) => t.name === 'text.reverse'));
    await worker(`@offload/tasks/builtin,${shoutVersion(1)}`);
    const learnedInMs = await catalogUntil((list) => list.some((t) => t.name === 'text.shout'));
    console.log(`a later worker's task accepted by the running API after ${learnedInMs} ms`);
    expect(learnedInMs).toBeLessThan(2000);
    const names = (await tasks()).map((t) => t.name);
    expect(names).toEqual(expect.arrayContaining(['primes.count', 'text.reverse', 'text.shout']));
    const shout = await http.submit('text.shout', { text: 'hey' });
    expect((await http.get(shout.id, 20)).result).toEqual({ shouted: 'HEY', version: 1 });
  });

  it('keeps accepting a task whose workers are gone: workers drops to 0 and the job waits', async () => {
    const first = await worker(reverseTask);
    await catalogUntil((list) => list[0]?.workers === 1);
    // SIGTERM removes the heartbeat at once; a killed worker's expires with its TTL.
    await first.stop('SIGTERM');
    await catalogUntil((list) => list[0]?.workers === 0, REFRESH_MS * 3);
    const job = await http.submit('text.reverse', { text: 'later' });
    expect((await http.get(job.id, 1)).state).toBe('queued');
    await worker(reverseTask);
    expect((await http.get(job.id, 20)).result).toEqual({ reversed: 'retal' });
  });

  it('serves its OpenAPI document from the catalog, one request variant per task', async () => {
    await worker(reverseTask);
    await catalogUntil((list) => list.length === 1);
    const doc = (await http.call('GET', '/openapi.json')).body as unknown as {
      components: { schemas: Record<string, { oneOf?: unknown[]; properties?: object }> };
    };
    expect(doc.components.schemas.JobRequest?.oneOf).toEqual([
      { $ref: '#/components/schemas/JobRequest_text_reverse' },
    ]);
    expect(doc.components.schemas.JobRequest_text_reverse?.properties).toMatchObject({
      task: { const: 'text.reverse' },
      input: { properties: { text: { type: 'string' } } },
    });
  });

  it('ignores a malformed catalog entry with a warning, never a 5xx', async () => {
    const redis = createRedis(target, 'worker');
    const keys = offloadKeys(prefix);
    await redis.hset(keys.catalog, 'broken 0000000000000000', '{"name": 42');
    await redis.hset(keys.catalog, 'text.fake 0123456789abcdef', JSON.stringify({ name: 'x' }));
    await redis.incr(keys.catalogVersion);
    redis.disconnect();
    await worker(reverseTask);
    await catalogUntil((list) => list.length === 1);
    expect((await tasks()).map((t) => t.name)).toEqual(['text.reverse']);
    const job = await http.submit('text.reverse', { text: 'ok' });
    expect((await http.get(job.id, 20)).state).toBe('completed');
  });
});

describe('a rolling deploy: two versions of one task live at once', () => {
  it('validates with the newest version, and only a worker of that version runs its jobs', async () => {
    await worker(shoutVersion(1));
    await catalogUntil((list) => list[0]?.versions.length === 1);
    // Published one clock tick later at least: the newest version.
    await new Promise((r) => setTimeout(r, 5));
    await worker(shoutVersion(2));
    await catalogUntil((list) => list[0]?.versions.length === 2 && list[0].workers === 2);
    const [info] = await tasks();
    expect(info?.versions.map((v) => v.workers)).toEqual([1, 1]);
    expect(info?.fingerprint).toBe(info?.versions[0]?.fingerprint);
    expect(info?.description).toMatch(/version 2/);

    // Both workers serve the queue; each job was validated against version 2 and must run there.
    const jobs = await Promise.all(
      Array.from({ length: 6 }, (_, i) => http.submit('text.shout', { text: `j${i}`, times: 2 })),
    );
    for (const [i, job] of jobs.entries()) {
      const done = await http.get(job.id, 20);
      expect(done).toMatchObject({
        state: 'completed',
        result: { shouted: `J${i}J${i}`, version: 2 },
        attempts: { made: 1 },
      });
    }
  });

  it('runs jobs of a version no live worker runs with the version that is left, rechecking the input', async () => {
    await worker(shoutVersion(1));
    await catalogUntil((list) => list[0]?.workers === 1);
    await new Promise((r) => setTimeout(r, 5));
    const v2 = await worker(shoutVersion(2));
    await catalogUntil((list) => list[0]?.workers === 2);
    v2.child.kill('SIGSTOP');
    // v2 is frozen: jobs validated against it wait for it, handed back by v1 …
    const fits = await http.submit('text.shout', { text: 'a' });
    const doesNot = await http.submit('text.shout', { text: 'b', times: 3 });
    expect((await http.get(fits.id, 1.5)).state).not.toBe('completed');
    // … until v2 is gone from the fleet: then v1 runs what fits its own schema.
    v2.child.kill('SIGKILL');
    // Gone once its heartbeat expires (HEARTBEAT_TTL_MS, 15 s).
    expect(await http.get(fits.id, 25)).toMatchObject({
      state: 'completed',
      result: { shouted: 'A', version: 1 },
    });
    expect(await http.get(doesNot.id, 10)).toMatchObject({
      state: 'failed',
      error: { code: 'invalid_input' },
    });
    expect(((await http.get(doesNot.id)).error as { message: string }).message).toMatch(
      /input: Unrecognized key: "times"|times/,
    );
  }, 60_000);
});

describe('a task module that cannot serve', () => {
  const cases: [string, () => string, RegExp][] = [
    ['does not exist', () => join(files.path, 'missing.ts'), /no such file or folder/],
    [
      'fails to load',
      () => taskFile('syntax.ts', 'export const = ;\n'),
      /syntax\.ts": failed to load/,
    ],
    [
      'defines no task',
      () => taskFile('empty.ts', 'export const answer = 42;\n'),
      /empty\.ts": defines no task/,
    ],
    [
      'exports a task-like object not made with defineTask',
      () =>
        taskFile(
          'plain.ts',
          "export const fake = { name: 'x.fake', input: {}, run: () => 1 };\nexport { reverse } from './reverse.ts';\n",
        ),
      /export "fake" looks like a task but was not made with defineTask/,
    ],
    [
      'defines a name another module defines',
      () =>
        `${reverseTask},${taskFile('clash.ts', "export { reverse as again } from './reverse.ts';\nimport { defineTask } from '@offload/tasks';\nimport { z } from 'zod';\nexport const other = defineTask({ name: 'text.reverse', description: '', queue: 'default', input: z.object({}), output: z.object({}), defaults: { timeoutMs: 1000, attempts: 1, backoff: { type: 'fixed', delay: 0 } }, run: () => ({}) });\n")}`,
      /task "text\.reverse" is defined (also in|twice)/,
    ],
  ];
  it.each(cases)(
    'stops the worker at start with one line when the module %s',
    async (_, entry, line) => {
      const fatal = await refusedWorker({
        ...redisEnv(target),
        OFFLOAD_PREFIX: prefix,
        OFFLOAD_TASKS: entry(),
      });
      expect(fatal).toHaveLength(1);
      expect(fatal[0]).toMatch(line);
    },
  );
});

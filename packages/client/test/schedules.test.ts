import { spawn } from 'node:child_process';
import { registry } from '@offload/tasks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type TestApi } from '../../../tests/support/api-server.ts';
import { ROOT, testPrefix } from '../../../tests/support/processes.ts';
import { testRedis } from '../../../tests/support/redis-url.ts';
import { OffloadClient, ProblemError } from '../src/index.ts';

// The API fires the schedules; no worker runs, so their jobs stay queued, which is enough here.
const KEY = 'schedules-client-key-0123456789';
const BIN = `${ROOT}node_modules/.bin/offload`;
let api: TestApi;
let offload: OffloadClient;

beforeAll(async () => {
  api = await startApi({
    redis: testRedis(),
    prefix: testPrefix(),
    registry,
    apiKeys: [{ tenant: 'acme', key: KEY }],
    fireSchedules: true,
  });
  offload = new OffloadClient({ baseUrl: api.url, apiKey: KEY });
});
afterAll(() => api?.close());

/** Runs `offload ...args` with stdout a pipe: JSON lines. */
function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(BIN, args, {
      cwd: ROOT,
      env: { ...process.env, OFFLOAD_URL: api.url, OFFLOAD_API_KEY: KEY },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}
const lines = (text: string) =>
  text
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line));

describe('client.schedules', () => {
  it('creates, lists, reads with its latest jobs, and deletes a schedule', async () => {
    const nightly = await offload.schedules.create({
      task: 'primes.count',
      input: { below: 1000 },
      cron: '0 3 * * *',
      timezone: 'Europe/Berlin',
    });
    expect(nightly).toMatchObject({ cron: '0 3 * * *', timezone: 'Europe/Berlin' });
    const every = await offload.schedules.create({
      task: 'cpu.burn',
      input: { ms: 1 },
      everyMs: 1000,
    });
    expect((await offload.schedules.list()).map((s) => s.id)).toEqual([nightly.id, every.id]);
    await new Promise((resolve) => setTimeout(resolve, 2500));
    const fired = await offload.schedules.get(every);
    expect(fired.recentJobs?.length).toBeGreaterThanOrEqual(2);
    // Its jobs are the tenant's jobs, of the schedule's task.
    const job = await offload.get(fired.recentJobs?.[0] as string);
    expect(job.task).toBe('cpu.burn');

    await offload.schedules.delete(every);
    await offload.schedules.delete(nightly.id);
    expect(await offload.schedules.list()).toEqual([]);
    const gone = await offload.schedules.get(every.id).catch((err: unknown) => err);
    expect(gone).toBeInstanceOf(ProblemError);
    expect((gone as ProblemError).problem.status).toBe(404);
  });

  it('throws ProblemError 422 with paths for a bad cron and a bad input, and stores nothing', async () => {
    const refused = await offload.schedules
      .create({ task: 'primes.count', input: { below: -5 }, cron: '0 25 * * *' })
      .catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(ProblemError);
    const { problem } = refused as ProblemError;
    expect(problem.status).toBe(422);
    expect(problem.errors?.map((e) => e.path)).toEqual(['cron', 'input.below']);
    expect(await offload.schedules.list()).toEqual([]);
  });
});

describe('offload schedule', () => {
  it('creates, lists, gets and deletes schedules from the command line', async () => {
    const created = await cli([
      'schedule',
      'create',
      'primes.count',
      '{"below":1000}',
      '--cron',
      '30 2 * * *',
      '--timezone',
      'Europe/Berlin',
      '--priority',
      '3',
    ]);
    expect(created.code, created.stderr).toBe(0);
    const [schedule] = lines(created.stdout);
    expect(schedule).toMatchObject({
      task: 'primes.count',
      cron: '30 2 * * *',
      timezone: 'Europe/Berlin',
      options: { priority: 3 },
    });
    const every = lines(
      (await cli(['schedule', 'create', 'cpu.burn', '{"ms":1}', '--every-ms', '60000'])).stdout,
    )[0];
    expect(every).toMatchObject({ everyMs: 60_000, timezone: 'UTC' });

    const listed = lines((await cli(['schedule', 'list'])).stdout);
    expect(listed.map((s) => s.id)).toEqual([schedule.id, every.id]);
    const got = lines((await cli(['schedule', 'get', schedule.id])).stdout)[0];
    expect(got).toMatchObject({ id: schedule.id, recentJobs: [] });

    const deleted = await cli(['schedule', 'delete', schedule.id]);
    expect(lines(deleted.stdout)).toEqual([{ deleted: schedule.id }]);
    await cli(['schedule', 'delete', every.id]);
    // A schedule already gone: the problem on stderr, exit 1.
    const again = await cli(['schedule', 'delete', schedule.id]);
    expect(again.code).toBe(1);
    expect(JSON.parse(again.stderr)).toMatchObject({ status: 404, code: 'not_found' });
  });

  it('refuses bad usage with exit 2, and an invalid schedule with the 422 problem and exit 1', async () => {
    const both = await cli(['schedule', 'create', 'cpu.burn', '{"ms":1}']);
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('either --cron or --every-ms');
    const unknown = await cli(['schedule', 'pause', 'x']);
    expect(unknown.code).toBe(2);
    const tooOften = await cli(['schedule', 'create', 'cpu.burn', '{"ms":1}', '--every-ms', '10']);
    expect(tooOften.code).toBe(1);
    expect(JSON.parse(tooOften.stderr)).toMatchObject({
      status: 422,
      errors: [{ path: 'everyMs', message: 'must be at least 1000 ms' }],
    });
    expect((await cli(['schedule', 'list'])).stdout).toBe('');
  });
});

// Compile-time checks, run by `npm run typecheck`: a schedule's input is typed by its task.
async function typeChecks(client: OffloadClient) {
  // @ts-expect-error primes.count takes { below: number }
  await client.schedules.create({ task: 'primes.count', input: { below: '1' }, everyMs: 1000 });
  // @ts-expect-error a schedule needs cron or everyMs
  await client.schedules.create({ task: 'primes.count', input: { below: 1 } });
  const schedule = await client.schedules.create({
    task: 'cpu.burn',
    input: { ms: 5 },
    cron: '*/5 * * * *',
  });
  const next: string = schedule.nextRunAt;
  return next;
}
void typeChecks;

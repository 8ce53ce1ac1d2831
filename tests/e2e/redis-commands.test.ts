import { offloadKeys } from '@offload/queue';
import { afterEach, expect, it } from 'vitest';
import { startApi, type TestApi } from '../support/api-server.ts';
import { client } from '../support/http.ts';
import { type KillableRedis, startKillableRedis } from '../support/private-redis.ts';
import { type RunningProcess, startWorkerProcess, testPrefix } from '../support/processes.ts';
import { registry } from '../support/test-tasks.ts';

/**
 * What one job costs Redis, submit to completion, counted by the server itself
 * (INFO commandstats) on a redis-server of the test's own: every command of
 * the API, the worker and its idle loops, divided by the jobs.
 */
const JOBS = 300;
/** Submits in flight at once. */
const IN_FLIGHT = 10;

let redis: KillableRedis | undefined;
let api: TestApi | undefined;
let worker: RunningProcess | undefined;
afterEach(async () => {
  await worker?.stop('SIGKILL');
  await api?.close();
  await redis?.close();
});

function commandStats(info: string): Map<string, number> {
  const calls = new Map<string, number>();
  for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    calls.set(match[1] as string, Number(match[2]));
  }
  return calls;
}

it(`a job costs a bounded number of Redis commands (${JOBS} jobs, 2 executors)`, async () => {
  redis = await startKillableRedis({ appendOnly: false });
  const prefix = testPrefix();
  api = await startApi({ redis: { url: redis.url }, prefix, registry });
  worker = await startWorkerProcess({
    redis: { url: redis.url },
    prefix,
    testTasks: true,
    concurrency: 2,
  });
  const http = client(api.url);
  await http.get((await http.submit('test.echo', { value: 'warm-up' })).id, 30);

  await redis.admin.config('RESETSTAT');
  const ids: string[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < JOBS) {
        next++;
        ids.push((await http.submit('test.echo', { value: 'x' })).id);
      }
    }),
  );
  const completed = offloadKeys(prefix).bullKey('default', 'completed');
  while ((await redis.admin.zcard(completed)) < JOBS + 1) {
    await new Promise((r) => setTimeout(r, 200));
  }
  const calls = commandStats((await redis.admin.info('commandstats')) as string);
  const total = [...calls.values()].reduce((sum, n) => sum + n, 0);
  const perJob = total / JOBS;
  const top = [...calls]
    .sort((x, y) => y[1] - x[1])
    .slice(0, 12)
    .map(([name, n]) => `${name} ${(n / JOBS).toFixed(1)}`)
    .join(', ');
  console.log(`Redis commands per job: ${perJob.toFixed(1)} (${top})`);
  expect(ids).toHaveLength(JOBS);
  // 66.4 with fair share, quota and ledger (README, Fair share); 78.6 before the ledger's and the
  // reads' leaner scripts. The bound catches a per-job cost that grows.
  expect(perJob).toBeLessThan(75);
}, 120_000);

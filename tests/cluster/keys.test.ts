import { createRedis, offloadKeys, type RedisClient } from '@offload/queue';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type TestApi } from '../support/api-server.ts';
import { client } from '../support/http.ts';
import { type RunningProcess, startWorkerProcess, testPrefix } from '../support/processes.ts';
import { testRedis } from '../support/redis-url.ts';
import { TaskFolder } from '../support/task-files.ts';

/**
 * On a real Redis Cluster (the `cluster` test project: 3 primaries, 3
 * replicas), every key Offload keeps sits in the slot of the queue or tenant
 * it belongs to, so three queues spread over three shards. 10,000 jobs run on
 * three queues through the API and a real worker; then each primary is asked
 * what it holds.
 */
const target = testRedis();
const JOBS = 10_000;
const BATCH = 1000;
let prefix: string;
let api: TestApi;
let redis: RedisClient;
let worker: RunningProcess;
const files = new TaskFolder();
const queues: string[] = [];

/** Each primary's address and the keys under `match` it holds. */
async function keysPerPrimary(match: string): Promise<Map<string, string[]>> {
  if (!('nodes' in redis)) throw new Error('the cluster project runs on a cluster');
  const found = new Map<string, string[]>();
  for (const node of redis.nodes('master')) {
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await node.scan(cursor, 'MATCH', match, 'COUNT', 1000);
      cursor = next;
      keys.push(...batch);
    } while (cursor !== '0');
    found.set(`${node.options.host}:${node.options.port}`, keys);
  }
  return found;
}

/** The primary serving a key's slot, as the cluster itself says. */
async function primaryOf(key: string): Promise<string> {
  if (!('nodes' in redis)) throw new Error('the cluster project runs on a cluster');
  const slot = Number(await redis.cluster('KEYSLOT', key));
  const range = (await redis.cluster('SLOTS')).find(([from, to]) => slot >= from && slot <= to);
  const [host, port] = range?.[2] ?? [];
  if (!host) throw new Error(`no primary serves slot ${slot}`);
  return `${host}:${port}`;
}

beforeAll(async () => {
  prefix = testPrefix();
  redis = createRedis(target, 'worker');
  // Three queue names whose hash tags fall on three different primaries: a queue's
  // shard is fixed by its name (and can be moved with redis-cli --cluster reshard).
  const keys = offloadKeys(prefix);
  const taken = new Set<string>();
  for (let i = 0; queues.length < 3 && i < 200; i++) {
    const name = `q${i}`;
    const primary = await primaryOf(keys.bullKey(name, 'wait'));
    if (taken.has(primary)) continue;
    taken.add(primary);
    queues.push(name);
  }
  expect(queues).toHaveLength(3);
  const tasks = files.write(
    'echo.ts',
    `import { defineTask } from '@offload/tasks';
import { z } from 'zod';
${queues
  .map(
    (queue) => `export const ${queue} = defineTask({
  name: 'echo.${queue}', description: 'Returns its input.', queue: '${queue}',
  input: z.object({ n: z.number() }), output: z.object({ n: z.number() }),
  defaults: { timeoutMs: 10_000, attempts: 1, backoff: { type: 'fixed', delay: 1000 } },
  run: ({ n }) => ({ n }),
});`,
  )
  .join('\n')}
`,
  );
  worker = await startWorkerProcess({ redis: target, prefix, tasks, concurrency: 2 });
  api = await startApi({ redis: target, prefix });
}, 120_000);

afterAll(async () => {
  await worker?.stop('SIGKILL');
  await api?.close();
  redis?.disconnect();
  files.remove();
});

describe('keys on a Redis Cluster', () => {
  it('runs 10,000 jobs on three queues, each queue on its own shard, no key outside its slot', async () => {
    const http = client(api.url);
    // The API learns the tasks from the catalog the worker published.
    await expect
      .poll(async () => (await http.call('GET', '/v1/tasks')).body.tasks, { timeout: 10_000 })
      .toHaveLength(3);
    const started = performance.now();
    const ids: string[] = [];
    for (let b = 0; b < JOBS / BATCH; b++) {
      const jobs = Array.from({ length: BATCH }, (_, i) => ({
        task: `echo.${queues[(b * BATCH + i) % 3]}`,
        input: { n: b * BATCH + i },
      }));
      const res = await http.call('POST', '/v1/jobs/batch', { jobs });
      expect(res.status, JSON.stringify(res.body)).toBe(202);
      ids.push(...(res.body.jobs as unknown as { id: string }[]).map((job) => job.id));
    }
    const keys = offloadKeys(prefix);
    const completed = () =>
      Promise.all(queues.map((queue) => redis.zcard(keys.bullKey(queue, 'completed'))));
    await expect
      .poll(async () => (await completed()).reduce((a, b) => a + b, 0), {
        timeout: 100_000,
        interval: 250,
      })
      .toBe(JOBS);
    const seconds = (performance.now() - started) / 1000;

    // Every key of a queue on the primary serving its tag; every key of the tenant on its own.
    const held = await keysPerPrimary(`${prefix}:*`);
    for (const queue of queues) {
      const home = await primaryOf(keys.bullKey(queue, 'wait'));
      for (const [primary, list] of held) {
        const ofQueue = list.filter((key) => key.startsWith(keys.queuePrefix(queue)));
        if (primary === home) expect(ofQueue.length).toBeGreaterThan(JOBS / 3);
        else expect(ofQueue).toEqual([]);
      }
    }
    const tenantHome = await primaryOf(keys.tenantJobs('dev'));
    for (const [primary, list] of held) {
      const ofTenant = list.filter((key) => key.includes('{t:dev}'));
      if (primary === tenantHome) expect(ofTenant.length).toBeGreaterThan(0);
      else expect(ofTenant).toEqual([]);
    }
    // A sample of results read back through the API, across the three shards.
    for (const id of [ids[0], ids[1], ids[2], ids[JOBS - 1]] as string[]) {
      const view = await http.get(id);
      expect(view.state).toBe('completed');
    }
    const counts = [...held].map(([primary, list]) => `${primary}: ${list.length}`).join(', ');
    console.log(
      `cluster: ${JOBS} jobs on queues ${queues.join(', ')} ran in ${seconds.toFixed(1)} s; keys per primary: ${counts}`,
    );
  });
});

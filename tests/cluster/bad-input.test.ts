import { offloadKeys, type RedisTarget } from '@offload/queue';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../scripts/redis-server.ts';
import { startApi, type TestApi } from '../support/api-server.ts';
import { client } from '../support/http.ts';
import {
  type RunningProcess,
  startNodeProcess,
  startWorkerProcess,
  testPrefix,
} from '../support/processes.ts';
import { type LocalCluster, startLocalCluster } from '../support/redis-cluster.ts';
import { redisEnv, testRedis } from '../support/redis-url.ts';
import { registry } from '../support/test-tasks.ts';
import { lostJobs, submitStream } from './submit-stream.ts';

/**
 * A cluster that is wrong, or changing under the API and the workers: a node
 * list where nothing answers, a dead seed node, a slot no node serves, and a
 * queue's slot resharded (MOVED and ASK answers) under a stream of submits.
 * Clear errors and 503s, never a 500, a hang, a crash loop or a lost job.
 */
const shared = testRedis();
const processes: RunningProcess[] = [];
const apis: TestApi[] = [];
/** This file's own cluster (3 primaries, no replicas) for what would disturb the shared one. */
let own: LocalCluster;

beforeAll(async () => {
  own = await startLocalCluster({ primaries: 3, replicas: 0 });
}, 60_000);
afterEach(async () => {
  await Promise.all(processes.splice(0).map((p) => p.stop('SIGKILL')));
  await Promise.all(apis.splice(0).map((api) => api.close()));
});
afterAll(() => own?.stop());

async function api(target: RedisTarget, prefix = testPrefix()): Promise<TestApi> {
  const started = await startApi({ redis: target, prefix, registry });
  apis.push(started);
  return started;
}

describe('a cluster that is wrong or changing', () => {
  it('a node list where nothing answers: the API answers 503 at once; the worker says so and waits, without exiting', async () => {
    const nowhere: RedisTarget = {
      clusterNodes: [
        { host: '127.0.0.1', port: await freePort() },
        { host: '127.0.0.1', port: await freePort() },
      ],
    };
    const prefix = testPrefix();
    const jobs = await startApi({ redis: nowhere, prefix });
    apis.push(jobs);
    const http = client(jobs.url);
    const started = Date.now();
    const submit = await http.call('POST', '/v1/jobs', {
      task: 'primes.count',
      input: { below: 10 },
    });
    expect(submit.status).toBe(503);
    expect(submit.body.code).toBe('redis_unavailable');
    const ready = await http.call('GET', '/readyz');
    expect(ready.status).toBe(503);
    expect(Date.now() - started).toBeLessThan(10_000);

    const worker = startNodeProcess('apps/worker/src/index.ts', {
      ...redisEnv(nowhere),
      OFFLOAD_PREFIX: prefix,
      WORKER_CONCURRENCY: '1',
    });
    processes.push(worker);
    const line = await worker.waitForLine(/Redis does not answer yet/, 30_000);
    expect(line).toContain(`cluster 127.0.0.1:${nowhere.clusterNodes[0]?.port}`);
    // Still running, not restarting in a loop: no exit, no second start.
    await new Promise((r) => setTimeout(r, 2000));
    expect(worker.child.exitCode).toBeNull();
    expect(worker.output().match(/Redis does not answer yet/g)).toHaveLength(1);
  });

  it('a seed list whose first node is down: the API and a worker reach the cluster through the others', async () => {
    if ('url' in shared) throw new Error('the cluster project runs on a cluster');
    const seeds: RedisTarget = {
      clusterNodes: [{ host: '127.0.0.1', port: await freePort() }, ...shared.clusterNodes],
    };
    const prefix = testPrefix();
    const jobs = await api(seeds, prefix);
    processes.push(await startWorkerProcess({ redis: seeds, prefix, testTasks: true }));
    const http = client(jobs.url);
    const job = await http.submit('test.echo', { value: 'through the others' });
    const view = await http.until(job.id, (v) => v.state === 'completed');
    expect(view.result).toEqual({ value: 'through the others' });
  });

  it('a slot no node serves: 503 while the cluster is down, and the API serves again alone once it is covered', async () => {
    const prefix = testPrefix();
    const jobs = await api(own.target, prefix);
    const http = client(jobs.url);
    const key = offloadKeys(prefix).bullKey('default', 'wait');
    const slot = Number(
      (await own.cli(own.nodes[0]?.port as number, 'cluster', 'keyslot', key)).trim(),
    );
    const owner = await own.primaryOf(key);
    expect(
      (await http.call('POST', '/v1/jobs', { task: 'test.echo', input: { value: 'a' } })).status,
    ).toBe(202);
    try {
      for (const node of own.nodes) await own.cli(node.port, 'cluster', 'delslots', String(slot));
      // With a slot uncovered the cluster refuses every command (cluster-require-full-coverage).
      await expect
        .poll(
          async () => {
            const res = await http.call('POST', '/v1/jobs', {
              task: 'test.echo',
              input: { value: 'b' },
            });
            return `${res.status} ${res.body.code}`;
          },
          { timeout: 20_000, interval: 100 },
        )
        .toBe('503 redis_unavailable');
    } finally {
      await own.cli(owner, 'cluster', 'addslots', String(slot));
      await own.waitHealthy();
    }
    await expect
      .poll(
        async () =>
          (await http.call('POST', '/v1/jobs', { task: 'test.echo', input: { value: 'c' } }))
            .status,
        { timeout: 20_000, interval: 100 },
      )
      .toBe(202);
  });

  it('REDIS_MIN_REPLICAS_ACK=1 on a shard with no replica: 503 redis_not_replicated naming the job, which stays', async () => {
    const prefix = testPrefix();
    const jobs = await startApi({ redis: own.target, prefix, registry, minReplicasAck: 1 });
    apis.push(jobs);
    const http = client(jobs.url);
    const res = await http.call('POST', '/v1/jobs', { task: 'test.echo', input: { value: 'x' } });
    expect(res.status).toBe(503);
    expect(res.body.code).toBe('redis_not_replicated');
    expect(res.headers.get('retry-after')).toBe('1');
    // The primary took it: the detail names it, and it can be looked up (and runs).
    const id = /\(([^)]+)\)/.exec(String(res.body.detail))?.[1] as string;
    expect((await http.call('GET', `/v1/jobs/${id}`)).body.state).toBe('queued');
  });

  it("resharding the queue's slot under submits and a running worker: no 500, no hang, every accepted job completes", async () => {
    const prefix = testPrefix();
    const jobs = await api(own.target, prefix);
    processes.push(
      await startWorkerProcess({ redis: own.target, prefix, testTasks: true, concurrency: 2 }),
    );
    const key = offloadKeys(prefix).bullKey('default', 'wait');
    const slot = Number(
      (await own.cli(own.nodes[0]?.port as number, 'cluster', 'keyslot', key)).trim(),
    );
    const from = await own.primaryOf(key);
    const to = own.nodes.find((node) => node.port !== from)?.port as number;
    const stream = submitStream(jobs.url, 'test.echo', (n) => ({ value: `v${n}` }));
    // Enough jobs that the slot holds many keys to move.
    await expect
      .poll(() => stream.acceptedAfter(0), { timeout: 30_000, interval: 50 })
      .toBeGreaterThan(150);
    const started = Date.now();
    const moved = await own.moveSlot(slot, to, { batch: 5, pauseMs: 20 });
    const seconds = (Date.now() - started) / 1000;
    // And on after the move, on the new owner.
    const after = Date.now();
    await expect
      .poll(() => stream.acceptedAfter(after), { timeout: 30_000, interval: 50 })
      .toBeGreaterThan(20);
    await stream.stop();
    expect(await own.primaryOf(key)).toBe(to);
    expect(stream.unexpected()).toEqual([]);
    const accepted = stream.accepted();
    const lost = await lostJobs(jobs.url, accepted);
    expect(lost).toEqual([]);
    const refused = stream.answers.filter((a) => a.status === 503).length;
    console.log(
      `resharding: slot ${slot} (${moved} keys) moved from ${from} to ${to} in ${seconds.toFixed(1)} s under submits; ${accepted.length} jobs accepted, ${refused} submits refused with 503, all accepted jobs completed`,
    );
  });
});

import { offloadKeys } from '@offload/queue';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type TestApi } from '../support/api-server.ts';
import { type RunningProcess, startWorkerProcess, testPrefix } from '../support/processes.ts';
import { type LocalCluster, NODE_TIMEOUT_MS, startLocalCluster } from '../support/redis-cluster.ts';
import { registry } from '../support/test-tasks.ts';
import { type Answer, lostJobs, submitStream } from './submit-stream.ts';

/**
 * A primary of a real Redis Cluster SIGKILLed under a stream of submits. Its
 * replica takes over; the API answers 503 meanwhile, never a hang or a 500,
 * and recovers alone; the worker resumes alone. With REDIS_MIN_REPLICAS_ACK=1
 * no job that got a 202 is lost. The cluster is this file's own (3 primaries,
 * 3 replicas); the killed node is started again once its replica has taken
 * over, as a supervisor would, and rejoins as the new primary's replica.
 */
let cluster: LocalCluster;
let worker: RunningProcess;
const prefix = testPrefix();
/** Submitters at once: enough that submits are in flight when the primary dies. */
const SUBMITTERS = 4;

beforeAll(async () => {
  cluster = await startLocalCluster({ primaries: 3, replicas: 1 });
  worker = await startWorkerProcess({
    redis: cluster.target,
    prefix,
    testTasks: true,
    concurrency: 2,
  });
}, 90_000);

afterAll(async () => {
  await worker?.stop('SIGKILL');
  await cluster?.stop();
});

interface FailoverRun {
  answers: Answer[];
  accepted: string[];
  lost: string[];
}

/** One failover: a stream of submits, the queue's primary killed, until the API takes jobs again. */
async function failover(api: TestApi, minReplicasAck: number): Promise<FailoverRun> {
  const stream = submitStream(api.url, 'test.echo', (n) => ({ value: `v${n}` }), SUBMITTERS);
  // Some jobs accepted before the kill.
  await expect
    .poll(() => stream.acceptedAfter(0), { timeout: 20_000, interval: 20 })
    .toBeGreaterThan(20);
  const keys = offloadKeys(prefix);
  const victim = await cluster.primaryOf(keys.bullKey('default', 'wait'));
  const killedAt = Date.now();
  await cluster.kill(victim);
  // Its replica is promoted once the others mark it failed (NODE_TIMEOUT_MS and an election).
  await expect
    .poll(async () => (await cluster.primaryOf(keys.bullKey('default', 'wait'))) !== victim, {
      timeout: 30_000,
      interval: 100,
    })
    .toBe(true);
  const promotedAt = Date.now();
  // Restarted, as a supervisor would: it rejoins as the new primary's replica.
  await cluster.restart(victim);
  await cluster.waitHealthy();
  // The API takes jobs again by itself: a steady run of 202s after the promotion.
  await expect
    .poll(
      () => stream.acceptedAfter(Date.now() - 1000) > 20 && stream.answers.at(-1)?.status === 202,
      { timeout: 30_000, interval: 50 },
    )
    .toBe(true);
  await stream.stop();

  const { answers } = stream;
  const refused = answers.filter((a) => a.status !== 202 && a.at >= killedAt - 1000);
  const refusedSeconds =
    refused.length === 0 ? 0 : ((refused.at(-1) as Answer).at - (refused[0] as Answer).at) / 1000;
  const accepted = stream.accepted();
  // From the kill to the first submit, sent after it, that was accepted.
  const firstAccepted = answers.find((a) => a.at > killedAt && a.status === 202) as Answer;
  const outageSeconds = (firstAccepted.at - killedAt) / 1000;
  // Every accepted job runs to completion on the worker, which found the new primary by itself.
  const lost = await lostJobs(api.url, accepted);
  console.log(
    `failover (REDIS_MIN_REPLICAS_ACK=${minReplicasAck}): primary ${victim} killed; replica promoted after ${((promotedAt - killedAt) / 1000).toFixed(1)} s (cluster-node-timeout ${NODE_TIMEOUT_MS} ms); ` +
      `${accepted.length} jobs accepted; the first submit sent after the kill that got a 202 went out ${outageSeconds.toFixed(1)} s after it; ${refused.length} submits refused over ${refusedSeconds.toFixed(1)} s ` +
      `(${[...new Set(refused.map((a) => a.code ?? a.status))].join(', ')}), ${lost.length} accepted jobs lost`,
  );
  return { answers, accepted, lost };
}

describe('a primary killed under a stream of submits', () => {
  it('with REDIS_MIN_REPLICAS_ACK=1: 503s while the shard fails over, no 500, no hang, no accepted job lost', async () => {
    const api = await startApi({ redis: cluster.target, prefix, registry, minReplicasAck: 1 });
    try {
      for (let run = 0; run < 2; run++) {
        const { answers, lost, accepted } = await failover(api, 1);
        expect(answers.filter((a) => a.status !== 202 && a.status !== 503)).toEqual([]);
        expect(accepted.length).toBeGreaterThan(40);
        expect(lost).toEqual([]);
      }
    } finally {
      await api.close();
    }
  });

  it('without it: the same failover, and the accepted jobs it lost counted', async () => {
    const api = await startApi({ redis: cluster.target, prefix, registry, minReplicasAck: 0 });
    try {
      const { answers, lost } = await failover(api, 0);
      expect(answers.filter((a) => a.status !== 202 && a.status !== 503)).toEqual([]);
      // Asynchronous replication: what the primary acknowledged in its last moments may be
      // gone. Measured, not asserted: the README gives the figures.
      console.log(`without REDIS_MIN_REPLICAS_ACK: ${lost.length} accepted jobs lost`);
    } finally {
      await api.close();
    }
  });
});

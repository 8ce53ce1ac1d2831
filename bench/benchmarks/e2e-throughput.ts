import { JobQueues, offloadKeys } from '@offload/queue';
import { registry } from '@offload/tasks';
import { Queue } from 'bullmq';
import { alternate, type Benchmark, rawWorkerEnv } from '../lib/benchmark.ts';
import { until } from '../lib/http-client.ts';
import { submit } from '../lib/jobs.ts';
import type { Figure } from '../lib/report.ts';
import { median } from '../lib/stats.ts';

const CONCURRENCIES = [1, 10, 50];
/** Jobs per batch. */
const JOBS = 2000;
/** Submissions in flight at once, the same for both ways: a busy client fleet. */
const SUBMITTERS = 32;
/** A tiny job: cpu.burn for 0 ms returns at once, so the figure is the machinery's cost. */
const TINY = { task: 'cpu.burn', input: { ms: 0 } };
const TARGET_RATIO = 0.6;

/** Runs `submitOne` `count` times, at most SUBMITTERS at once. */
async function submitAll(count: number, submitOne: () => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: SUBMITTERS }, async () => {
      while (next < count) {
        next++;
        await submitOne();
      }
    }),
  );
}

interface Batch {
  jobsPerSecond: number;
  /** ms until every submission was acknowledged, and until every job completed. */
  submittedMs: number;
  completedMs: number;
  /** CPU per job of each process taking part (the bench's own process is the client), µs. */
  cpuUsPerJob: Record<string, number>;
}

/** A process whose CPU a batch counts: its name and how to read its CPU time so far, seconds. */
type CpuMeter = [name: string, read: () => number | Promise<number>];

/**
 * Tiny jobs per second from submit to completion. Offload: POST /v1/jobs to
 * the API, run by a worker process with WORKER_CONCURRENCY executors. Raw
 * BullMQ: Queue.add from the bench process, run by a BullMQ Worker (default
 * options) with the same concurrency, in-process on its main thread. Both on
 * the same Redis; completion counted on each queue's completed set. A third
 * way splits Offload's cost: its own producer (JobQueues.submitJob, what the
 * API calls) from the bench process, to the same worker, without HTTP.
 */
export const e2eThroughput: Benchmark = {
  name: 'e2e-throughput',
  async run(ctx) {
    const { stack } = ctx;
    const jobs = ctx.quick ? 500 : JOBS;
    const prefix = stack.prefix('tput');
    const rawPrefix = stack.prefix('tputraw');
    const api = await stack.startApi({ prefix });
    const queue = new Queue('default', { connection: stack.rawConnection(), prefix: rawPrefix });
    const tiny = registry.get(TINY.task);
    if (!tiny) throw new Error(`${TINY.task} is not a built-in task`);
    const producer = JobQueues.create({
      redis: { url: stack.redisUrl },
      prefix,
      queueNames: registry.queues(),
    });
    const submitDirect = () =>
      producer.submitJob({
        task: tiny.name,
        queue: tiny.queue,
        input: TINY.input,
        tenant: 'dev',
        timeoutMs: tiny.defaults.timeoutMs,
        attempts: tiny.defaults.attempts,
        backoff: tiny.defaults.backoff,
      });
    // Each queue's completed set: Offload's queues carry their hash tag (keys.ts), raw BullMQ's do not.
    const offloadCompleted = offloadKeys(prefix).bullKey('default', 'completed');
    const rawCompleted = `${rawPrefix}:default:completed`;
    const completed = (key: string) => stack.redis.zcard(key);

    const benchCpu = () => {
      const { user, system } = process.cpuUsage();
      return (user + system) / 1e6;
    };
    const batch = async (
      key: string,
      submitOne: () => Promise<unknown>,
      meters: CpuMeter[],
    ): Promise<Batch> => {
      const all: CpuMeter[] = [
        ...meters,
        ['redis', () => stack.redisCpuSeconds()],
        ['client', benchCpu],
      ];
      const readAll = () => Promise.all(all.map(([, read]) => read()));
      const before = await completed(key);
      const cpuBefore = await readAll();
      const started = performance.now();
      await submitAll(jobs, submitOne);
      const submittedMs = performance.now() - started;
      await until(
        `${jobs} completed jobs in ${key}`,
        async () => (await completed(key)) - before >= jobs,
        120_000,
        5,
      );
      const completedMs = performance.now() - started;
      const cpuAfter = await readAll();
      const cpuUsPerJob = Object.fromEntries(
        all.map(([name], i) => [
          name,
          Math.round((((cpuAfter[i] as number) - (cpuBefore[i] as number)) * 1e6) / jobs),
        ]),
      );
      return { jobsPerSecond: jobs / (completedMs / 1000), submittedMs, completedMs, cpuUsPerJob };
    };
    const viaOffload = (meters: CpuMeter[]) =>
      batch(offloadCompleted, () => submit(api.http, TINY.task, TINY.input), meters);
    const viaProducer = (meters: CpuMeter[]) => batch(offloadCompleted, submitDirect, meters);
    const viaRaw = (meters: CpuMeter[]) =>
      batch(
        rawCompleted,
        () => queue.add(TINY.task, { task: TINY.task, input: TINY.input }),
        meters,
      );
    const meterOf = (name: string, pid: number): CpuMeter => [name, () => stack.cpuSeconds(pid)];

    const figures: Figure[] = [];
    const details: Record<string, unknown> = {
      jobsPerBatch: jobs,
      submitters: SUBMITTERS,
      task: TINY,
    };
    try {
      for (const concurrency of CONCURRENCIES) {
        const worker = await stack.startWorker({ prefix, concurrency });
        const rawWorker = await stack.startFixture(
          'bench/fixtures/raw-bullmq-worker.ts',
          rawWorkerEnv(rawPrefix, concurrency, 'burn'),
          /raw worker ready/,
        );
        const rounds: { offload: Batch; raw: Batch; producer: Batch }[] = [];
        const offloadMeters = [meterOf('api', api.pid), meterOf('worker', worker.pid)];
        const producerMeters = [meterOf('worker', worker.pid)];
        const rawMeters = [meterOf('worker', rawWorker.pid)];
        try {
          // One short batch each first: connections, JIT and the executors' first jobs.
          await viaOffload(offloadMeters);
          await viaRaw(rawMeters);
          for (let round = 0; round < ctx.rounds; round++) {
            const r = {} as { offload: Batch; raw: Batch; producer: Batch };
            await alternate(
              round,
              async () => {
                r.offload = await viaOffload(offloadMeters);
                r.producer = await viaProducer(producerMeters);
              },
              async () => {
                r.raw = await viaRaw(rawMeters);
              },
            );
            ctx.log(
              `e2e-throughput concurrency ${concurrency} round ${round + 1}: ${r.offload.jobsPerSecond.toFixed(0)} vs raw ${r.raw.jobsPerSecond.toFixed(0)} jobs/s`,
            );
            rounds.push(r);
          }
        } finally {
          await Promise.all([worker.stop(), rawWorker.stop()]);
        }
        const offload = median(rounds.map((r) => r.offload.jobsPerSecond));
        const raw = median(rounds.map((r) => r.raw.jobsPerSecond));
        const ratio = median(rounds.map((r) => r.offload.jobsPerSecond / r.raw.jobsPerSecond));
        figures.push({
          benchmark: 'e2e-throughput',
          figure: `tiny jobs/s, HTTP submit → completion, concurrency ${concurrency}`,
          unit: 'jobs/s',
          offload,
          baseline: { name: 'raw BullMQ add + Worker', value: raw },
          ratio: { name: '× raw', value: ratio },
          target: `≥ ${TARGET_RATIO} × raw`,
          met: ratio >= TARGET_RATIO,
        });
        figures.push({
          benchmark: 'e2e-throughput',
          figure: `the same without HTTP (JobQueues.submitJob → worker), concurrency ${concurrency}`,
          unit: 'jobs/s',
          offload: median(rounds.map((r) => r.producer.jobsPerSecond)),
          baseline: { name: 'raw BullMQ add + Worker', value: raw },
          ratio: {
            name: '× raw',
            value: median(rounds.map((r) => r.producer.jobsPerSecond / r.raw.jobsPerSecond)),
          },
        });
        const totalCpu = (b: Batch) => Object.values(b.cpuUsPerJob).reduce((a, n) => a + n, 0);
        figures.push({
          benchmark: 'e2e-throughput',
          figure: `CPU per job, every process (API, worker, Redis, client), concurrency ${concurrency}`,
          unit: 'µs',
          offload: median(rounds.map((r) => totalCpu(r.offload))),
          baseline: {
            name: 'raw BullMQ (worker, Redis, client)',
            value: median(rounds.map((r) => totalCpu(r.raw))),
          },
          ratio: {
            name: '× raw',
            value: median(rounds.map((r) => totalCpu(r.offload) / totalCpu(r.raw))),
          },
        });
        details[`concurrency${concurrency}`] = rounds;
      }
    } finally {
      await queue.close();
      await producer.close();
      await api.stop();
    }
    return { figures, details };
  },
};

import { Queue, QueueEvents } from 'bullmq';
import { alternate, type Benchmark, rawWorkerEnv } from '../lib/benchmark.ts';
import { finished, submit } from '../lib/jobs.ts';
import type { Figure } from '../lib/report.ts';
import { median, quantile, sleep, wallClockMs } from '../lib/stats.ts';

/** Samples per round and way; the queue is idle before each (one job at a time, a pause between). */
const SAMPLES = 200;
/** Pause between two jobs, ms: long enough that every worker is back in its blocking wait. */
const IDLE_MS = 15;
const TARGET_ADDED_P99_MS = 2;

interface Sample {
  /** Submit → the task (Offload) or processor (raw) started, ms. */
  startMs: number;
  /** Submit → the client holds the result, ms. */
  visibleMs: number;
}

/**
 * How long an idle system takes to start a job and show its result.
 * Offload: POST /v1/jobs of `bench.stamp` (which returns the time it started
 * inside its executor thread), then GET ?wait until completed. Raw BullMQ:
 * Queue.add, a processor that returns the time it started, and
 * job.waitUntilFinished. Both with as many executors/concurrency as cores.
 */
export const pickupLatency: Benchmark = {
  name: 'pickup-latency',
  async run(ctx) {
    const { stack, cores } = ctx;
    const prefix = stack.prefix('pickup');
    const rawPrefix = stack.prefix('pickupraw');
    const api = await stack.startApi({ prefix, flavour: 'bench-tasks' });
    const worker = await stack.startWorker({ prefix, concurrency: cores, flavour: 'bench-tasks' });
    const rawWorker = await stack.startFixture(
      'bench/fixtures/raw-bullmq-worker.ts',
      rawWorkerEnv(rawPrefix, cores, 'stamp'),
      /raw worker ready/,
    );
    const connection = stack.rawConnection();
    const queue = new Queue('default', { connection, prefix: rawPrefix });
    const events = new QueueEvents('default', {
      connection: stack.rawConnection(),
      prefix: rawPrefix,
    });
    await events.waitUntilReady();

    const viaOffload = async (): Promise<Sample> => {
      const submittedAt = wallClockMs();
      const view = await submit(api.http, 'bench.stamp', {});
      const done = await finished(api.http, view.id);
      const visibleAt = wallClockMs();
      const { startedAtMs } = done.result as { startedAtMs: number };
      return { startMs: startedAtMs - submittedAt, visibleMs: visibleAt - submittedAt };
    };
    const viaRaw = async (): Promise<Sample> => {
      const submittedAt = wallClockMs();
      const job = await queue.add('bench.stamp', { task: 'bench.stamp', input: {} });
      const { startedAtMs } = (await job.waitUntilFinished(events, 10_000)) as {
        startedAtMs: number;
      };
      const visibleAt = wallClockMs();
      return { startMs: startedAtMs - submittedAt, visibleMs: visibleAt - submittedAt };
    };

    const offload: Sample[][] = [];
    const raw: Sample[][] = [];
    const samples = ctx.quick ? 50 : SAMPLES;
    try {
      // Warm both paths (connections, JIT) before measuring.
      for (let i = 0; i < 20; i++) {
        await viaOffload();
        await viaRaw();
      }
      for (let round = 0; round < ctx.rounds; round++) {
        const o: Sample[] = [];
        const r: Sample[] = [];
        // One job each in turn, so both see the same moments of a noisy machine.
        for (let i = 0; i < samples; i++) {
          await alternate(
            i + round,
            async () => {
              o.push(await viaOffload());
              await sleep(IDLE_MS);
            },
            async () => {
              r.push(await viaRaw());
              await sleep(IDLE_MS);
            },
          );
        }
        ctx.log(
          `pickup-latency round ${round + 1}: start p50 ${median(o.map((s) => s.startMs)).toFixed(2)} vs raw ${median(r.map((s) => s.startMs)).toFixed(2)} ms`,
        );
        offload.push(o);
        raw.push(r);
      }
    } finally {
      await events.close();
      await queue.close();
      await Promise.all([api.stop(), worker.stop(), rawWorker.stop()]);
    }

    const pooled = (rounds: Sample[][], key: keyof Sample) => rounds.flat().map((s) => s[key]);
    const figure = (key: keyof Sample, what: string, q: number, target?: number): Figure => {
      const value = quantile(pooled(offload, key), q);
      const base = quantile(pooled(raw, key), q);
      return {
        benchmark: 'pickup-latency',
        figure: `${q === 0.5 ? 'p50' : 'p99'} submit → ${what}, idle queue`,
        unit: 'ms',
        offload: value,
        baseline: {
          name: `raw BullMQ, add → ${key === 'startMs' ? 'processor start' : 'waitUntilFinished'}`,
          value: base,
        },
        ratio: { name: 'added ms', value: value - base },
        ...(target !== undefined && {
          target: `added ≤ ${target} ms`,
          met: value - base <= target,
        }),
      };
    };
    const perRound = offload.map((o, i) => ({
      offloadStartP50Ms: median(o.map((s) => s.startMs)),
      offloadStartP99Ms: quantile(
        o.map((s) => s.startMs),
        0.99,
      ),
      rawStartP50Ms: median((raw[i] ?? []).map((s) => s.startMs)),
      rawStartP99Ms: quantile(
        (raw[i] ?? []).map((s) => s.startMs),
        0.99,
      ),
    }));
    return {
      figures: [
        figure('startMs', 'task start', 0.5),
        figure('startMs', 'task start', 0.99, TARGET_ADDED_P99_MS),
        figure('visibleMs', 'result visible', 0.5),
        figure('visibleMs', 'result visible', 0.99),
      ],
      details: {
        samplesPerWay: offload.flat().length,
        idleMs: IDLE_MS,
        concurrency: cores,
        offload: 'bench API and worker under tsx, serving the built-ins plus bench.stamp',
        perRound,
      },
    };
  },
};

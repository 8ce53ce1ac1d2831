import { alternate, type BenchContext, type Benchmark } from '../lib/benchmark.ts';
import { finished, submit } from '../lib/jobs.ts';
import type { Figure } from '../lib/report.ts';
import type { ApiProcess } from '../lib/stack.ts';
import { median } from '../lib/stats.ts';

/** Jobs per batch; 8 keeps every executor busy for several rounds of work. */
const JOBS = 8;
const BURN = { task: 'cpu.burn', input: { ms: 500 } };
/**
 * cpu.burn runs for 500 ms of wall-clock time whatever share of a core it
 * gets, so its makespan shows dispatch overhead but not whether the cores
 * really computed in parallel. A fixed amount of work shows that: counting
 * the primes below 375,000,000 takes about 500 ms of one core here.
 */
const FIXED = { task: 'primes.count', input: { below: 375_000_000 } };
const TARGET_EFFICIENCY = 0.93;

interface Work {
  task: string;
  input: unknown;
}

/** Submits JOBS jobs at once through the API; ms from the first submit until the last result is seen. */
async function makespan(api: ApiProcess, work: Work): Promise<number> {
  const started = performance.now();
  const views = await Promise.all(
    Array.from({ length: JOBS }, () => submit(api.http, work.task, work.input)),
  );
  await Promise.all(views.map((view) => finished(api.http, view.id)));
  return performance.now() - started;
}

/** The same jobs one after another in one fresh process, no queue: ms. */
async function serial(ctx: BenchContext, work: Work): Promise<number> {
  const run = await ctx.stack.startFixture(
    'bench/fixtures/serial-run.ts',
    { SERIAL_WORK: JSON.stringify({ ...work, count: JOBS }) },
    /^serial /,
  );
  await run.stop();
  return Number(run.readyLine.split(' ')[1]);
}

export const cpuScaling: Benchmark = {
  name: 'cpu-scaling',
  async run(ctx) {
    const { stack, cores } = ctx;
    const prefix = stack.prefix('cpu');
    const api = await stack.startApi({ prefix });
    const rounds: Record<string, number>[] = [];
    const withWorker = async (executors: number, work: Work) => {
      const worker = await stack.startWorker({ prefix, concurrency: executors });
      try {
        return await makespan(api, work);
      } finally {
        await worker.stop();
      }
    };
    try {
      for (let round = 0; round < ctx.rounds; round++) {
        const r: Record<string, number> = {};
        await alternate(
          round,
          async () => {
            r.serialBurnMs = await serial(ctx, BURN);
            r.serialFixedMs = await serial(ctx, FIXED);
          },
          async () => {
            r.oneExecutorBurnMs = await withWorker(1, BURN);
            r.allExecutorsBurnMs = await withWorker(cores, BURN);
            r.allExecutorsFixedMs = await withWorker(cores, FIXED);
          },
        );
        ctx.log(`cpu-scaling round ${round + 1}: ${JSON.stringify(r)}`);
        rounds.push(r);
      }
    } finally {
      await api.stop();
    }
    const of = (key: string) => median(rounds.map((r) => r[key] as number));
    // Efficiency per round, then the median: each round's baseline ran beside its Offload run.
    const efficiency = (serialKey: string, key: string, executors: number) =>
      median(rounds.map((r) => (r[serialKey] as number) / (executors * (r[key] as number))));
    const e1 = efficiency('serialBurnMs', 'oneExecutorBurnMs', 1);
    const eN = efficiency('serialBurnMs', 'allExecutorsBurnMs', cores);
    const eFixed = efficiency('serialFixedMs', 'allExecutorsFixedMs', cores);
    const figures: Figure[] = [
      {
        benchmark: 'cpu-scaling',
        figure: `makespan of ${JOBS} × cpu.burn 500 ms, 1 executor`,
        unit: 'ms',
        offload: of('oneExecutorBurnMs'),
        baseline: { name: 'serial, one process', value: of('serialBurnMs') },
        ratio: { name: 'efficiency', value: e1 },
      },
      {
        benchmark: 'cpu-scaling',
        figure: `makespan of ${JOBS} × cpu.burn 500 ms, ${cores} executors`,
        unit: 'ms',
        offload: of('allExecutorsBurnMs'),
        baseline: { name: 'serial, one process', value: of('serialBurnMs') },
        ratio: { name: 'efficiency', value: eN },
        target: `efficiency ≥ ${TARGET_EFFICIENCY}`,
        met: eN >= TARGET_EFFICIENCY,
      },
      {
        benchmark: 'cpu-scaling',
        figure: `makespan of ${JOBS} × primes.count (fixed work), ${cores} executors`,
        unit: 'ms',
        offload: of('allExecutorsFixedMs'),
        baseline: { name: 'serial, one process', value: of('serialFixedMs') },
        ratio: { name: 'efficiency', value: eFixed },
      },
    ];
    return { figures, details: { jobs: JOBS, burn: BURN, fixed: FIXED, rounds } };
  },
};

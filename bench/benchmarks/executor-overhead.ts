import { builtInTasks, registry } from '@offload/tasks';
import { ExecutorPool } from '../../apps/worker/src/executor-pool.ts';
import { BUILTIN_MODULE } from '../../apps/worker/src/task-modules.ts';
import { threadBackend } from '../../apps/worker/src/thread-executor.ts';
import { alternate, type Benchmark } from '../lib/benchmark.ts';
import { median, quantile } from '../lib/stats.ts';

/** Jobs per round and way; one at a time, so each sample is one job's round trip. */
const JOBS = 2000;
const WARMUP_JOBS = 300;
const TASK = 'cpu.burn';
/** ms 0: the task function returns at once, so nearly all of a job's time is the executor's. */
const INPUT = { ms: 0 };
const TARGET_MS = 0.3;

/**
 * What a job pays to run in an executor thread instead of on the caller's
 * thread: ExecutorPool.run (post to the thread, input and output checked
 * there, answer posted back) against calling the task function directly.
 */
export const executorOverhead: Benchmark = {
  name: 'executor-overhead',
  async run(ctx) {
    const task = registry.get(TASK);
    if (!task) throw new Error(`${TASK} is not a built-in task`);
    const taskCtx = { signal: new AbortController().signal, progress() {}, log() {} };
    const jobs = ctx.quick ? 500 : JOBS;
    const pool = await ExecutorPool.start({
      size: 1,
      backends: [
        threadBackend({
          tasks: builtInTasks.map((t) => t.name),
          taskModules: [BUILTIN_MODULE],
          cwd: process.cwd(),
        }),
      ],
    });
    let sequence = 0;
    const viaPool = async (count: number) => {
      const samples: number[] = [];
      for (let i = 0; i < count; i++) {
        const started = performance.now();
        await pool.run({
          jobId: `overhead-${sequence++}`,
          task: TASK,
          input: INPUT,
          timeoutMs: 10_000,
        });
        samples.push(performance.now() - started);
      }
      return samples;
    };
    const direct = async (count: number) => {
      const samples: number[] = [];
      for (let i = 0; i < count; i++) {
        const started = performance.now();
        await task.run(INPUT, taskCtx);
        samples.push(performance.now() - started);
      }
      return samples;
    };
    const rounds: {
      poolMedianMs: number;
      poolP99Ms: number;
      directMedianMs: number;
      overheadMs: number;
    }[] = [];
    try {
      await viaPool(WARMUP_JOBS);
      await direct(WARMUP_JOBS);
      for (let round = 0; round < ctx.rounds; round++) {
        let pooled: number[] = [];
        let called: number[] = [];
        await alternate(
          round,
          async () => {
            pooled = await viaPool(jobs);
          },
          async () => {
            called = await direct(jobs);
          },
        );
        const r = {
          poolMedianMs: median(pooled),
          poolP99Ms: quantile(pooled, 0.99),
          directMedianMs: median(called),
          overheadMs: median(pooled) - median(called),
        };
        ctx.log(`executor-overhead round ${round + 1}: ${JSON.stringify(r)}`);
        rounds.push(r);
      }
    } finally {
      await pool.close();
    }
    const overhead = median(rounds.map((r) => r.overheadMs));
    return {
      figures: [
        {
          benchmark: 'executor-overhead',
          figure: 'median time per job outside the task function',
          unit: 'ms',
          offload: overhead,
          baseline: {
            name: 'direct call of the task function',
            value: median(rounds.map((r) => r.directMedianMs)),
          },
          target: `≤ ${TARGET_MS} ms`,
          met: overhead <= TARGET_MS,
        },
        {
          benchmark: 'executor-overhead',
          figure: 'p99 of one job through the executor pool',
          unit: 'ms',
          offload: median(rounds.map((r) => r.poolP99Ms)),
        },
      ],
      details: { task: TASK, input: INPUT, jobsPerRound: jobs, poolSize: 1, rounds },
    };
  },
};

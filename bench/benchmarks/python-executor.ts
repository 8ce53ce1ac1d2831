import { execFileSync, spawn } from 'node:child_process';
import { delimiter } from 'node:path';
import { fileURLToPath } from 'node:url';
import { builtInTasks } from '@offload/tasks';
import { inheritedEnvironment } from '../../apps/worker/src/env.ts';
import { ExecutorPool } from '../../apps/worker/src/executor-pool.ts';
import { PYTHON_SDK, pythonBackend } from '../../apps/worker/src/python-executor.ts';
import { BUILTIN_MODULE } from '../../apps/worker/src/task-modules.ts';
import { threadBackend } from '../../apps/worker/src/thread-executor.ts';
import { alternate, type Benchmark } from '../lib/benchmark.ts';
import { median, quantile } from '../lib/stats.ts';

const TASKS_FILE = fileURLToPath(new URL('../fixtures/python_tasks.py', import.meta.url));
/** The interpreter itself, as a worker resolves OFFLOAD_PYTHON: a launcher (pyenv's shim) would add most of a second per start. */
const PYTHON = execFileSync(
  process.env.OFFLOAD_PYTHON ?? 'python3',
  ['-c', 'import sys; print(sys.executable)'],
  { encoding: 'utf8' },
).trim();
/** Jobs per round and way for the per-job cost; one at a time. */
const JOBS = 1000;
/** Interpreter starts per round: each costs tens of ms. */
const STARTS = 40;
/** Loops of bench.py-spin: about 0.4 s of one core here. */
const SPIN_LOOPS = 6_000_000;
const TARGET_OVERHEAD_MS = 1;
const TARGET_EFFICIENCY = 0.9;

const cwd = process.cwd();
const python = (size: number) =>
  ExecutorPool.start({
    size,
    backends: [
      pythonBackend({
        files: [TASKS_FILE],
        cwd,
        python: PYTHON,
        environment: inheritedEnvironment(),
        tasks: ['bench.py-noop', 'bench.py-spin'],
      }),
    ],
  });

let sequence = 0;
async function oneByOne(pool: ExecutorPool, task: string, input: unknown, count: number) {
  const samples: number[] = [];
  for (let i = 0; i < count; i++) {
    const started = performance.now();
    await pool.run({ jobId: `py-bench-${sequence++}`, task, input, timeoutMs: 60_000 });
    samples.push(performance.now() - started);
  }
  return samples;
}

/** The way without Offload's executors: one python3 per job, importing the tasks file and calling the task. */
async function pythonPerJob(count: number): Promise<number[]> {
  const script = `import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("bench_tasks", sys.argv[1])
module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)
print(json.dumps(module.noop({}, None)))`;
  const samples: number[] = [];
  for (let i = 0; i < count; i++) {
    const started = performance.now();
    await new Promise<void>((resolve, reject) => {
      const child = spawn(PYTHON, ['-c', script, TASKS_FILE], {
        env: {
          ...process.env,
          PYTHONPATH: [PYTHON_SDK, process.env.PYTHONPATH].filter(Boolean).join(delimiter),
        },
        stdio: ['ignore', 'ignore', 'inherit'],
      });
      child.on('exit', (code) =>
        code === 0 ? resolve() : reject(new Error(`python3 exited ${code}`)),
      );
    });
    samples.push(performance.now() - started);
  }
  return samples;
}

/** ms for `jobs` spin jobs submitted at once to a pool of `size` Python executors. */
async function makespan(pool: ExecutorPool, jobs: number): Promise<number> {
  const started = performance.now();
  await Promise.all(
    Array.from({ length: jobs }, () =>
      pool.run({
        jobId: `py-spin-${sequence++}`,
        task: 'bench.py-spin',
        input: { loops: SPIN_LOOPS },
        timeoutMs: 120_000,
      }),
    ),
  );
  return performance.now() - started;
}

/**
 * What a Python task costs Offload (DESIGN.md §2, issue "Python tasks"):
 * per job, a warm Python executor against a thread executor running a
 * TypeScript task and against starting python3 for each job; and the
 * parallel efficiency of pure-Python CPU work on every core.
 */
export const pythonExecutor: Benchmark = {
  name: 'python-executor',
  async run(ctx) {
    const jobs = ctx.quick ? 200 : JOBS;
    const starts = ctx.quick ? 10 : STARTS;
    const threads = await ExecutorPool.start({
      size: 1,
      backends: [
        threadBackend({
          tasks: builtInTasks.map((task) => task.name),
          taskModules: [BUILTIN_MODULE],
          cwd,
        }),
      ],
    });
    const single = await python(1);
    const rounds: Record<string, number>[] = [];
    try {
      await oneByOne(single, 'bench.py-noop', {}, 200);
      await oneByOne(threads, 'cpu.burn', { ms: 0 }, 200);
      for (let round = 0; round < ctx.rounds; round++) {
        let py: number[] = [];
        let ts: number[] = [];
        await alternate(
          round,
          async () => {
            py = await oneByOne(single, 'bench.py-noop', {}, jobs);
          },
          async () => {
            ts = await oneByOne(threads, 'cpu.burn', { ms: 0 }, jobs);
          },
        );
        const perJob = await pythonPerJob(starts);
        const r = {
          pythonMedianMs: median(py),
          pythonP99Ms: quantile(py, 0.99),
          threadMedianMs: median(ts),
          pythonPerJobMedianMs: median(perJob),
        };
        ctx.log(`python-executor round ${round + 1}: ${JSON.stringify(r)}`);
        rounds.push(r);
      }
    } finally {
      await threads.close();
    }
    // Parallel efficiency: `cores` jobs of fixed work, one executor against `cores` of them.
    const wide = await python(ctx.cores);
    const scaling: Record<string, number>[] = [];
    try {
      const jobsAtOnce = ctx.cores * 2;
      for (let round = 0; round < ctx.rounds; round++) {
        let oneMs = 0;
        let allMs = 0;
        await alternate(
          round,
          async () => {
            oneMs = await makespan(single, jobsAtOnce);
          },
          async () => {
            allMs = await makespan(wide, jobsAtOnce);
          },
        );
        const efficiency = oneMs / (ctx.cores * allMs);
        ctx.log(
          `python-executor scaling round ${round + 1}: 1 executor ${oneMs.toFixed(0)} ms, ${ctx.cores} executors ${allMs.toFixed(0)} ms, efficiency ${efficiency.toFixed(3)}`,
        );
        scaling.push({ oneExecutorMs: oneMs, allExecutorsMs: allMs, efficiency });
      }
    } finally {
      await wide.close();
      await single.close();
    }
    const pythonMs = median(rounds.map((r) => r.pythonMedianMs as number));
    const threadMs = median(rounds.map((r) => r.threadMedianMs as number));
    const perJobMs = median(rounds.map((r) => r.pythonPerJobMedianMs as number));
    const efficiency = median(scaling.map((r) => r.efficiency as number));
    return {
      figures: [
        {
          benchmark: 'python-executor',
          figure: 'median time of a job that returns at once, warm Python executor',
          unit: 'ms',
          offload: pythonMs,
          baseline: { name: 'thread executor, TypeScript task', value: threadMs },
          target: `≤ ${TARGET_OVERHEAD_MS} ms`,
          met: pythonMs <= TARGET_OVERHEAD_MS,
        },
        {
          benchmark: 'python-executor',
          figure: 'median time of the same job, python3 started per job',
          unit: 'ms',
          offload: pythonMs,
          baseline: { name: 'python3 per job (import, call, exit)', value: perJobMs },
          target: '≥ 20× faster',
          met: perJobMs / pythonMs >= 20,
        },
        {
          benchmark: 'python-executor',
          figure: `parallel efficiency of pure-Python CPU work on ${ctx.cores} executors`,
          unit: 'ratio',
          offload: efficiency,
          baseline: { name: '1 executor, same jobs', value: 1 },
          target: `≥ ${TARGET_EFFICIENCY}`,
          met: efficiency >= TARGET_EFFICIENCY,
        },
      ],
      details: {
        python: PYTHON,
        jobsPerRound: jobs,
        startsPerRound: starts,
        spinLoops: SPIN_LOOPS,
        rounds,
        scaling,
      },
    };
  },
};

import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { apiLatency } from './benchmarks/api-latency.ts';
import { batchSubmit } from './benchmarks/batch-submit.ts';
import { cpuScaling } from './benchmarks/cpu-scaling.ts';
import { e2eThroughput } from './benchmarks/e2e-throughput.ts';
import { executorOverhead } from './benchmarks/executor-overhead.ts';
import { memory } from './benchmarks/memory.ts';
import { pickupLatency } from './benchmarks/pickup-latency.ts';
import { pythonExecutor } from './benchmarks/python-executor.ts';
import { redisCost } from './benchmarks/redis-cost.ts';
import { streamFanout } from './benchmarks/stream-fanout.ts';
import type { BenchContext, Benchmark } from './lib/benchmark.ts';
import {
  type BenchmarkResult,
  type CodeUnderTest,
  describeMachine,
  endLoadAverage,
  resultsTable,
  writeReport,
} from './lib/report.ts';
import { describeCheckout, snapshotCommit } from './lib/snapshot.ts';
import { BenchStack } from './lib/stack.ts';

/**
 * `npm run bench`: every benchmark against its baseline in the same run, on
 * real processes and a real Redis. Prints the table, writes
 * bench/results/latest.json and the table of bench/RESULTS.md.
 *
 *   npm run bench                       the full suite (3 rounds)
 *   npm run bench -- --quick            1 round, short windows: for development, writes results/quick.json only
 *   npm run bench -- --only=memory,…    some benchmarks (the table says which ran)
 *   npm run bench -- --no-build         skip building the API and worker bundles (they are current)
 *   npm run bench -- --commit=HEAD      benchmark that commit from a clean copy, not the working tree
 *
 * BENCH_REDIS_URL: use that Redis instead of a private redis-server (keys are
 * prefixed bench-<random> and deleted afterwards).
 */
const BENCHMARKS: readonly Benchmark[] = [
  cpuScaling,
  apiLatency,
  e2eThroughput,
  pickupLatency,
  executorOverhead,
  pythonExecutor,
  streamFanout,
  memory,
  redisCost,
  batchSubmit,
];

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const only = args
  .find((a) => a.startsWith('--only='))
  ?.slice('--only='.length)
  .split(',');
const selected = BENCHMARKS.filter((b) => !only || only.includes(b.name));
if (only && selected.length !== only.length) {
  console.error(`Unknown benchmark in --only; known: ${BENCHMARKS.map((b) => b.name).join(', ')}`);
  process.exit(2);
}
const root = fileURLToPath(new URL('..', import.meta.url));
const { BENCH_REDIS_URL, BENCH_RESULTS_DIR, BENCH_CODE, BENCH_COMMAND } = process.env;
/** Where results go: this checkout's bench/, also when the code measured is a clean copy. */
const benchDir = BENCH_RESULTS_DIR ?? fileURLToPath(new URL('.', import.meta.url));
const command = BENCH_COMMAND ?? `npm run bench${args.length ? ` -- ${args.join(' ')}` : ''}`;
const log = (line: string) => console.log(`[bench] ${line}`);

const commitArg = args.find((a) => a.startsWith('--commit='));
if (commitArg) {
  const { dir, commit } = snapshotCommit(root, commitArg.slice('--commit='.length));
  log(`benchmarking commit ${commit.slice(0, 10)} from a clean copy in ${dir}`);
  const child = spawnSync(
    process.execPath,
    ['--import', 'tsx', 'bench/run.ts', ...args.filter((a) => a !== commitArg)],
    {
      cwd: dir,
      stdio: 'inherit',
      env: {
        ...process.env,
        BENCH_RESULTS_DIR: benchDir,
        BENCH_CODE: JSON.stringify({ commit, changedFiles: 0, cleanCopy: true }),
        BENCH_COMMAND: command,
      },
    },
  );
  rmSync(dir, { recursive: true, force: true });
  process.exit(child.status ?? 1);
}
const code = BENCH_CODE
  ? (JSON.parse(BENCH_CODE) as CodeUnderTest)
  : { ...describeCheckout(root), cleanCopy: false };

if (!args.includes('--no-build')) {
  log('building the API and worker bundles');
  const build = spawnSync('npm', ['run', 'build', '-w', '@offload/api', '-w', '@offload/worker'], {
    cwd: root,
    encoding: 'utf8',
  });
  if (build.status !== 0) {
    console.error(build.stdout + build.stderr);
    process.exit(1);
  }
}

const stack = await BenchStack.start(BENCH_REDIS_URL);
const stopOnSignal = () => {
  log('interrupted; stopping processes and deleting keys');
  stack.close().finally(() => process.exit(130));
};
process.once('SIGINT', stopOnSignal);
process.once('SIGTERM', stopOnSignal);

const startedAt = new Date();
const machine = describeMachine(await stack.redisVersion());
const ctx: BenchContext = {
  stack,
  rounds: quick ? 1 : 3,
  quick,
  cores: availableParallelism(),
  log,
};
log(
  `${selected.length} benchmarks, ${ctx.rounds} rounds, ${stack.redisKind} Redis at ${stack.redisUrl}, keys ${stack.runPrefix}*`,
);

const results: BenchmarkResult[] = [];
let failed = false;
try {
  for (const benchmark of selected) {
    log(`${benchmark.name}…`);
    const started = performance.now();
    const result = await benchmark.run(ctx);
    const durationMs = performance.now() - started;
    results.push({ name: benchmark.name, ...result, durationMs });
    log(`${benchmark.name} done in ${(durationMs / 1000).toFixed(1)} s`);
  }
} catch (err) {
  failed = true;
  console.error(err);
} finally {
  await stack.close();
}
endLoadAverage(machine);

const file = writeReport(
  benchDir,
  quick ? 'quick' : 'latest',
  {
    command,
    startedAt: startedAt.toISOString(),
    durationS: (Date.now() - startedAt.getTime()) / 1000,
    quick,
    rounds: ctx.rounds,
    redis:
      stack.redisKind === 'private' ? 'private redis-server, no persistence' : 'BENCH_REDIS_URL',
    machine,
    code,
    results,
  },
  !quick && !failed,
);
console.log(`\n${resultsTable(results)}\n`);
log(`wrote ${file}${!quick && !failed ? ' and RESULTS.md' : ''}`);
process.exit(failed ? 1 : 0);

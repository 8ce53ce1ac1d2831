import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { cpuScaling } from './benchmarks/cpu-scaling.ts';
import type { BenchContext, Benchmark } from './lib/benchmark.ts';
import {
  type BenchmarkResult,
  describeMachine,
  endLoadAverage,
  resultsTable,
  writeReport,
} from './lib/report.ts';
import { BenchStack } from './lib/stack.ts';

/**
 * `npm run bench`: every benchmark against its baseline in the same run, on
 * real processes and a real Redis. Prints the table, writes
 * bench/results/latest.json and the table of bench/RESULTS.md.
 *
 *   npm run bench                       the full suite (3 rounds)
 *   npm run bench -- --quick            1 round, short windows: for development, writes results/quick.json only
 *   npm run bench -- --only=memory,…    some benchmarks; writes results/partial.json only
 *   npm run bench -- --no-build         skip `npm run build` (the bundles are current)
 *
 * BENCH_REDIS_URL: use that Redis instead of a private redis-server (keys are
 * prefixed bench-<random> and deleted afterwards).
 */
const BENCHMARKS: readonly Benchmark[] = [cpuScaling];

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
const full = !quick && !only;
const benchDir = fileURLToPath(new URL('.', import.meta.url));
const log = (line: string) => console.log(`[bench] ${line}`);

if (!args.includes('--no-build')) {
  log('building the production bundles (npm run build)');
  const build = spawnSync('npm', ['run', 'build'], {
    cwd: fileURLToPath(new URL('..', import.meta.url)),
    encoding: 'utf8',
    env: { ...process.env, TURBO_TELEMETRY_DISABLED: '1' },
  });
  if (build.status !== 0) {
    console.error(build.stdout + build.stderr);
    process.exit(1);
  }
}

const { BENCH_REDIS_URL } = process.env;
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

const command = `npm run bench${args.length ? ` -- ${args.join(' ')}` : ''}`;
const file = writeReport(
  benchDir,
  full ? 'latest' : quick ? 'quick' : 'partial',
  {
    command,
    startedAt: startedAt.toISOString(),
    durationS: (Date.now() - startedAt.getTime()) / 1000,
    quick,
    rounds: ctx.rounds,
    redis:
      stack.redisKind === 'private' ? 'private redis-server, no persistence' : 'BENCH_REDIS_URL',
    machine,
    results,
  },
  full && !failed,
);
console.log(`\n${resultsTable(results)}\n`);
log(`wrote ${file}${full && !failed ? ' and RESULTS.md' : ''}`);
process.exit(failed ? 1 : 0);

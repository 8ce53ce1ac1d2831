import { Queue, QueueEvents } from 'bullmq';
import { type Benchmark, rawWorkerEnv } from '../lib/benchmark.ts';
import { HttpClient } from '../lib/http-client.ts';
import { finished, submit } from '../lib/jobs.ts';
import type { Figure } from '../lib/report.ts';
import type { BenchStack } from '../lib/stack.ts';

/** Jobs per side: enough that idle loops (heartbeats, stall checks) weigh little. */
const JOBS = 10_000;
/** Clients submitting and waiting at once. */
const CLIENTS = 32;
/** Executors of Offload's worker, and the raw Worker's concurrency. */
const EXECUTORS = 2;
const TINY = { task: 'cpu.burn', input: { ms: 0 } };
const TENANT = { tenant: 'bench', key: 'bench-redis-cost-key-0123456789' };
/** #13's targets: commands ≤ 1.5 × raw BullMQ's, Redis CPU ≤ 2 × raw's. */
const TARGET_COMMANDS = 1.5;
const TARGET_CPU = 2;
/** Commands listed per side in the details, most called first (all of them, in practice). */
const TOP = 50;

interface Cost {
  jobs: number;
  commandsPerJob: number;
  /** Redis main-thread CPU (user + system) per job, µs. */
  cpuUsPerJob: number;
  /** Calls per job of each command, most called first. */
  breakdown: Record<string, number>;
  /**
   * Redis' own time per job in each command, µs, most first (INFO
   * commandstats `usec`; a script's time includes its inner commands', which
   * are listed again under their own names).
   */
  usecBreakdown: Record<string, number>;
  seconds: number;
}

/** Each command's calls and time (µs) from INFO commandstats. */
function commandStats(info: string): Map<string, { calls: number; usec: number }> {
  const stats = new Map<string, { calls: number; usec: number }>();
  for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) {
    stats.set(match[1] as string, { calls: Number(match[2]), usec: Number(match[3]) });
  }
  return stats;
}

/** Per job, rounded, largest first. */
function perJob(entries: [string, number][], jobs: number): Record<string, number> {
  return Object.fromEntries(
    entries
      .sort((a, b) => b[1] - a[1])
      .slice(0, TOP)
      .map(([name, n]) => [name, Number((n / jobs).toFixed(2))]),
  );
}

function mainThreadCpuSeconds(info: string): number {
  const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1]);
  return field('used_cpu_user_main_thread') + field('used_cpu_sys_main_thread');
}

/** Runs `one` JOBS times, CLIENTS at once, and counts what Redis did meanwhile. */
async function measure(
  stack: BenchStack,
  jobs: number,
  one: () => Promise<unknown>,
): Promise<Cost> {
  await stack.redis.config('RESETSTAT');
  const cpuBefore = mainThreadCpuSeconds(await stack.redis.info('cpu'));
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      while (next < jobs) {
        next++;
        await one();
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const cpu = mainThreadCpuSeconds(await stack.redis.info('cpu')) - cpuBefore;
  const stats = [...commandStats(await stack.redis.info('commandstats'))];
  // The two INFO calls and RESETSTAT of this measurement are not the job's.
  const total = stats.reduce((sum, [, { calls }]) => sum + calls, 0) - 2;
  const breakdown = perJob(
    stats.map(([name, { calls }]) => [name, calls]),
    jobs,
  );
  const usecBreakdown = perJob(
    stats.map(([name, { usec }]) => [name, usec]),
    jobs,
  );
  return {
    jobs,
    commandsPerJob: total / jobs,
    cpuUsPerJob: (cpu * 1e6) / jobs,
    breakdown,
    usecBreakdown,
    seconds,
  };
}

/**
 * What one job costs the Redis every part shares, counted by the server
 * itself: INFO commandstats (every client's calls, Lua's inner commands
 * included) and INFO cpu (the main thread's CPU time). Offload: a client
 * submits over HTTP with an API key, rate limit and quota on (fair share
 * included), a worker process with EXECUTORS executors runs the job, and the
 * client long-polls its result. Raw BullMQ: Queue.add, a Worker of the same
 * concurrency, waitUntilFinished through QueueEvents. Each side runs alone on
 * the bench's Redis; idle loops (heartbeats, stall checks) are counted with it.
 * One Redis core's ceiling follows: 10^6 µs ÷ CPU per job.
 */
export const redisCost: Benchmark = {
  name: 'redis-cost',
  async run(ctx) {
    const { stack } = ctx;
    const jobs = ctx.quick ? 2000 : JOBS;

    const prefix = stack.prefix('cost');
    const api = await stack.startApi({
      prefix,
      env: {
        API_KEYS: `${TENANT.tenant}:${TENANT.key}`,
        API_RATE_LIMIT: String(jobs * 10),
        API_MAX_QUEUED_PER_TENANT: String(jobs),
      },
    });
    const worker = await stack.startWorker({ prefix, concurrency: EXECUTORS });
    const http = new HttpClient(api.url, CLIENTS, { authorization: `Bearer ${TENANT.key}` });
    let offload: Cost;
    try {
      await finished(http, (await submit(http, TINY.task, TINY.input)).id);
      offload = await measure(stack, jobs, async () => {
        const job = await submit(http, TINY.task, TINY.input);
        if (job.state !== 'completed') await finished(http, job.id);
      });
    } finally {
      http.close();
      await Promise.all([api.stop(), worker.stop()]);
    }
    ctx.log(`redis-cost offload: ${JSON.stringify(offload)}`);

    const rawPrefix = stack.prefix('costraw');
    const rawWorker = await stack.startFixture(
      'bench/fixtures/raw-bullmq-worker.ts',
      rawWorkerEnv(rawPrefix, EXECUTORS, 'burn'),
      /raw worker ready/,
    );
    const queue = new Queue('default', { connection: stack.rawConnection(), prefix: rawPrefix });
    const events = new QueueEvents('default', {
      connection: stack.rawConnection(),
      prefix: rawPrefix,
    });
    let raw: Cost;
    try {
      await events.waitUntilReady();
      await (await queue.add(TINY.task, { input: TINY.input })).waitUntilFinished(events);
      raw = await measure(stack, jobs, async () => {
        const job = await queue.add(TINY.task, { input: TINY.input });
        await job.waitUntilFinished(events);
      });
    } finally {
      await events.close();
      await queue.close();
      await rawWorker.stop();
    }
    ctx.log(`redis-cost raw: ${JSON.stringify(raw)}`);

    const figures: Figure[] = [
      {
        benchmark: 'redis-cost',
        figure: `Redis commands per job, submit → result (${jobs} tiny jobs, ${CLIENTS} clients)`,
        unit: 'commands',
        offload: offload.commandsPerJob,
        baseline: { name: 'raw BullMQ: add, Worker, waitUntilFinished', value: raw.commandsPerJob },
        ratio: { name: '× raw', value: offload.commandsPerJob / raw.commandsPerJob },
        target: `≤ ${TARGET_COMMANDS} × raw`,
        met: offload.commandsPerJob <= TARGET_COMMANDS * raw.commandsPerJob,
      },
      {
        benchmark: 'redis-cost',
        figure: 'Redis CPU per job (main thread, user + system)',
        unit: 'µs',
        offload: offload.cpuUsPerJob,
        baseline: { name: 'raw BullMQ: add, Worker, waitUntilFinished', value: raw.cpuUsPerJob },
        ratio: { name: '× raw', value: offload.cpuUsPerJob / raw.cpuUsPerJob },
        target: `≤ ${TARGET_CPU} × raw`,
        met: offload.cpuUsPerJob <= TARGET_CPU * raw.cpuUsPerJob,
      },
      {
        benchmark: 'redis-cost',
        figure: 'jobs/s one Redis core sustains (10^6 µs ÷ Redis CPU per job)',
        unit: 'jobs/s',
        offload: 1e6 / offload.cpuUsPerJob,
        baseline: { name: 'raw BullMQ', value: 1e6 / raw.cpuUsPerJob },
        ratio: { name: '× raw', value: raw.cpuUsPerJob / offload.cpuUsPerJob },
      },
    ];
    return { figures, details: { clients: CLIENTS, executors: EXECUTORS, offload, raw } };
  },
};

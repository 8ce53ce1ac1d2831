import type { JobView } from '@offload/contract';
import { type BenchContext, type Benchmark, WORKER_NICE } from '../lib/benchmark.ts';
import {
  HttpClient,
  type LoadRequest,
  type OpenLoopResult,
  openLoop,
  until,
} from '../lib/http-client.ts';
import { finished, submit } from '../lib/jobs.ts';
import type { Figure } from '../lib/report.ts';
import type { ApiProcess, BenchProcess } from '../lib/stack.ts';
import { quantile } from '../lib/stats.ts';

/** Requests per second, GET and POST in turn: 225 of each. */
const RATE = 450;
/** Measured part of each window, ms, after WARMUP_MS that is dropped. */
const WINDOW_MS = 8000;
const WARMUP_MS = 1000;
/** Size of one heavy request to the naive app, ms of cpu.burn; two are always in flight. */
const NAIVE_HEAVY_MS = 100;
const TARGET_VS_LOOPS = 1.0;

type Condition = 'idle' | 'busy' | 'loops' | 'loopsNice0' | 'naive';
const CONDITIONS: readonly Condition[] = ['idle', 'busy', 'loops', 'loopsNice0', 'naive'];
const DESCRIPTION: Record<Condition, string> = {
  idle: 'Offload, idle workers',
  busy: 'Offload, every executor burning',
  loops: `idle Offload + busy loops outside at nice ${WORKER_NICE}`,
  loopsNice0: 'idle Offload + busy loops outside at nice 0',
  naive: 'naive Hono app running the task in its handler',
};

/** Requests of the load: a job's view and a submit. Submits are delayed an hour so they never run during the bench. */
function loadFor(jobId: string, delayed: boolean): LoadRequest[] {
  return [
    { name: 'GET', method: 'GET', path: `/v1/jobs/${jobId}` },
    {
      name: 'POST',
      method: 'POST',
      path: '/v1/jobs',
      body: {
        task: 'cpu.burn',
        input: { ms: 0 },
        ...(delayed && { options: { delayMs: 3_600_000 } }),
      },
    },
  ];
}

/**
 * Latency of the API under an open-loop load while every executor burns
 * CPU, against the same API idle, the same API beside plain busy loops (the
 * cores' own contention), and a naive app that computes in its handler.
 */
export const apiLatency: Benchmark = {
  name: 'api-latency-under-load',
  async run(ctx) {
    const { stack, cores } = ctx;
    const windowMs = ctx.quick ? 3000 : WINDOW_MS;
    const warmupMs = ctx.quick ? 500 : WARMUP_MS;
    const durationMs = windowMs + warmupMs;
    const prefix = stack.prefix('lat');
    const api = await stack.startApi({ prefix });
    const worker = await stack.startWorker({ prefix, concurrency: cores });
    const naive = await stack.startFixture(
      'bench/fixtures/naive-api.ts',
      {},
      /naive api listening/,
    );
    const naiveUrl = naive.readyLine.split(' ').at(-1)?.trim() ?? '';
    const naiveHttp = new HttpClient(naiveUrl);
    const probe = await submit(api.http, 'cpu.burn', { ms: 0 }, { delayMs: 3_600_000 });
    const naiveProbe = await naiveHttp.json<{ id: string }>('POST', '/v1/jobs', {
      task: 'cpu.burn',
      input: { ms: 0 },
    });
    const load = (client: HttpClient, requests: LoadRequest[]) =>
      openLoop({ client, requests, ratePerSecond: RATE, durationMs, warmupMs });

    const pooled: Record<Condition, OpenLoopResult[]> = {
      idle: [],
      busy: [],
      loops: [],
      loopsNice0: [],
      naive: [],
    };
    const run: Record<Condition, () => Promise<OpenLoopResult>> = {
      idle: () => load(api.http, loadFor(probe.id, true)),
      busy: () =>
        whileBurning(api, cores, durationMs, () => load(api.http, loadFor(probe.id, true))),
      loops: () =>
        besideLoops(ctx, cores, WORKER_NICE, () => load(api.http, loadFor(probe.id, true))),
      loopsNice0: () => besideLoops(ctx, cores, 0, () => load(api.http, loadFor(probe.id, true))),
      naive: () =>
        whileNaiveComputes(naiveHttp, cores, () => load(naiveHttp, loadFor(naiveProbe.id, false))),
    };
    try {
      // Unmeasured load first: JIT, connections and the processes' own start-up settle before any window.
      await openLoop({
        client: api.http,
        requests: loadFor(probe.id, true),
        ratePerSecond: RATE,
        durationMs: 2000,
        warmupMs: 2000,
      });
      await openLoop({
        client: naiveHttp,
        requests: loadFor(naiveProbe.id, false),
        ratePerSecond: RATE,
        durationMs: 2000,
        warmupMs: 2000,
      });
      for (let round = 0; round < ctx.rounds; round++) {
        // A different order each round, so no condition always follows the same one.
        const order = CONDITIONS.map(
          (_, i) => CONDITIONS[(i + round) % CONDITIONS.length] as Condition,
        );
        for (const condition of order) {
          const result = await run[condition]();
          pooled[condition].push(result);
          ctx.log(
            `api-latency round ${round + 1} ${condition}: GET p99 ${quantile(result.latencies.GET ?? [], 0.99).toFixed(2)} ms, POST p99 ${quantile(result.latencies.POST ?? [], 0.99).toFixed(2)} ms, errors ${JSON.stringify(result.errorStatuses)}`,
          );
        }
      }
    } finally {
      naiveHttp.close();
      await Promise.all([api.stop(), worker.stop(), naive.stop()]);
    }

    const samples = (condition: Condition, name: string) =>
      pooled[condition].flatMap((r) => r.latencies[name] ?? []);
    const p = (condition: Condition, name: string, q: number) =>
      quantile(samples(condition, name), q);
    const figures: Figure[] = [];
    for (const name of ['GET', 'POST']) {
      const route = name === 'GET' ? 'GET /v1/jobs/:id' : 'POST /v1/jobs';
      const busy99 = p('busy', name, 0.99);
      const compare = (base: Condition, q: number, extra: Partial<Figure> = {}): Figure => ({
        benchmark: 'api-latency-under-load',
        figure: `${q === 0.5 ? 'p50' : 'p99'} ${route}, every executor busy`,
        unit: 'ms',
        offload: p('busy', name, q),
        baseline: { name: DESCRIPTION[base], value: p(base, name, q) },
        ratio: { name: 'busy ÷ baseline', value: p('busy', name, q) / p(base, name, q) },
        ...extra,
      });
      figures.push(
        compare('idle', 0.5),
        compare('idle', 0.99),
        compare('loops', 0.99, {
          target: `≤ ${TARGET_VS_LOOPS} × (b)`,
          met: busy99 <= TARGET_VS_LOOPS * p('loops', name, 0.99),
        }),
        compare('loopsNice0', 0.99),
        compare('naive', 0.99),
      );
    }
    const summary = Object.fromEntries(
      CONDITIONS.map((c) => [
        c,
        {
          description: DESCRIPTION[c],
          samples: { GET: samples(c, 'GET').length, POST: samples(c, 'POST').length },
          p50: { GET: p(c, 'GET', 0.5), POST: p(c, 'POST', 0.5) },
          p99: { GET: p(c, 'GET', 0.99), POST: p(c, 'POST', 0.99) },
          errors: pooled[c].reduce((n, r) => n + r.errors, 0),
          errorStatuses: pooled[c].map((r) => r.errorStatuses),
          lateSends: pooled[c].reduce((n, r) => n + r.lateSends, 0),
          p99PerRound: pooled[c].map((r) => ({
            GET: quantile(r.latencies.GET ?? [], 0.99),
            POST: quantile(r.latencies.POST ?? [], 0.99),
          })),
        },
      ]),
    );
    return {
      figures,
      details: {
        ratePerSecond: RATE,
        windowMs,
        warmupMs,
        executors: cores,
        workerNice: WORKER_NICE,
        naiveHeavyMs: NAIVE_HEAVY_MS,
        conditions: summary,
      },
    };
  },
};

/** Runs `measure` while one cpu.burn job per executor runs for the whole of it. */
async function whileBurning<T>(
  api: ApiProcess,
  executors: number,
  durationMs: number,
  measure: () => Promise<T>,
): Promise<T> {
  const burns = await Promise.all(
    Array.from({ length: executors }, () =>
      submit(api.http, 'cpu.burn', { ms: durationMs + 1500 }),
    ),
  );
  await until('every executor burning', async () => {
    const views = await Promise.all(
      burns.map((b) => api.http.json<JobView>('GET', `/v1/jobs/${b.id}`)),
    );
    return views.every((v) => v.state === 'running');
  });
  const result = await measure();
  await Promise.all(burns.map((b) => finished(api.http, b.id)));
  return result;
}

/** Runs `measure` beside `count` busy-loop processes at CPU priority `nice`. */
async function besideLoops<T>(
  ctx: BenchContext,
  count: number,
  nice: number,
  measure: () => Promise<T>,
): Promise<T> {
  const loops: BenchProcess[] = [];
  try {
    for (let i = 0; i < count; i++) {
      loops.push(
        await ctx.stack.startFixture(
          'bench/fixtures/busy-loop.ts',
          { BUSY_NICE: String(nice) },
          /busy loop running/,
        ),
      );
    }
    return await measure();
  } finally {
    await Promise.all(loops.map((l) => l.stop()));
  }
}

/** Runs `measure` while `count` heavy requests are always in flight to the naive app. */
async function whileNaiveComputes<T>(
  http: HttpClient,
  count: number,
  measure: () => Promise<T>,
): Promise<T> {
  let stop = false;
  const heavy = { task: 'cpu.burn', input: { ms: NAIVE_HEAVY_MS } };
  const feeders = Array.from({ length: count }, async () => {
    while (!stop) await http.send('POST', '/v1/jobs', heavy);
  });
  try {
    return await measure();
  } finally {
    stop = true;
    await Promise.all(feeders);
  }
}

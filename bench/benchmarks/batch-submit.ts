import { Queue } from 'bullmq';
import type { Benchmark } from '../lib/benchmark.ts';
import { HttpClient } from '../lib/http-client.ts';
import type { Figure } from '../lib/report.ts';
import { median } from '../lib/stats.ts';

/** Jobs each way submits per round. */
const JOBS = 10_000;
/** Jobs per batch: the API's most. */
const BATCH = 1000;
/** Single submits in flight at once: a busy client fleet. */
const SUBMITTERS = 32;
/** Batches in flight at once. */
const BATCHES_IN_FLIGHT = 2;
const TINY = { task: 'cpu.burn', input: { ms: 0 } };
const TENANT = { tenant: 'bench', key: 'bench-batch-key-0123456789abc' };
const TARGET = 5;

/**
 * Calls `one` `calls` times, `inFlight` at once, where `one` resolves with
 * the jobs it got acknowledged; resolves with jobs per second, and throws
 * unless `jobs` were acknowledged in all.
 */
async function jobsPerSecond(
  jobs: number,
  calls: number,
  inFlight: number,
  one: () => Promise<number>,
): Promise<number> {
  const started = performance.now();
  let acknowledged = 0;
  let sent = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (sent < calls) {
        sent++;
        const n = await one();
        acknowledged += n;
      }
    }),
  );
  if (acknowledged !== jobs) throw new Error(`${acknowledged} of ${jobs} jobs were acknowledged`);
  return jobs / ((performance.now() - started) / 1000);
}

/**
 * Jobs per second acknowledged by the API: POST /v1/jobs/batch with BATCH
 * jobs each, against POST /v1/jobs one job each (SUBMITTERS at once), and
 * raw BullMQ's `addBulk` of BATCH jobs from the bench process (no HTTP, no
 * validation, no quota). No job runs (the one worker serves another queue):
 * the figure is the submit path's.
 * The API runs with an API key, rate limit, quota and fair share on.
 */
export const batchSubmit: Benchmark = {
  name: 'batch-submit',
  async run(ctx) {
    const { stack } = ctx;
    const jobs = ctx.quick ? 2000 : JOBS;
    const rounds: { single: number; batch: number; raw: number }[] = [];
    for (let round = 0; round < ctx.rounds; round++) {
      const prefix = stack.prefix('batch');
      const rawPrefix = stack.prefix('batchraw');
      const api = await stack.startApi({
        prefix,
        env: {
          API_KEYS: `${TENANT.tenant}:${TENANT.key}`,
          API_RATE_LIMIT: String(jobs * 10),
          API_MAX_QUEUED_PER_TENANT: String(3 * jobs),
        },
      });
      // A worker publishes the catalog the API validates against, and serves another queue: nothing runs.
      const worker = await stack.startWorker({
        prefix,
        concurrency: 1,
        env: { WORKER_QUEUES: 'bench-idle' },
      });
      const http = new HttpClient(api.url, SUBMITTERS, { authorization: `Bearer ${TENANT.key}` });
      const queue = new Queue('default', {
        connection: stack.rawConnection(),
        prefix: rawPrefix,
      });
      try {
        const accepted = async (path: string, body: unknown, count: number) => {
          const answer = await http.send('POST', path, body);
          if (answer.status !== 202)
            throw new Error(`${path} answered ${answer.status}: ${answer.body}`);
          return count;
        };
        const batchBody = { jobs: Array.from({ length: BATCH }, () => TINY) };
        // Unmeasured first: connections, JIT, the catalog's first read.
        await accepted('/v1/jobs/batch', batchBody, BATCH);
        const single = await jobsPerSecond(jobs, jobs, SUBMITTERS, () =>
          accepted('/v1/jobs', TINY, 1),
        );
        const batch = await jobsPerSecond(jobs, jobs / BATCH, BATCHES_IN_FLIGHT, () =>
          accepted('/v1/jobs/batch', batchBody, BATCH),
        );
        const raw = await jobsPerSecond(jobs, jobs / BATCH, BATCHES_IN_FLIGHT, async () => {
          await queue.addBulk(
            Array.from({ length: BATCH }, () => ({ name: TINY.task, data: { input: TINY.input } })),
          );
          return BATCH;
        });
        rounds.push({ single, batch, raw });
        ctx.log(`batch-submit round ${round + 1}: ${JSON.stringify(rounds.at(-1))}`);
      } finally {
        http.close();
        await queue.close();
        await Promise.all([api.stop(), worker.stop()]);
        await stack.deleteKeys(prefix);
        await stack.deleteKeys(rawPrefix);
      }
    }
    const single = median(rounds.map((r) => r.single));
    const batch = median(rounds.map((r) => r.batch));
    const raw = median(rounds.map((r) => r.raw));
    const figures: Figure[] = [
      {
        benchmark: 'batch-submit',
        figure: `jobs/s acknowledged, POST /v1/jobs/batch of ${BATCH}`,
        unit: 'jobs/s',
        offload: batch,
        baseline: { name: `POST /v1/jobs, ${SUBMITTERS} at once`, value: single },
        ratio: { name: '× single submits', value: batch / single },
        target: `≥ ${TARGET} × single`,
        met: batch >= TARGET * single,
      },
      {
        benchmark: 'batch-submit',
        figure: 'the same against raw BullMQ',
        unit: 'jobs/s',
        offload: batch,
        baseline: { name: `raw BullMQ addBulk of ${BATCH}, no HTTP`, value: raw },
        ratio: { name: '× raw', value: batch / raw },
      },
    ];
    return { figures, details: { jobs, batch: BATCH, submitters: SUBMITTERS, rounds } };
  },
};

import { offloadKeys } from '@offload/queue';
import { Queue } from 'bullmq';
import { type Benchmark, rawWorkerEnv } from '../lib/benchmark.ts';
import { until } from '../lib/http-client.ts';
import { submit } from '../lib/jobs.ts';
import type { BenchStack } from '../lib/stack.ts';
import { median, sleep } from '../lib/stats.ts';

/** Executors of the measured worker. */
const EXECUTORS = 2;
/** Finished jobs kept per measurement of Redis bytes per job. */
const JOBS = 2000;
const SUBMITTERS = 32;
/** Time a process is left alone before its RSS is read, ms. */
const SETTLE_MS = 2000;
const TARGET_WORKER_MB = 150;
const TARGET_BYTES_PER_JOB = 1536;
const MB = 1024 * 1024;
/** Redis' own default hash-max-listpack-value, B, tried beside the project's (scripts/redis-server.ts). */
const REDIS_DEFAULT_LISTPACK_VALUE = 64;

async function usedMemory(stack: BenchStack): Promise<number> {
  const info = await stack.redis.info('memory');
  return Number(/used_memory:(\d+)/.exec(info)?.[1]);
}

/** Bytes of one key (0 when absent). */
async function keyBytes(stack: BenchStack, key: string): Promise<number> {
  return Number((await stack.redis.memory('USAGE', key, 'SAMPLES', '0')) ?? 0);
}

/**
 * Runs `count` tiny jobs to completion through `submitOne`; answers Redis'
 * used_memory growth per job, in all and without the queue's event stream
 * (which BullMQ caps at about 10,000 entries, so it does not grow per job for long).
 */
async function bytesPerJob(
  stack: BenchStack,
  queueKey: (name: string) => string,
  count: number,
  submitOne: () => Promise<unknown>,
): Promise<{ all: number; withoutEvents: number }> {
  const events = queueKey('events');
  const completed = () => stack.redis.zcard(queueKey('completed'));
  const [memBefore, eventsBefore, doneBefore] = [
    await usedMemory(stack),
    await keyBytes(stack, events),
    await completed(),
  ];
  let next = 0;
  await Promise.all(
    Array.from({ length: SUBMITTERS }, async () => {
      while (next < count) {
        next++;
        await submitOne();
      }
    }),
  );
  await until('jobs to complete', async () => (await completed()) - doneBefore >= count, 120_000);
  await sleep(500);
  const grown = (await usedMemory(stack)) - memBefore;
  const eventsGrown = (await keyBytes(stack, events)) - eventsBefore;
  return { all: grown / count, withoutEvents: (grown - eventsGrown) / count };
}

/**
 * RSS of an idle API and an idle worker (production bundles), and the Redis
 * memory each retained finished job costs, with raw BullMQ's own job record
 * (default options) measured beside it for reference.
 */
export const memory: Benchmark = {
  name: 'memory',
  async run(ctx) {
    const { stack } = ctx;
    const jobs = ctx.quick ? 500 : JOBS;
    const listpackValue = Number(
      ((await stack.redis.config('GET', 'hash-max-listpack-value')) as string[])[1],
    );
    const rounds: Record<string, number>[] = [];
    for (let round = 0; round < ctx.rounds; round++) {
      const prefix = stack.prefix('mem');
      const rawPrefix = stack.prefix('memraw');
      const api = await stack.startApi({ prefix });
      const worker = await stack.startWorker({ prefix, concurrency: EXECUTORS });
      const rawWorker = await stack.startFixture(
        'bench/fixtures/raw-bullmq-worker.ts',
        rawWorkerEnv(rawPrefix, EXECUTORS, 'burn'),
        /raw worker ready/,
      );
      const queue = new Queue('default', {
        connection: stack.rawConnection(),
        prefix: rawPrefix,
      });
      try {
        // A few requests first: an API that has answered is the one that matters, not a cold one.
        for (let i = 0; i < 50; i++) await api.http.send('GET', '/healthz');
        await sleep(SETTLE_MS);
        const r: Record<string, number> = {
          apiRssMb: stack.rssBytes(api.pid) / MB,
          workerRssMb: stack.rssBytes(worker.pid) / MB,
        };
        // Offload's queues carry their hash tag (keys.ts), raw BullMQ's do not.
        const offloadKey = (name: string) => offloadKeys(prefix).bullKey('default', name);
        const rawKey = (name: string) => `${rawPrefix}:default:${name}`;
        const offload = await bytesPerJob(stack, offloadKey, jobs, () =>
          submit(api.http, 'cpu.burn', { ms: 0 }),
        );
        const raw = await bytesPerJob(stack, rawKey, jobs, () =>
          queue.add('cpu.burn', { task: 'cpu.burn', input: { ms: 0 } }),
        );
        r.bytesPerJob = offload.all;
        r.bytesPerJobWithoutEvents = offload.withoutEvents;
        r.rawBytesPerJob = raw.all;
        r.rawBytesPerJobWithoutEvents = raw.withoutEvents;
        r.workerRssAfterJobsMb = stack.rssBytes(worker.pid) / MB;
        if (stack.redisKind === 'private') {
          // Redis keeps a hash compact (listpack) only while every value is ≤ hash-max-listpack-value;
          // Offload's job hash has values longer than Redis' default (data, opts). What the default costs:
          await stack.redis.config(
            'SET',
            'hash-max-listpack-value',
            String(REDIS_DEFAULT_LISTPACK_VALUE),
          );
          try {
            const loose = await bytesPerJob(stack, offloadKey, jobs, () =>
              submit(api.http, 'cpu.burn', { ms: 0 }),
            );
            r.bytesPerJobRedisDefault = loose.all;
          } finally {
            await stack.redis.config('SET', 'hash-max-listpack-value', String(listpackValue));
          }
        }
        ctx.log(`memory round ${round + 1}: ${JSON.stringify(r)}`);
        rounds.push(r);
      } finally {
        await queue.close();
        await Promise.all([api.stop(), worker.stop(), rawWorker.stop()]);
        await stack.deleteKeys(prefix);
        await stack.deleteKeys(rawPrefix);
      }
    }
    const of = (key: string) => median(rounds.map((r) => r[key] as number));
    return {
      figures: [
        { benchmark: 'memory', figure: 'RSS of an idle API', unit: 'MB', offload: of('apiRssMb') },
        {
          benchmark: 'memory',
          figure: `RSS of an idle worker, ${EXECUTORS} executors`,
          unit: 'MB',
          offload: of('workerRssMb'),
          target: `≤ ${TARGET_WORKER_MB} MB`,
          met: of('workerRssMb') <= TARGET_WORKER_MB,
        },
        {
          benchmark: 'memory',
          figure: `Redis bytes per retained finished job (${jobs} tiny jobs, hash-max-listpack-value ${listpackValue})`,
          unit: 'B/job',
          offload: of('bytesPerJob'),
          baseline: { name: 'raw BullMQ job, default options', value: of('rawBytesPerJob') },
          ratio: { name: '× raw', value: of('bytesPerJob') / of('rawBytesPerJob') },
          target: `≤ ${TARGET_BYTES_PER_JOB} B`,
          met: of('bytesPerJob') <= TARGET_BYTES_PER_JOB,
        },
        {
          benchmark: 'memory',
          figure: 'the same, without the capped event stream',
          unit: 'B/job',
          offload: of('bytesPerJobWithoutEvents'),
          baseline: {
            name: 'raw BullMQ job, default options',
            value: of('rawBytesPerJobWithoutEvents'),
          },
          ratio: {
            name: '× raw',
            value: of('bytesPerJobWithoutEvents') / of('rawBytesPerJobWithoutEvents'),
          },
        },
        ...(rounds.every((r) => r.bytesPerJobRedisDefault !== undefined)
          ? [
              {
                benchmark: 'memory',
                figure: `the same with Redis' default hash-max-listpack-value ${REDIS_DEFAULT_LISTPACK_VALUE}`,
                unit: 'B/job',
                offload: of('bytesPerJobRedisDefault'),
              },
            ]
          : []),
      ],
      details: {
        listpackValueBytes: listpackValue,
        redisDefaultListpackValueBytes: REDIS_DEFAULT_LISTPACK_VALUE,
        executors: EXECUTORS,
        jobs,
        settleMs: SETTLE_MS,
        rounds,
      },
    };
  },
};

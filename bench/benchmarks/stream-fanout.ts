import { offloadKeys } from '@offload/queue';
import { Queue } from 'bullmq';
import type { Benchmark } from '../lib/benchmark.ts';
import { HttpClient, type OpenLoopResult, openLoop } from '../lib/http-client.ts';
import { finished } from '../lib/jobs.ts';
import type { Figure } from '../lib/report.ts';
import type { BenchStack } from '../lib/stack.ts';
import { quantile } from '../lib/stats.ts';

/** Event streams open on the one job in the measured condition. */
const STREAMS = 1000;
/** Length of the followed job (cpu.burn, which reports progress about every 100 ms), ms. */
const BURN_MS = 6000;
/** The other tenant's GETs per second while the job runs. */
const RATE = 200;
const STREAMER = { tenant: 'streamer', key: 'bench-streamer-key-0123456789' };
const OTHER = { tenant: 'other', key: 'bench-other-key-0123456789' };
const HOUR_MS = 3_600_000;

type Condition = 'none' | 'one' | 'many';
const CONDITIONS: readonly Condition[] = ['none', 'one', 'many'];
const FOLLOWERS: Record<Condition, number> = { none: 0, one: 1, many: STREAMS };

interface Sample {
  /** Redis commands (all clients) from the job's start until every stream had its final event, with no other load. */
  commands: number;
  /** Events BullMQ recorded for the job in that time (active, progress…, completed). */
  jobEvents: number;
  get: OpenLoopResult;
}

async function commandsProcessed(stack: BenchStack): Promise<number> {
  return Number(/total_commands_processed:(\d+)/.exec(await stack.redis.info('stats'))?.[1]);
}

/**
 * Streams as the one resource a tenant could hoard: `STREAMS` event streams on
 * one job that reports progress, and what they cost Redis per job event
 * (against one stream) and another tenant's GET /v1/jobs/:id (against no
 * stream at all).
 */
export const streamFanout: Benchmark = {
  name: 'stream-fanout',
  async run(ctx) {
    const { stack } = ctx;
    const burnMs = ctx.quick ? 4000 : BURN_MS;
    const prefix = stack.prefix('fan');
    const api = await stack.startApi({
      prefix,
      env: {
        API_KEYS: `${STREAMER.tenant}:${STREAMER.key},${OTHER.tenant}:${OTHER.key}`,
        API_MAX_STREAMS_PER_TENANT: String(STREAMS),
      },
    });
    const worker = await stack.startWorker({ prefix, concurrency: 1 });
    const streamer = new HttpClient(api.url, 64, { authorization: `Bearer ${STREAMER.key}` });
    const other = new HttpClient(api.url, 64, { authorization: `Bearer ${OTHER.key}` });
    // Offload's queue under its hash-tagged BullMQ prefix (keys.ts), where the API adds the job.
    const queue = new Queue('default', {
      connection: stack.redis,
      prefix: offloadKeys(prefix).queuePrefix('default'),
    });
    const probe = await other.json<{ id: string }>('POST', '/v1/jobs', {
      task: 'cpu.burn',
      input: { ms: 0 },
      options: { delayMs: HOUR_MS },
    });
    const pooled: Record<Condition, Sample[]> = { none: [], one: [], many: [] };

    /** Runs one followed job to its end; with `load`, the other tenant's GETs meanwhile. */
    const followedJob = async (condition: Condition, load: boolean) => {
      const job = await streamer.json<{ id: string }>('POST', '/v1/jobs', {
        task: 'cpu.burn',
        input: { ms: burnMs },
        options: { delayMs: HOUR_MS },
      });
      // The streams live in a process of their own: reading their events must not delay the GETs timed here.
      const followers =
        FOLLOWERS[condition] > 0
          ? await stack.startFixture(
              'bench/fixtures/stream-followers.ts',
              {
                FOLLOW_URL: api.url,
                FOLLOW_KEY: STREAMER.key,
                FOLLOW_JOB: job.id,
                FOLLOW_STREAMS: String(FOLLOWERS[condition]),
              },
              /streams open/,
            )
          : null;
      const eventsKey = offloadKeys(prefix).bullKey('default', 'events');
      const [lastEvent] = await stack.redis.xrevrange(eventsKey, '+', '-', 'COUNT', 1);
      const before = await commandsProcessed(stack);
      const delayed = await queue.getJob(job.id);
      if (!delayed)
        throw new Error(`job ${job.id} is not in BullMQ's queue ${queue.qualifiedName}`);
      await delayed.promote();
      const get = load
        ? openLoop({
            client: other,
            requests: [{ name: 'GET', method: 'GET', path: `/v1/jobs/${probe.id}` }],
            ratePerSecond: RATE,
            durationMs: burnMs - 1000,
            warmupMs: 500,
          })
        : null;
      if (followers) {
        const fewest = Number(
          (await followers.process.waitForLine(/streams done/, burnMs + 60_000)).split(' ').at(-1),
        );
        if (!(fewest >= 3)) throw new Error(`a stream ended early: ${fewest} events`);
        await followers.stop();
      }
      // A long-poll, not a poll: its few commands do not blur the count.
      await finished(streamer, job.id);
      const commands = (await commandsProcessed(stack)) - before;
      const entries = await stack.redis.xrange(
        eventsKey,
        lastEvent ? `(${lastEvent[0]}` : '-',
        '+',
      );
      const jobEvents = entries.filter(([, fields]) => {
        const at = fields.indexOf('jobId');
        return at >= 0 && fields[at + 1] === job.id;
      }).length;
      return { commands, jobEvents, get: await get };
    };

    /** Redis commands counted on a job run alone; the other tenant's GETs timed on a second run. */
    const measure = async (condition: Condition): Promise<Sample> => {
      const { commands, jobEvents } = await followedJob(condition, false);
      const { get } = await followedJob(condition, true);
      if (!get) throw new Error('no load was run');
      ctx.log(
        `stream-fanout ${condition}: ${FOLLOWERS[condition]} streams, ${commands} commands for ${jobEvents} job events, other tenant's GET p99 ${quantile(get.latencies.GET ?? [], 0.99).toFixed(2)} ms`,
      );
      return { commands, jobEvents, get };
    };

    try {
      // Unmeasured first: JIT, connections and start-up settle.
      await measure('one');
      for (let round = 0; round < ctx.rounds; round++) {
        const order = CONDITIONS.map(
          (_, i) => CONDITIONS[(i + round) % CONDITIONS.length] as Condition,
        );
        for (const condition of order) pooled[condition].push(await measure(condition));
      }
    } finally {
      streamer.close();
      other.close();
      await queue.close();
      await Promise.all([api.stop(), worker.stop()]);
    }

    const perEvent = (c: Condition) => {
      const commands = pooled[c].reduce((n, s) => n + s.commands, 0);
      const events = pooled[c].reduce((n, s) => n + s.jobEvents, 0);
      return commands / events;
    };
    const p99 = (c: Condition) =>
      quantile(
        pooled[c].flatMap((s) => s.get.latencies.GET ?? []),
        0.99,
      );
    const figures: Figure[] = [
      {
        benchmark: 'stream-fanout',
        figure: `Redis commands per job event, ${STREAMS} streams on the job`,
        unit: 'commands',
        offload: perEvent('many'),
        baseline: { name: 'one stream on the job', value: perEvent('one') },
        ratio: { name: `${STREAMS} ÷ 1`, value: perEvent('many') / perEvent('one') },
        target: '≤ 1.5 × (b)',
        met: perEvent('many') <= 1.5 * perEvent('one'),
      },
      {
        benchmark: 'stream-fanout',
        figure: `p99 GET /v1/jobs/:id of another tenant, ${STREAMS} streams open`,
        unit: 'ms',
        offload: p99('many'),
        baseline: { name: 'no stream open', value: p99('none') },
        ratio: { name: 'streams ÷ none', value: p99('many') / p99('none') },
        target: '≤ 2 × (b)',
        met: p99('many') <= 2 * p99('none'),
      },
    ];
    return {
      figures,
      details: {
        streams: STREAMS,
        burnMs,
        getRatePerSecond: RATE,
        conditions: Object.fromEntries(
          CONDITIONS.map((c) => [
            c,
            {
              streams: FOLLOWERS[c],
              commandsPerJobEvent: perEvent(c),
              rounds: pooled[c].map((s) => ({
                commands: s.commands,
                jobEvents: s.jobEvents,
                getP50: quantile(s.get.latencies.GET ?? [], 0.5),
                getP99: quantile(s.get.latencies.GET ?? [], 0.99),
                errors: s.get.errorStatuses,
              })),
              getP99: p99(c),
            },
          ]),
        ),
      },
    };
  },
};

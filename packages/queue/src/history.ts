import type { RedisClient } from './connection.ts';
import type { OffloadKeys } from './keys.ts';

/**
 * Throughput and latency history for the dashboard, kept in Redis so it
 * survives a dashboard restart. Workers add each finished attempt to a hash
 * per minute: counters by outcome and a histogram of wait and run times per
 * queue and task. Each minute expires after HISTORY_TTL_MS, so memory stays
 * bounded: a few dozen small fields per task and minute at most.
 */

/** How long each minute of history is kept, ms. */
export const HISTORY_TTL_MS = 6 * 60 * 60 * 1000;
const MINUTE_MS = 60_000;
/** How often a worker writes the attempts it counted, ms. */
const FLUSH_EVERY_MS = 1000;

export type AttemptOutcome = 'completed' | 'failed' | 'canceled';
const OUTCOMES: readonly AttemptOutcome[] = ['completed', 'failed', 'canceled'];

/** Upper bounds of the histogram buckets, ms; the last bucket holds everything longer. */
export const LATENCY_BOUNDS_MS = [
  5,
  10,
  25,
  50,
  100,
  250,
  500,
  1000,
  2500,
  5000,
  10_000,
  30_000,
  60_000,
  300_000,
  1_800_000,
  Number.POSITIVE_INFINITY,
] as const;

export interface FinishedAttempt {
  queue: string;
  task: string;
  outcome: AttemptOutcome;
  /** From runnable (enqueued, or its delay over) to started; unset for retries, whose wait BullMQ does not record, ms. */
  waitMs?: number;
  /** From started to finished, ms. */
  runMs: number;
  /** When it finished, ms since epoch. */
  finishedAt: number;
}

const bucketOf = (ms: number) => LATENCY_BOUNDS_MS.findIndex((bound) => ms <= bound);
const minuteOf = (ms: number) => Math.floor(ms / MINUTE_MS);
// Queue and task names never hold a space (task names are dotted identifiers, queue names are key parts).
const field = (...parts: (string | number)[]) => parts.join(' ');

/**
 * Counts finished attempts in memory and adds them to the history once every
 * FLUSH_EVERY_MS, in one pipeline. Writing each attempt on its own cost a
 * MULTI per job on the worker's connection: about 70 µs of main-thread CPU
 * per job, because ioredis copies the Lua commands BullMQ defines on that
 * connection into every pipeline it builds. A worker that dies loses at most
 * the last second of counts; the history is a dashboard chart, not a ledger.
 */
export class HistoryRecorder {
  /** history key → field → count not yet written */
  private pending = new Map<string, Map<string, number>>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: OffloadKeys,
    onError: (err: Error) => void = () => {},
    flushEveryMs = FLUSH_EVERY_MS,
  ) {
    this.timer = setInterval(() => this.flush().catch(onError), flushEveryMs);
    this.timer.unref();
  }

  add(attempt: FinishedAttempt): void {
    const key = this.keys.history(minuteOf(attempt.finishedAt));
    let counts = this.pending.get(key);
    if (!counts) {
      counts = new Map();
      this.pending.set(key, counts);
    }
    const { queue, task } = attempt;
    const fields = [
      field(queue, task, attempt.outcome),
      field(queue, task, 'run', bucketOf(Math.max(0, attempt.runMs))),
    ];
    if (attempt.waitMs !== undefined) {
      fields.push(field(queue, task, 'wait', bucketOf(Math.max(0, attempt.waitMs))));
    }
    for (const name of fields) counts.set(name, (counts.get(name) ?? 0) + 1);
  }

  /** Writes what was counted since the last flush. Counts whose write failed are lost. */
  async flush(): Promise<void> {
    if (this.pending.size === 0) return;
    const pending = this.pending;
    this.pending = new Map();
    const pipeline = this.redis.pipeline();
    for (const [key, counts] of pending) {
      for (const [name, count] of counts) pipeline.hincrby(key, name, count);
      pipeline.pexpire(key, HISTORY_TTL_MS);
    }
    const results = (await pipeline.exec()) ?? [];
    const failed = results.find(([err]) => err)?.[0];
    if (failed) throw failed;
  }

  /** Stops the timer and writes what is left. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }
}

/** One step of a series. Rates are per minute; a percentile is null when nothing was measured. */
export interface HistoryPoint {
  /** Start of the step, ms since epoch. */
  at: number;
  completedPerMinute: number;
  failedPerMinute: number;
  canceledPerMinute: number;
  waitP50Ms: number | null;
  waitP95Ms: number | null;
  runP50Ms: number | null;
  runP95Ms: number | null;
}

export interface HistorySeries {
  queue: string;
  /** null: every task of the queue together. */
  task: string | null;
  points: HistoryPoint[];
}

export interface History {
  /** Length of one step, minutes. */
  stepMinutes: number;
  series: HistorySeries[];
}

/** Counters of one series within one step. */
interface Tally {
  outcomes: Record<AttemptOutcome, number>;
  wait: number[];
  run: number[];
}

const emptyTally = (): Tally => ({
  outcomes: { completed: 0, failed: 0, canceled: 0 },
  wait: LATENCY_BOUNDS_MS.map(() => 0),
  run: LATENCY_BOUNDS_MS.map(() => 0),
});

/**
 * The percentile `q` (0–1) of a histogram, interpolated linearly inside its
 * bucket; a value in the open last bucket reads as that bucket's lower bound, ms.
 */
export function percentile(counts: readonly number[], q: number): number | null {
  const total = counts.reduce((sum, n) => sum + n, 0);
  if (total === 0) return null;
  const rank = q * total;
  let below = 0;
  for (const [i, n] of counts.entries()) {
    if (n > 0 && below + n >= rank) {
      const lower = i === 0 ? 0 : (LATENCY_BOUNDS_MS[i - 1] as number);
      const upper = LATENCY_BOUNDS_MS[i] as number;
      if (!Number.isFinite(upper)) return lower;
      return lower + ((upper - lower) * Math.max(0, rank - below)) / n;
    }
    below += n;
  }
  return null;
}

/**
 * The last `hours` of history in 60 steps, one series per queue and one per
 * task, sorted by queue then task. Reads one hash per minute in one pipeline.
 */
export async function readHistory(
  redis: RedisClient,
  keys: OffloadKeys,
  hours: number,
  now = Date.now(),
): Promise<History> {
  const stepMinutes = Math.max(1, Math.round(hours));
  const steps = Math.round((hours * 60) / stepMinutes);
  const lastMinute = minuteOf(now);
  const firstMinute = lastMinute - steps * stepMinutes + 1;
  const pipeline = redis.pipeline();
  for (let minute = firstMinute; minute <= lastMinute; minute++) {
    pipeline.hgetall(keys.history(minute));
  }
  const hashes = ((await pipeline.exec()) ?? []).map(
    ([err, hash]) => (err ? {} : hash) as Record<string, string>,
  );

  // series id ("queue" or "queue task") → one tally per step
  const tallies = new Map<string, Tally[]>();
  const tallyOf = (id: string, step: number): Tally => {
    let list = tallies.get(id);
    if (!list) {
      list = Array.from({ length: steps }, emptyTally);
      tallies.set(id, list);
    }
    return list[step] as Tally;
  };
  for (const [offset, hash] of hashes.entries()) {
    const step = Math.floor(offset / stepMinutes);
    for (const [name, value] of Object.entries(hash)) {
      const [queue = '', task = '', kind = '', bucket] = name.split(' ');
      const count = Number(value);
      for (const tally of [tallyOf(queue, step), tallyOf(field(queue, task), step)]) {
        if (kind === 'wait' || kind === 'run') {
          const counts = tally[kind];
          const i = Number(bucket);
          if (i >= 0 && i < counts.length) counts[i] = (counts[i] ?? 0) + count;
        } else if (OUTCOMES.includes(kind as AttemptOutcome))
          tally.outcomes[kind as AttemptOutcome] += count;
      }
    }
  }

  const series = [...tallies.entries()].map(([id, list]): HistorySeries => {
    const [queue = '', task] = id.split(' ');
    return {
      queue,
      task: task ?? null,
      points: list.map((tally, step) => ({
        at: (firstMinute + step * stepMinutes) * MINUTE_MS,
        completedPerMinute: tally.outcomes.completed / stepMinutes,
        failedPerMinute: tally.outcomes.failed / stepMinutes,
        canceledPerMinute: tally.outcomes.canceled / stepMinutes,
        waitP50Ms: percentile(tally.wait, 0.5),
        waitP95Ms: percentile(tally.wait, 0.95),
        runP50Ms: percentile(tally.run, 0.5),
        runP95Ms: percentile(tally.run, 0.95),
      })),
    };
  });
  return {
    stepMinutes,
    series: series.sort(
      (a, b) => a.queue.localeCompare(b.queue) || (a.task ?? '').localeCompare(b.task ?? ''),
    ),
  };
}

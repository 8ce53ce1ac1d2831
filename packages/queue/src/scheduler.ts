import { isRedisUnavailable } from './connection.ts';
import { nextFiring } from './schedule-timing.ts';
import type { Firing, ScheduleRecord, Schedules } from './schedules.ts';

/**
 * The firing loop every API process runs. Each tick it reads the schedules
 * due, claims each firing with a compare-and-set on the due index (exactly
 * one process wins it, see schedules.ts) and submits its job through the
 * normal submit path under an Idempotency-Key made of the schedule and the
 * firing time. A process that dies between claim and submit leaves the
 * firing pending; another one retakes it after PENDING_RETRY_MS and submits
 * under the same key, so the job is made once: never lost, never twice.
 *
 * Firings missed while no process ran are coalesced: the first claim after
 * the pause makes one job (for the earliest missed firing) and moves the
 * schedule to its next firing after now (see nextFiring).
 */

/** How often the due index is read, ms: a firing starts at most this late. */
export const FIRING_TICK_MS = 200;
/** How long a claimed firing may stay unsettled before another process submits it again, ms. */
export const PENDING_RETRY_MS = 5000;
/** Firings claimed per tick, at most; the rest wait for the next tick. */
const FIRINGS_PER_TICK = 100;

export interface SchedulerOptions {
  schedules: Schedules;
  /**
   * Submits the firing's job under `idempotencyKey` (the same for every retry
   * of one firing) and returns its id. A throw that is not Redis being
   * unreachable skips the firing and is shown as the schedule's `lastError`.
   */
  submit(record: ScheduleRecord, idempotencyKey: string): Promise<string>;
  onError(err: Error, firing?: Firing): void;
  /** Default FIRING_TICK_MS. */
  tickMs?: number;
}

/**
 * The Idempotency-Key of a firing. It holds spaces, which a client's key may
 * not (see the API's idempotencyKeySchema), so no request can take it.
 */
export const firingKey = ({ scheduleId, firedAt }: Firing) => `schedule ${scheduleId} ${firedAt}`;

export class Scheduler {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;

  constructor(private readonly options: SchedulerOptions) {}

  start(): this {
    const tick = () => {
      if (this.stopped) return;
      this.running = this.tick()
        .catch((err: Error) => {
          if (!isRedisUnavailable(err)) this.options.onError(err);
        })
        .finally(() => {
          this.running = null;
          if (this.stopped) return;
          this.timer = setTimeout(tick, this.options.tickMs ?? FIRING_TICK_MS);
          this.timer.unref();
        });
    };
    tick();
    return this;
  }

  /** Stops claiming; resolves once the firing under way is settled. */
  async close(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }

  private async tick(): Promise<void> {
    const { schedules } = this.options;
    const now = Date.now();
    const fired: Promise<void>[] = [];
    for (const { record, firedAt } of await schedules.due(now, FIRINGS_PER_TICK)) {
      const firing = { scheduleId: record.id, firedAt };
      if (await schedules.claim(firing, nextFiring(record.timing, firedAt, now), now)) {
        fired.push(this.fire(firing, record));
      }
    }
    for (const firing of await schedules.retakeStale(
      now - PENDING_RETRY_MS,
      now,
      FIRINGS_PER_TICK,
    )) {
      const record = await schedules.record(firing.scheduleId);
      fired.push(record ? this.fire(firing, record) : schedules.settle(firing, { error: '' }));
    }
    await Promise.all(fired);
  }

  /** Submits a claimed firing's job and settles the firing, or leaves it pending while Redis is away. */
  private async fire(firing: Firing, record: ScheduleRecord): Promise<void> {
    const { schedules, submit, onError } = this.options;
    let outcome: { jobId: string } | { error: string };
    try {
      outcome = { jobId: await submit(record, firingKey(firing)) };
    } catch (err) {
      if (isRedisUnavailable(err)) return; // retaken after PENDING_RETRY_MS
      onError(err as Error, firing);
      outcome = { error: `${new Date(firing.firedAt).toISOString()}: ${(err as Error).message}` };
    }
    await schedules.settle(firing, outcome).catch((err: Error) => {
      if (!isRedisUnavailable(err)) onError(err, firing);
    });
  }
}

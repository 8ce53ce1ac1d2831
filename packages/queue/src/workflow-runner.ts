import { createRedis, guardRedis, type RedisClient, type RedisTarget } from './connection.ts';
import type { OffloadKeys } from './keys.ts';

/**
 * When an API process advances workflows: at once when a worker says a step
 * ended (a message on keys.workflowsNudgeChannel), and every TICK_MS anyway
 * for the workflows due in keys.workflowsDue (a message lost, a recheck).
 */

/** How often each API process looks for workflows due besides the nudges it hears, ms: how long a next step waits at most when the message of a nudge is lost. */
const TICK_MS = 100;
/** Most workflows one process advances per tick. */
const BATCH = 20;
/** Workflows one process advances at once: each waits on Redis most of the time, not on the CPU. */
const ADVANCE_AT_ONCE = 4;
/** After a tick that failed (Redis down), the next one waits this long, ms. */
const RETRY_MS = 1000;

/**
 * Tells the workflow's advancers that one of its steps has ended (called by
 * the worker that ran it): due now, and said on the channel they listen to so
 * that one advances it at once rather than at its next tick. A message lost
 * (no API process listening) leaves it due: the next tick takes it.
 */
export async function nudgeWorkflow(
  redis: RedisClient,
  keys: OffloadKeys,
  id: string,
): Promise<void> {
  await redis.zadd(keys.workflowsDue, Date.now(), id);
  await redis.publish(keys.workflowsNudgeChannel, id);
}

/** One API process's advancing of workflows (see the top of this file). */
export class WorkflowRunner {
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private ticking = false;
  /** A nudge came during a tick. */
  private woken = false;
  private subscriber: RedisClient | null = null;
  private onError: (err: unknown) => void = () => {};

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: OffloadKeys,
    /** Where the nudges' subscriber connects. */
    private readonly target: RedisTarget,
    /** Advances one workflow unless another process is at it (false then). */
    private readonly advance: (id: string) => Promise<boolean>,
  ) {}

  /**
   * Advances due workflows every TICK_MS, and at once when a worker says a
   * step ended, until stop(); `onError` hears of a tick that failed (Redis
   * down included: the caller decides what is worth a log line).
   */
  start(onError: (err: unknown) => void): void {
    this.stopped = false;
    this.onError = onError;
    // A patient connection of its own (the API's fails fast): it subscribes once Redis answers,
    // and again after each reconnect; until then the ticks carry on alone.
    const subscriber = createRedis(this.target, 'worker');
    subscriber.on('message', () => this.wake());
    subscriber.subscribe(this.keys.workflowsNudgeChannel).catch(() => {});
    this.subscriber = subscriber;
    this.schedule(TICK_MS);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.subscriber?.disconnect();
  }

  private schedule(ms: number): void {
    if (!this.stopped) this.timer = setTimeout(() => void this.tick(), ms);
  }

  private async tick(): Promise<void> {
    this.timer = null;
    this.ticking = true;
    let wait = TICK_MS;
    try {
      await this.advanceDue();
    } catch (err) {
      wait = RETRY_MS;
      this.onError(err);
    }
    this.ticking = false;
    // Woken while at it: a step ended after the due workflows were read.
    if (this.woken && wait === TICK_MS) wait = 0;
    this.woken = false;
    this.schedule(wait);
  }

  /** A step ended somewhere: tick now, or right after the tick under way. */
  private wake(): void {
    if (this.stopped) return;
    if (this.ticking) {
      this.woken = true;
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.schedule(0);
  }

  /**
   * Advances the workflows due, ADVANCE_AT_ONCE at a time, in an order of
   * this process's own: every process reads the same first BATCH, and taking
   * them in one order would make each wait on the others' locks.
   */
  private async advanceDue(): Promise<void> {
    const due = await guardRedis(this.redis, () =>
      this.redis.zrangebyscore(this.keys.workflowsDue, '-inf', Date.now(), 'LIMIT', 0, BATCH),
    );
    for (let i = due.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [due[i], due[j]] = [due[j] as string, due[i] as string];
    }
    const next = () => due.pop();
    await Promise.all(
      Array.from({ length: ADVANCE_AT_ONCE }, async () => {
        for (let id = next(); id !== undefined && !this.stopped; id = next()) {
          await this.advance(id);
        }
      }),
    );
  }
}

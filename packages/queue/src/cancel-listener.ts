import type { RedisClient } from './connection.ts';
import type { OffloadKeys } from './keys.ts';

/** How long an announced cancel is remembered, ms: far longer than a job takes from its fetch to its executor. */
const REMEMBERED_MS = 120_000;
/** Most announced cancels remembered at once. */
const REMEMBERED_MAX = 100_000;

/**
 * A worker's ear for cancels. BullMQ has no remote cancel, so the API records
 * the cancel (a key), marks the job's hash (job-view.ts markJobCanceled) and
 * then announces it (pub/sub). A job fetched after the mark carries it; one
 * fetched before hears the announcement, while it runs or, when it came
 * before the job reached its runner, from what this listener remembers
 * (wasAnnounced). So no job start waits on Redis for a cancel check.
 */
export class CancelListener {
  /** Job id → when its cancel was announced, oldest first. */
  private readonly announced = new Map<string, number>();

  private constructor(private readonly subscriber: RedisClient) {}

  static async start(
    redis: RedisClient,
    keys: OffloadKeys,
    onCancel: (jobId: string) => void,
  ): Promise<CancelListener> {
    const subscriber = redis.duplicate();
    subscriber.on('error', () => {});
    const listener = new CancelListener(subscriber);
    subscriber.on('message', (channel: string, jobId: string) => {
      if (channel !== keys.cancelChannel) return;
      listener.remember(jobId);
      onCancel(jobId);
    });
    // ioredis re-subscribes on its own after a reconnect.
    await subscriber.subscribe(keys.cancelChannel);
    return listener;
  }

  private remember(jobId: string, now = Date.now()): void {
    this.announced.delete(jobId);
    this.announced.set(jobId, now);
    for (const [id, at] of this.announced) {
      if (now - at <= REMEMBERED_MS && this.announced.size <= REMEMBERED_MAX) break;
      this.announced.delete(id);
    }
  }

  /** Whether a cancel of the job was announced lately (before its runner registered it, say). */
  wasAnnounced(jobId: string): boolean {
    return this.announced.has(jobId);
  }

  close(): void {
    this.subscriber.disconnect();
  }
}

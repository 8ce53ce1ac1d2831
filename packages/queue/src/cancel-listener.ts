import type { RedisClient } from './connection.ts';
import type { OffloadKeys } from './keys.ts';

/**
 * A worker's ear for cancels. BullMQ has no remote cancel, so the API records
 * the cancel (a key) and then announces it (pub/sub); the worker acts on the
 * announcement for jobs it runs, and checks the record for jobs it takes later.
 */
export class CancelListener {
  private constructor(
    private readonly redis: RedisClient,
    private readonly subscriber: RedisClient,
    private readonly keys: OffloadKeys,
  ) {}

  static async start(
    redis: RedisClient,
    keys: OffloadKeys,
    onCancel: (jobId: string) => void,
  ): Promise<CancelListener> {
    const subscriber = redis.duplicate();
    subscriber.on('error', () => {});
    subscriber.on('message', (channel: string, jobId: string) => {
      if (channel === keys.cancelChannel) onCancel(jobId);
    });
    // ioredis re-subscribes on its own after a reconnect.
    await subscriber.subscribe(keys.cancelChannel);
    return new CancelListener(redis, subscriber, keys);
  }

  async isCanceled(jobId: string): Promise<boolean> {
    return (await this.redis.exists(this.keys.canceled(jobId))) === 1;
  }

  close(): void {
    this.subscriber.disconnect();
  }
}

import { QueueEvents } from 'bullmq';
import type { Redis } from 'ioredis';
import { createRedis } from './connection.ts';

/**
 * Wakes long-polling requests when their job finishes. One QueueEvents reader
 * per queue (a single blocking XREAD on BullMQ's event stream) serves every
 * waiting request of the process, so a thousand waiting clients cost Redis
 * nothing more than one. The same readers tell event streams (SSE) of every
 * change of a job: started, progress, finished, removed.
 */
export class FinishWatcher {
  private readonly waiters = new Map<string, Set<() => void>>();
  private readonly watchers = new Map<string, Set<() => void>>();
  private readonly readers: QueueEvents[];
  // Its own patient connection: the API's fail-fast one suits requests, not a blocking reader.
  private readonly connection: Redis;

  constructor(queueNames: readonly string[], redisUrl: string, prefix: string) {
    const connection = createRedis(redisUrl, 'worker');
    this.connection = connection;
    const changed = ({ jobId }: { jobId: string }) => {
      for (const onChange of this.watchers.get(jobId) ?? []) onChange();
    };
    const wake = ({ jobId }: { jobId: string }) => {
      changed({ jobId });
      const set = this.waiters.get(jobId);
      if (!set) return;
      this.waiters.delete(jobId);
      for (const resolve of set) resolve();
    };
    this.readers = queueNames.map((name) => {
      const reader = new QueueEvents(name, { connection, prefix });
      reader.on('completed', wake);
      reader.on('failed', wake);
      reader.on('removed', wake);
      reader.on('active', changed);
      reader.on('progress', changed);
      reader.on('delayed', changed);
      reader.on('waiting', changed);
      reader.on('error', () => {});
      return reader;
    });
  }

  /** Calls `onChange` on every event of the job until the returned function is called. */
  watch(jobId: string, onChange: () => void): () => void {
    const set = this.watchers.get(jobId) ?? new Set();
    this.watchers.set(jobId, set);
    set.add(onChange);
    return () => {
      set.delete(onChange);
      if (set.size === 0 && this.watchers.get(jobId) === set) this.watchers.delete(jobId);
    };
  }

  /** Resolves when the job emits a finishing event or `timeoutMs` passes, whichever comes first. */
  waitFor(jobId: string, timeoutMs: number): { done: Promise<void>; cancel(): void } {
    let resolveDone!: () => void;
    const done = new Promise<void>((resolve) => {
      resolveDone = resolve;
    });
    const set = this.waiters.get(jobId) ?? new Set();
    this.waiters.set(jobId, set);
    const timer = setTimeout(resolveDone, timeoutMs);
    const wrapped = () => {
      clearTimeout(timer);
      resolveDone();
    };
    set.add(wrapped);
    return {
      done,
      cancel: () => {
        clearTimeout(timer);
        set.delete(wrapped);
        if (set.size === 0 && this.waiters.get(jobId) === set) this.waiters.delete(jobId);
      },
    };
  }

  async close(): Promise<void> {
    await Promise.all(this.readers.map((reader) => reader.close()));
  }

  /** Drops the connection at once (after close, or instead of it when Redis is gone). */
  disconnect(): void {
    this.connection.disconnect();
  }
}

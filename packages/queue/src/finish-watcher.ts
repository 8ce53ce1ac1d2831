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
  private readonly readers = new Map<string, QueueEvents>();
  private readonly changed: (event: { jobId: string }) => void;
  private readonly wake: (event: { jobId: string }) => void;
  // Its own patient connection: the API's fail-fast one suits requests, not a blocking reader.
  private readonly connection: Redis;

  constructor(
    queueNames: readonly string[],
    redisUrl: string,
    private readonly prefix: string,
  ) {
    this.connection = createRedis(redisUrl, 'worker');
    this.changed = ({ jobId }) => {
      for (const onChange of this.watchers.get(jobId) ?? []) onChange();
    };
    this.wake = ({ jobId }) => {
      this.changed({ jobId });
      const set = this.waiters.get(jobId);
      if (!set) return;
      this.waiters.delete(jobId);
      for (const resolve of set) resolve();
    };
    for (const name of queueNames) this.add(name);
  }

  /** Reads the events of one more queue (queues appear as workers publish tasks). */
  add(queueName: string): void {
    if (this.readers.has(queueName)) return;
    const reader = new QueueEvents(queueName, { connection: this.connection, prefix: this.prefix });
    reader.on('completed', this.wake);
    reader.on('failed', this.wake);
    reader.on('removed', this.wake);
    reader.on('active', this.changed);
    reader.on('progress', this.changed);
    reader.on('delayed', this.changed);
    reader.on('waiting', this.changed);
    reader.on('error', () => {});
    this.readers.set(queueName, reader);
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
    await Promise.all([...this.readers.values()].map((reader) => reader.close()));
  }

  /** Drops the connection at once (after close, or instead of it when Redis is gone). */
  disconnect(): void {
    this.connection.disconnect();
  }
}

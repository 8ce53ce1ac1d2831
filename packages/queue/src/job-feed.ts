import type { JobView } from '@offload/contract';
import { QueueEvents } from 'bullmq';
import type { Redis } from 'ioredis';
import { createRedis } from './connection.ts';

/** What a follower of a job is told after each change: its view (null once it is gone), or why it could not be read. */
export type JobUpdate = { view: JobView | null } | { error: unknown };

export interface JobSubscription {
  /** The job's view as of now: after any read under way, so never older than the subscription. */
  current(): Promise<JobView | null>;
  /** Stops the updates; the last subscription of a job stops its reads. */
  stop(): void;
}

interface Followed {
  listeners: Set<(update: JobUpdate) => void>;
  /** The latest read (or the one under way). */
  latest: Promise<JobView | null>;
  reading: boolean;
  /** An event came while a read was under way: read once more after it. */
  stale: boolean;
  /** The latest read failed (Redis unreachable). */
  failed: boolean;
}

/**
 * Follows jobs for event streams and long-polls. One QueueEvents reader per
 * queue (a single blocking XREAD on BullMQ's event stream) learns of every
 * change, and a change of a followed job costs one read of it, shared by every
 * stream and long-poll of the process that follows that job: a thousand
 * followers of one job cost Redis what one does. Events that arrive while a
 * read is under way are folded into one more read, so a job that changes
 * faster than Redis answers costs at most two reads at a time. Jobs nobody
 * follows cost no read at all.
 */
export class JobFeed {
  private readonly followed = new Map<string, Followed>();
  private readonly readers = new Map<string, QueueEvents>();
  private readonly changed: (event: { jobId: string }) => void;
  // Its own patient connection: the API's fail-fast one suits requests, not a blocking reader.
  private readonly connection: Redis;

  constructor(
    redisUrl: string,
    private readonly prefix: string,
    /** One read of a job's view, whoever owns it; null when there is no such job. */
    private readonly read: (jobId: string) => Promise<JobView | null>,
  ) {
    this.connection = createRedis(redisUrl, 'worker');
    this.changed = ({ jobId }) => {
      const job = this.followed.get(jobId);
      if (job) this.refresh(jobId, job);
    };
  }

  /** Reads the events of one more queue (queues appear as workers publish tasks). */
  add(queueName: string): void {
    if (this.readers.has(queueName)) return;
    const reader = new QueueEvents(queueName, { connection: this.connection, prefix: this.prefix });
    for (const event of [
      'active',
      'progress',
      'delayed',
      'waiting',
      'completed',
      'failed',
      'removed',
    ] as const) {
      reader.on(event, this.changed);
    }
    reader.on('error', () => {});
    this.readers.set(queueName, reader);
  }

  /**
   * Calls `onUpdate` after every change of the job until `stop`. Subscribing to a
   * job already followed costs no read: its latest view is shared.
   */
  subscribe(jobId: string, onUpdate: (update: JobUpdate) => void): JobSubscription {
    let job = this.followed.get(jobId);
    if (!job) {
      job = {
        listeners: new Set(),
        latest: Promise.resolve(null),
        reading: false,
        stale: false,
        failed: false,
      };
      this.followed.set(jobId, job);
      this.refresh(jobId, job);
    } else if (job.failed) {
      this.refresh(jobId, job);
    }
    const followed = job;
    followed.listeners.add(onUpdate);
    return {
      current: () => followed.latest,
      stop: () => {
        followed.listeners.delete(onUpdate);
        if (followed.listeners.size === 0 && this.followed.get(jobId) === followed) {
          this.followed.delete(jobId);
        }
      },
    };
  }

  private refresh(jobId: string, job: Followed): void {
    if (job.reading) {
      job.stale = true;
      return;
    }
    job.reading = true;
    job.failed = false;
    job.latest = (async () => {
      try {
        for (;;) {
          job.stale = false;
          const view = await this.read(jobId);
          for (const listener of job.listeners) listener({ view });
          if (!job.stale) return view;
        }
      } catch (error) {
        job.failed = true;
        for (const listener of job.listeners) listener({ error });
        throw error;
      } finally {
        job.reading = false;
      }
    })();
    // Told to the listeners already; the next event or subscriber reads again.
    job.latest.catch(() => {});
  }

  async close(): Promise<void> {
    await Promise.all([...this.readers.values()].map((reader) => reader.close()));
  }

  /** Drops the connection at once (after close, or instead of it when Redis is gone). */
  disconnect(): void {
    this.connection.disconnect();
  }
}

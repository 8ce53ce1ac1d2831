import type { JobView } from '@offload/contract';
import { QueueEvents } from 'bullmq';
import { createRedis, type RedisClient, type RedisTarget } from './connection.ts';
import type { OffloadKeys } from './keys.ts';

/** What a follower of a job is told after each change: its view (null once it is gone), or why it could not be read. */
export type JobUpdate = { view: JobView | null } | { error: unknown };

export interface JobSubscription {
  /** The job's view as of now: after any read under way, so never older than the subscription. */
  current(): Promise<JobView | null>;
  /** Stops the updates; the last subscription of a job stops its reads. */
  stop(): void;
}

interface Followed {
  /** Each listener, and whether it wants every change (a stream) or only the finish (a long-poll). */
  listeners: Map<(update: JobUpdate) => void, boolean>;
  /** Listeners that want every change. */
  everyChange: number;
  /** The latest read (or the one under way). */
  latest: Promise<JobView | null>;
  reading: boolean;
  /** An event came while a read was under way: read once more after it. */
  stale: boolean;
  /** `latest` may be older than an event since (nobody wanted every change), or its read failed. */
  unread: boolean;
}

/** Followers told of an update before the API's other requests get a turn (see notify). */
const NOTIFY_BATCH = 10;

/**
 * Tells each listener, NOTIFY_BATCH at a time with a turn of the event loop
 * between batches: a thousand streams of one job each write an event after
 * an update, and in one go that would hold every other request of the
 * process (another tenant's GET) until the last write.
 */
async function notify(
  listeners: Iterable<(update: JobUpdate) => void>,
  update: JobUpdate,
): Promise<void> {
  let told = 0;
  for (const listener of [...listeners]) {
    listener(update);
    if (++told % NOTIFY_BATCH === 0) await new Promise((resolve) => setImmediate(resolve));
  }
}

/** BullMQ events after which a job is finished (or gone): read even for followers of the finish only. */
const FINISHING = ['completed', 'failed', 'removed'] as const;
const CHANGING = ['active', 'progress', 'delayed', 'waiting'] as const;

/**
 * Follows jobs for event streams and long-polls. One QueueEvents reader per
 * queue (a single blocking XREAD on BullMQ's event stream) learns of every
 * change, and a change of a followed job costs one read of it, shared by every
 * stream and long-poll of the process that follows that job: a thousand
 * followers of one job cost Redis what one does. Events that arrive while a
 * read is under way are folded into one more read, so a job that changes
 * faster than Redis answers costs at most two reads at a time. A job followed
 * only by long-polls is read when it finishes (and when a follower asks for
 * its current view), not on every progress report; jobs nobody follows cost
 * no read at all.
 */
export class JobFeed {
  private readonly followed = new Map<string, Followed>();
  private readonly readers = new Map<string, QueueEvents>();
  private readonly finished: (event: { jobId: string }) => void;
  private readonly changed: (event: { jobId: string }) => void;
  // Its own patient connection: the API's fail-fast one suits requests, not a blocking reader.
  private readonly connection: RedisClient;

  constructor(
    redis: RedisTarget,
    private readonly keys: OffloadKeys,
    /** One read of a job's view, whoever owns it; null when there is no such job. */
    private readonly read: (jobId: string) => Promise<JobView | null>,
  ) {
    this.connection = createRedis(redis, 'worker');
    this.finished = ({ jobId }) => {
      const job = this.followed.get(jobId);
      if (job) this.refresh(jobId, job);
    };
    this.changed = ({ jobId }) => {
      const job = this.followed.get(jobId);
      if (!job) return;
      if (job.everyChange > 0) this.refresh(jobId, job);
      else job.unread = true;
    };
  }

  /** Reads the events of one more queue (queues appear as workers publish tasks). */
  add(queueName: string): void {
    if (this.readers.has(queueName)) return;
    const reader = new QueueEvents(queueName, {
      connection: this.connection,
      prefix: this.keys.queuePrefix(queueName),
    });
    for (const event of FINISHING) reader.on(event, this.finished);
    for (const event of CHANGING) reader.on(event, this.changed);
    reader.on('error', () => {});
    this.readers.set(queueName, reader);
  }

  /**
   * Calls `onUpdate` after each read of the job until `stop`: after every change,
   * or with `everyChange` false, at least when it finishes. Subscribing to a job
   * already followed costs no read while its latest view is current.
   */
  subscribe(
    jobId: string,
    onUpdate: (update: JobUpdate) => void,
    { everyChange }: { everyChange: boolean },
  ): JobSubscription {
    let job = this.followed.get(jobId);
    if (!job) {
      job = {
        listeners: new Map(),
        everyChange: 0,
        latest: Promise.resolve(null),
        reading: false,
        stale: false,
        unread: true,
      };
      this.followed.set(jobId, job);
    }
    const followed = job;
    followed.listeners.set(onUpdate, everyChange);
    if (everyChange) followed.everyChange++;
    return {
      current: () => {
        if (followed.unread) this.refresh(jobId, followed);
        return followed.latest;
      },
      stop: () => {
        if (!followed.listeners.delete(onUpdate)) return;
        if (everyChange) followed.everyChange--;
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
    job.unread = false;
    job.latest = (async () => {
      try {
        for (;;) {
          job.stale = false;
          const view = await this.read(jobId);
          await notify(job.listeners.keys(), { view });
          if (!job.stale) return view;
        }
      } catch (error) {
        job.unread = true;
        for (const listener of job.listeners.keys()) listener({ error });
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

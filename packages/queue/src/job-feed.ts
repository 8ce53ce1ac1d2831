import type { JobView } from '@offload/contract';
import { QueueEvents } from 'bullmq';
import { createRedis, type RedisClient, type RedisTarget } from './connection.ts';
import type { OffloadKeys } from './keys.ts';

/** What a follower of a job is told after each change: its view (null once it is gone), or why it could not be read. */
export type JobUpdate = { view: JobView | null } | { error: unknown };

/** What BullMQ's event that finished a job says: its end, and the result or the failure's reason. */
export type JobFinish =
  | { event: 'completed'; result: unknown }
  | { event: 'failed'; failedReason: string };

/** How the feed reads a job's view. */
export interface JobReads {
  /** One read of a job's view, whoever owns it; null when there is no such job. */
  read(jobId: string): Promise<JobView | null>;
  /**
   * The view of a job that `finish`, an event of `queue`, has just finished:
   * what a read gives, from fewer commands since the event carries part of it.
   */
  readFinished(jobId: string, queue: string, finish: JobFinish): Promise<JobView | null>;
}

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
  /** The event that finished the job, while it is the latest one: the next read starts from it. */
  finish: { queue: string; finish: JobFinish } | null;
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

/**
 * BullMQ events after which a job is running, waiting or delayed again (a
 * failed attempt that will be retried is one of the last two: BullMQ 6 writes
 * `failed` only for the final failure). After `completed`, `failed` and
 * `removed` a job is finished or gone, and is read even for followers of the finish only.
 */
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
 * no read at all. The read after the event that finished a job starts from
 * that event (JobReads.readFinished): one round trip instead of four.
 */
export class JobFeed {
  private readonly followed = new Map<string, Followed>();
  private readonly readers = new Map<string, QueueEvents>();
  // Its own patient connection: the API's fail-fast one suits requests, not a blocking reader.
  private readonly connection: RedisClient;

  constructor(
    redis: RedisTarget,
    private readonly keys: OffloadKeys,
    private readonly reads: JobReads,
  ) {
    this.connection = createRedis(redis, 'worker');
  }

  /** A finishing event (`finish` null: one that carries nothing to build the view from). */
  private finished(jobId: string, finish: Followed['finish']): void {
    const job = this.followed.get(jobId);
    if (!job) return;
    job.finish = finish;
    this.refresh(jobId, job);
  }

  private changed(jobId: string): void {
    const job = this.followed.get(jobId);
    if (!job) return;
    job.finish = null;
    if (job.everyChange > 0) this.refresh(jobId, job);
    else job.unread = true;
  }

  /** Reads the events of one more queue (queues appear as workers publish tasks). */
  add(queueName: string): void {
    if (this.readers.has(queueName)) return;
    const reader = new QueueEvents(queueName, {
      connection: this.connection,
      prefix: this.keys.queuePrefix(queueName),
    });
    // QueueEvents parses a completed event's returnvalue as JSON, as a read parses the stored one.
    reader.on('completed', ({ jobId, returnvalue }: { jobId: string; returnvalue: unknown }) =>
      this.finished(jobId, {
        queue: queueName,
        finish: { event: 'completed', result: returnvalue ?? null },
      }),
    );
    reader.on('failed', ({ jobId, failedReason }: { jobId: string; failedReason?: string }) =>
      this.finished(
        jobId,
        typeof failedReason === 'string'
          ? { queue: queueName, finish: { event: 'failed', failedReason } }
          : null,
      ),
    );
    reader.on('removed', ({ jobId }: { jobId: string }) => this.finished(jobId, null));
    for (const event of CHANGING)
      reader.on(event, ({ jobId }: { jobId: string }) => this.changed(jobId));
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
        finish: null,
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
          const { finish } = job;
          const view = finish
            ? await this.reads.readFinished(jobId, finish.queue, finish.finish)
            : await this.reads.read(jobId);
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

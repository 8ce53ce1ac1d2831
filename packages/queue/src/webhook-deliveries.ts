import type { WebhookState } from '@offload/contract';
import { Job, Queue } from 'bullmq';
import type { RedisClient } from './connection.ts';
import type { Retention } from './job-options.ts';
import type { OffloadKeys } from './keys.ts';

/**
 * The webhook deliveries: one BullMQ job per job or workflow submitted with a
 * webhook, on a queue of their own (`deliveries`, under the `{webhooks}` hash
 * tag), its id the job's or workflow's. It is added with the job, delayed, so
 * an accepted job's webhook exists from its first moment: whoever ends the job
 * (a worker completing or failing it, the API canceling a queued one, a
 * worker's stall check failing a lost one) wakes it, and one that nobody wakes
 * (the process died between the end and the wake) still comes due and finds
 * the job ended: see RECHECK_*. Its data is the delivery's record: the
 * target, its state and its attempts, which the job's view and the dashboard read.
 */

export const DELIVERIES_QUEUE = 'deliveries';

/** One attempt to deliver, as the dashboard shows it. */
export interface DeliveryAttempt {
  /** When it started, ms since epoch. */
  at: number;
  /** The receiver's HTTP status; null when none came. */
  status: number | null;
  /** From start to the end of the answer, ms. */
  ms: number;
  /** Why it failed; unset on success. */
  error?: string;
}

/** What a delivery's BullMQ job carries: where to send what, and how it went so far. */
export interface DeliveryRecord {
  kind: 'job' | 'workflow';
  /** The job's or workflow's id, also the delivery's. */
  id: string;
  /** The job's queue (a job's delivery only). */
  queue?: string;
  tenant: string;
  url: string;
  state: WebhookState['state'];
  /** Attempts made, the first included. */
  attempts: number;
  /** The latest attempts, oldest first (at most ATTEMPTS_LOGGED). */
  log: DeliveryAttempt[];
}

/** What a new delivery is for. */
export type DeliveryTarget = Pick<DeliveryRecord, 'kind' | 'id' | 'queue' | 'tenant' | 'url'>;

/** Times a delivery is run again after the sender itself failed (1 s, 2 s, 4 s … apart: about 3 days in all). */
const SENDER_ERROR_RETRIES = 19;

/** Attempts a delivery's record keeps: enough to see a pattern, bounded however many retries. */
export const ATTEMPTS_LOGGED = 20;

/**
 * A delivery that comes due while its job has not ended looks again this much
 * later, ms: as long as the job has lived so far, at least RECHECK_MIN_MS and
 * at most RECHECK_MAX_MS. Only a lost wake makes a delivery wait for this,
 * and a job's age bounds how late it comes.
 */
export const RECHECK_MIN_MS = 15_000;
export const RECHECK_MAX_MS = 3_600_000;

export function recheckDelay(createdAt: number, now = Date.now()): number {
  return Math.min(RECHECK_MAX_MS, Math.max(RECHECK_MIN_MS, now - createdAt));
}

/** The public state of a delivery, from its record. */
export function webhookState(record: DeliveryRecord): WebhookState {
  return {
    state: record.state,
    attempts: record.attempts,
    lastStatus: record.log.at(-1)?.status ?? null,
  };
}

/** Before the first attempt. */
export const PENDING_WEBHOOK: WebhookState = { state: 'pending', attempts: 0, lastStatus: null };

export class WebhookDeliveries {
  private queue: Queue<DeliveryRecord> | null = null;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: OffloadKeys,
    private readonly retention: Retention,
  ) {}

  /** The BullMQ queue, made on first use: a process that never meets a webhook makes none. */
  private deliveries(): Queue<DeliveryRecord> {
    if (!this.queue) {
      this.queue = new Queue<DeliveryRecord>(DELIVERIES_QUEUE, {
        connection: this.redis,
        prefix: this.keys.webhooksPrefix,
      });
      this.queue.on('error', () => {});
    }
    return this.queue;
  }

  /**
   * Adds the deliveries of jobs (or a workflow) about to be added, waiting for
   * their wake. Adding one twice (a submit retried with its Idempotency-Key)
   * keeps the first.
   */
  async add(targets: readonly DeliveryTarget[], createdAt: number): Promise<void> {
    if (targets.length === 0) return;
    // Kept as long as the job's view (the longer retention), whose `webhook` it answers.
    const keepS = Math.ceil(Math.max(this.retention.completedMs, this.retention.failedMs) / 1000);
    await this.deliveries().addBulk(
      targets.map((target) => ({
        name: target.kind,
        data: { ...target, state: 'pending', attempts: 0, log: [] },
        opts: {
          jobId: target.id,
          timestamp: createdAt,
          delay: recheckDelay(createdAt),
          // Only for errors of the sender itself (Redis unreachable mid-delivery): a
          // receiver's failures are retried on WEBHOOK_RETRY_SCHEDULE, never counted here.
          attempts: SENDER_ERROR_RETRIES,
          backoff: { type: 'exponential', delay: 1000 },
          removeOnComplete: { age: keepS },
          removeOnFail: { age: keepS },
        },
      })),
    );
  }

  /**
   * The job (or workflow) `id` has ended: its delivery is due now. One
   * command; a delivery not delayed (none, already due, being delivered,
   * done) is left as it is: its own run reads the job's end.
   */
  async wake(id: string): Promise<void> {
    const handle = new Job<DeliveryRecord>(
      this.deliveries(),
      DELIVERIES_QUEUE,
      {} as DeliveryRecord,
      {},
      id,
    );
    await handle.promote().catch((err: Error) => {
      if (!/not in the delayed state|Missing key for job/.test(err.message)) throw err;
    });
  }

  /** The delivery's record; null when there is none (no webhook, or past retention). */
  async read(id: string): Promise<DeliveryRecord | null> {
    const data = await this.redis.hget(
      `${this.keys.webhooksPrefix}:${DELIVERIES_QUEUE}:${id}`,
      'data',
    );
    return data ? (JSON.parse(data) as DeliveryRecord) : null;
  }

  async close(): Promise<void> {
    await this.queue?.close();
  }
}

import { isFinal, type JobView, type WorkflowView } from '@offload/contract';
import { DelayedError, type Job, Worker } from 'bullmq';
import type { RedisClient } from './connection.ts';
import type { JobQueues } from './job-queues.ts';
import type { OffloadKeys } from './keys.ts';
import { LOCK_MS, STALLED_CHECK_MS } from './queue-worker.ts';
import {
  ATTEMPTS_LOGGED,
  DELIVERIES_QUEUE,
  type DeliveryRecord,
  recheckDelay,
} from './webhook-deliveries.ts';
import { WebhookPoster } from './webhook-post.ts';
import { signatureHeader } from './webhook-signing.ts';

/** How a delivery attempt ended, for metrics: `retrying` means another attempt is scheduled. */
export type DeliveryOutcome = 'delivered' | 'retrying' | 'failed';

export interface WebhookSenderOptions {
  /** A worker-role connection (see connection.ts). */
  redis: RedisClient;
  keys: OffloadKeys;
  /** Where the jobs and workflows delivered are read, as the API reads them. */
  jobs: JobQueues;
  /** WEBHOOK_SECRETS: tenant → signing keys. */
  secrets: ReadonlyMap<string, readonly Buffer[]>;
  /** WEBHOOK_RETRY_SCHEDULE: waits before each retry, ms. */
  retrySchedule: readonly number[];
  /** WEBHOOK_TIMEOUT_MS. */
  timeoutMs: number;
  /** WEBHOOK_ALLOW_PRIVATE. */
  allowPrivate: boolean;
  /** Told after each attempt; `latencyMs` (from the end of the job to its delivery) on a delivery. */
  onAttempt?: (outcome: DeliveryOutcome, latencyMs?: number) => void;
  onError?: (err: Error) => void;
}

/**
 * Deliveries in flight at once per process. Each is network I/O only (a
 * POST of a few KB, bounded by WEBHOOK_TIMEOUT_MS), so many receivers that
 * hang hold this many slots at worst, never the process.
 */
const DELIVERIES_AT_ONCE = 32;
/** A delivery whose process died mid-attempt is retried this often before BullMQ gives up on it. */
const MAX_STALLED = 10;

/** The event a delivery sends, once its job or workflow has ended; null while it has not. */
interface EndedEvent {
  type: string;
  /** When the job or workflow ended, ms since epoch. */
  endedAt: number;
  data: Omit<JobView, 'webhook'> | Omit<WorkflowView, 'webhook'>;
}

/**
 * Sends webhooks (README "Webhooks"): consumes the deliveries queue, reads the
 * job or workflow as its owner would, signs the event with the tenant's
 * secrets and POSTs it; retries on WEBHOOK_RETRY_SCHEDULE; stops at a 2xx, a
 * 410, or the end of the schedule. Every worker process runs one beside its
 * task queues (see apps/worker): delivering is I/O only, so it takes nothing
 * from the executors, and deliveries scale with the fleet and survive any one
 * process. It never runs on a request's path: the API only adds deliveries.
 */
export function startWebhookSender(options: WebhookSenderOptions): { close(): Promise<void> } {
  const { jobs, secrets, retrySchedule } = options;
  const poster = new WebhookPoster({
    timeoutMs: options.timeoutMs,
    allowPrivate: options.allowPrivate,
  });

  async function ended(record: DeliveryRecord): Promise<EndedEvent | 'unfinished' | null> {
    if (record.kind === 'workflow') {
      const view = await jobs.workflows.get(record.id, record.tenant);
      if (!view) return null;
      if (view.state === 'running') return 'unfinished';
      const { webhook: _, ...data } = view;
      return {
        type: `workflow.${view.state}`,
        endedAt: Date.parse(view.finishedAt ?? '') || Date.now(),
        data,
      };
    }
    if (record.queue) jobs.useQueues([record.queue]);
    const view = await jobs.getJobView(record.id, record.tenant);
    if (!view) return null;
    if (!isFinal(view.state)) return 'unfinished';
    const { webhook: _, ...data } = view;
    return {
      type: `job.${view.state}`,
      endedAt: Date.parse(view.finishedAt ?? '') || Date.now(),
      data,
    };
  }

  const processor = async (job: Job<DeliveryRecord>, token?: string) => {
    const record = job.data;
    const event = await ended(record);
    if (event === 'unfinished') {
      // Woken early, or not woken at all yet: look again later (see recheckDelay).
      await job.moveToDelayed(Date.now() + recheckDelay(job.timestamp), token);
      throw new DelayedError();
    }
    const at = Date.now();
    const keys = secrets.get(record.tenant) ?? [];
    let outcome: { status: number | null; error?: string; ms: number };
    if (!event) {
      // Never added (its submit failed after the delivery was), removed, or past its retention.
      outcome = { status: null, error: `the ${record.kind} does not exist`, ms: 0 };
    } else if (keys.length === 0) {
      // The secret was removed after the submit: retried, in case it is put back.
      outcome = {
        status: null,
        error: `WEBHOOK_SECRETS has no secret for tenant ${record.tenant}`,
        ms: 0,
      };
    } else {
      const body = JSON.stringify({
        type: event.type,
        timestamp: new Date(event.endedAt).toISOString(),
        data: event.data,
      });
      // The same id on every attempt: a receiver drops the duplicates of a delivery it took.
      const id = `msg_${record.id}`;
      const timestampS = Math.floor(at / 1000);
      outcome = await poster.post(
        record.url,
        {
          'content-type': 'application/json',
          'user-agent': 'Offload-Webhooks/1',
          'webhook-id': id,
          'webhook-timestamp': String(timestampS),
          'webhook-signature': signatureHeader(keys, id, timestampS, body),
        },
        body,
      );
    }
    const { status } = outcome;
    const attempts = record.attempts + 1;
    const delivered = status !== null && status >= 200 && status < 300;
    // 410 Gone: the receiver says it will never take it; no event: nothing left to send.
    const over = delivered || status === 410 || !event || attempts > retrySchedule.length;
    const state = delivered ? 'delivered' : over ? 'failed' : 'pending';
    const log = [...record.log, { at, ...outcome }].slice(-ATTEMPTS_LOGGED);
    await job.updateData({ ...record, state, attempts, log });
    options.onAttempt?.(
      delivered ? 'delivered' : over ? 'failed' : 'retrying',
      delivered && event ? Date.now() - event.endedAt : undefined,
    );
    if (!over) {
      await job.moveToDelayed(Date.now() + (retrySchedule[attempts - 1] as number), token);
      throw new DelayedError();
    }
  };

  const worker = new Worker<DeliveryRecord>(DELIVERIES_QUEUE, processor, {
    connection: options.redis,
    prefix: options.keys.webhooksPrefix,
    concurrency: DELIVERIES_AT_ONCE,
    // The task queues' short locks: a delivery whose process died is taken up again within 7.5 s.
    lockDuration: LOCK_MS,
    stalledInterval: STALLED_CHECK_MS,
    maxStalledCount: MAX_STALLED,
  });
  worker.on('error', (err) => options.onError?.(err));
  return {
    close: async () => {
      await worker.close();
      await poster.close();
    },
  };
}

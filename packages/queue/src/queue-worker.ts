import { DelayedError, type Job, Queue, UnrecoverableError, WaitingError, Worker } from 'bullmq';
import { type BinaryOutput, storeBinaryResult } from './binary-results.ts';
import type { BlobStore } from './blob-store.ts';
import { isCluster, type RedisClient } from './connection.ts';
import { encodeFailure, JobFailure } from './failure.ts';
import { FairShare, isHeld } from './fair-share.ts';
import { HEARTBEAT_EVERY_MS, HEARTBEAT_TTL_MS } from './fleet.ts';
import type { Retention } from './job-options.ts';
import { hasWebhook, isMarkedCanceled, type JobData } from './job-view.ts';
import type { OffloadKeys } from './keys.ts';
import { stepInput } from './step-input.ts';
import { RESULT_ALLOWANCE_BYTES, settleJob } from './tenant-jobs.ts';
import { WebhookDeliveries } from './webhook-deliveries.ts';
import { nudgeWorkflow } from './workflow-runner.ts';

/** A job as a runner sees it: no BullMQ types leak out of this package. */
export interface RunningJob {
  id: string;
  task: string;
  input: unknown;
  /** Hard time limit of this attempt, ms. */
  timeoutMs: number;
  /** 1 for the first attempt. */
  attempt: number;
  /** The catalog version its input was validated against (unset on jobs from before the catalog). */
  fingerprint: string | undefined;
  /** When the job became runnable: added, or its delay over, ms since epoch. */
  queuedAt: number;
  /** Its cancel was recorded before it was fetched (job-view.ts markJobCanceled): fail it unrun. */
  canceled: boolean;
  /** Records progress in Redis; fire and forget. */
  progress(value: number | object): void;
  /** Appends to the job's log; fire and forget. */
  log(line: string): void;
}

/** A job's result and the size of its JSON, bytes (as its executor measured it). */
export interface JobResult {
  result: unknown;
  bytes: number;
  /** Bytes the task returned instead of JSON (`bytes` is their length); stored in the blob store. */
  binary?: BinaryOutput;
}

/**
 * Runs one job to its result. Throws JobFailure to fail with a public code,
 * HandBack to return the job to the head of its queue untouched.
 */
export type JobRunner = (job: RunningJob) => Promise<JobResult>;

/**
 * The runner gives the job back untouched, no attempt used: at once to its
 * queue (the worker is shutting down), or after `delayMs` (another worker
 * should take it; the delay keeps this one from taking it again at once).
 */
export class HandBack extends Error {
  override readonly name = 'HandBack';
  constructor(
    message: string,
    readonly delayMs = 0,
  ) {
    super(message);
  }
}

export interface QueueWorkerOptions {
  /** A worker-role connection (see connection.ts). */
  redis: RedisClient;
  keys: OffloadKeys;
  queue: string;
  /** Most jobs of this queue held at once. */
  concurrency: number;
  /** Finished jobs past these ages are swept away (JOB_RETENTION_*). */
  retention: Retention;
  /** Most jobs of one tenant running on this queue at once (MAX_RUNNING_PER_TENANT); 0 = no limit. */
  maxRunningPerTenant: number;
  run: JobRunner;
  /** Where binary results go (BLOB_DIR). */
  blobs: BlobStore;
  onError?: (err: Error) => void;
}

/**
 * Lock and stall settings. Every job's CPU work runs off the worker's main
 * thread, so lock renewal (every LOCK_MS / 2) is never starved and a short lock
 * is safe: the main thread only relays messages. A killed worker's job loses
 * its lock within LOCK_MS, and the next stall check (every STALLED_CHECK_MS, on
 * every live worker) puts it back in the queue: back within 7.5 s, a quarter
 * of DESIGN.md's 30 s promise, for one extra Redis call per worker every 2.5 s.
 */
export const LOCK_MS = 5_000;
export const STALLED_CHECK_MS = 2_500;
/** A job whose worker dies this many times fails with `worker_lost` instead of running again. */
const MAX_STALLED = 2;
/** How often each worker removes finished jobs past retention, ms (BullMQ only does it when later jobs finish). */
const SWEEP_EVERY_MS = 10 * 60 * 1000;

export interface QueueWorker {
  readonly queue: string;
  setConcurrency(concurrency: number): void;
  /** Stops taking jobs and waits for the held ones to settle. */
  close(): Promise<void>;
}

function toBullError(err: unknown): Error {
  if (err instanceof JobFailure) {
    const message = encodeFailure(err.code, err.message);
    return err.final ? new UnrecoverableError(message) : new Error(message);
  }
  const message = err instanceof Error ? err.message : String(err);
  return new Error(encodeFailure('task_error', message));
}

export function startQueueWorker(options: QueueWorkerOptions): QueueWorker {
  const { redis, keys, queue } = options;
  /**
   * A finished job no longer counts against its tenant's open-jobs quota, and
   * holds its bytes until its retention ends. Done before BullMQ records the
   * end, not on its 'completed' event: a client woken by the end may submit at
   * once, and must find its place already free.
   */
  const settle = (job: Job<JobData>, resultBytes: number, retentionMs: number) =>
    settleJob(redis, keys, job.data.tenant, job.id as string, {
      resultBytes,
      until: Date.now() + retentionMs,
    });
  const forgetFailed = (job: Job<JobData>) =>
    settle(job, 0, options.retention.failedMs).catch(() => true);
  const fairShare = new FairShare(redis, keys, queue);
  const webhooks = new WebhookDeliveries(redis, keys, options.retention);
  /**
   * A workflow's next steps start once BullMQ has recorded this one's end,
   * which these events follow; the job's webhook delivery is woken then too
   * (a wake lost to a crash here is made up by the delivery's own recheck, see
   * webhook-deliveries.ts). A job in neither costs no command.
   */
  const nudge = (job: Job<JobData>) => {
    if (job.data.workflow) {
      nudgeWorkflow(redis, keys, job.data.workflow).catch((err: Error) => options.onError?.(err));
    }
    if (hasWebhook(job.opts)) {
      webhooks.wake(job.id as string).catch((err: Error) => options.onError?.(err));
    }
  };
  /** Publishes this worker's cap and lets held jobs catch up on a dispatch missed (a submit that failed after adding). */
  const beat = () =>
    fairShare
      .beat(options.maxRunningPerTenant, HEARTBEAT_TTL_MS)
      .catch((err: Error) => options.onError?.(err));
  const processor = async (job: Job<JobData>, token?: string) => {
    const { tenant } = job.data;
    const jobId = job.id as string;
    /**
     * Fair share learns when the job starts and when its attempt ends, without
     * waiting for Redis: both go out on the worker's one connection, which
     * BullMQ shares and Redis serves in order, so the end is recorded (and the
     * fairest next job put at the front) before the calls awaited after it
     * (settle, BullMQ's own end of the job and its fetch of the next one).
     */
    const fair = (call: Promise<void>) => void call.catch((err: Error) => options.onError?.(err));
    fair(fairShare.started(tenant, jobId));
    const running: RunningJob = {
      id: job.id as string,
      task: job.data.task,
      input: job.data.input,
      timeoutMs: job.data.timeoutMs,
      attempt: job.attemptsMade + 1,
      fingerprint: job.data.fingerprint,
      // A held job's delay only kept it for the dispatcher; it was queued from its creation.
      queuedAt: job.timestamp + (isHeld({ delay: job.opts.delay }) ? 0 : (job.opts.delay ?? 0)),
      canceled: isMarkedCanceled(job),
      progress: (value) => {
        job.updateProgress(value).catch(() => {});
      },
      log: (line) => {
        job.log(line).catch(() => {});
      },
    };
    // A workflow step reads the results its input names first; any other job runs as added.
    const { results } = job.data;
    const attempt = results
      ? stepInput(redis, keys, job.data.input, results).then((input) =>
          options.run({ ...running, input }),
        )
      : options.run(running);
    try {
      const { result, bytes, binary } = await attempt.finally(() =>
        fair(fairShare.ended(tenant, jobId)),
      );
      // Bytes are kept as long as the job: the sweep deletes them when its retention ends.
      const stored =
        binary &&
        (await storeBinaryResult(
          redis,
          keys,
          options.blobs,
          { queue, id: jobId },
          binary,
          Date.now() + options.retention.completedMs,
        ));
      const settled = settle(job, bytes, options.retention.completedMs).catch(() => true);
      // A result within the allowance is never refused, so BullMQ's end of the job need not wait
      // for the ledger: on one connection Redis still serves the settle first (a round trip less a
      // job). On a cluster the two go to different nodes, in no set order: wait there.
      if (!stored && bytes <= RESULT_ALLOWANCE_BYTES && !isCluster(redis)) return result;
      if (!(await settled)) {
        await stored?.discard();
        throw new JobFailure(
          'result_too_large',
          `The result (${bytes} bytes${stored ? '' : ' of JSON'}) does not fit the tenant's storage quota (API_MAX_STORED_BYTES_PER_TENANT) while its other jobs hold their data`,
          true,
        );
      }
      return stored ? stored.descriptor : result;
    } catch (err) {
      if (err instanceof HandBack && token) {
        // BullMQ counted this pick as an attempt started; a job handed back was not attempted.
        await redis.hincrby(keys.bullKey(queue, job.id as string), 'ats', -1);
        if (err.delayMs > 0) {
          await job.moveToDelayed(Date.now() + err.delayMs, token);
          throw new DelayedError();
        }
        await job.moveToWait(token);
        throw new WaitingError();
      }
      const failure = toBullError(err);
      const last = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      if (failure instanceof UnrecoverableError || last) await forgetFailed(job);
      throw failure;
    }
  };

  const worker = new Worker<JobData>(queue, processor, {
    connection: redis,
    prefix: keys.queuePrefix(queue),
    concurrency: options.concurrency,
    lockDuration: LOCK_MS,
    stalledInterval: STALLED_CHECK_MS,
    maxStalledCount: MAX_STALLED,
  });
  worker.on('error', (err) => options.onError?.(err));
  // A job the stalled checker fails (its worker lost too often) never reached the processor's end.
  // BullMQ sets finishedOn only when a failure is final (not on a failed attempt that will be retried).
  worker.on('failed', (job) => {
    if (job?.finishedOn) void forgetFailed(job).then(() => nudge(job));
  });
  worker.on('completed', (job) => nudge(job));

  void beat();
  const beats = setInterval(beat, HEARTBEAT_EVERY_MS);
  beats.unref();

  const sweeper = new Queue(queue, { connection: redis, prefix: keys.queuePrefix(queue) });
  sweeper.on('error', () => {});
  const sweep = setInterval(
    () => {
      Promise.all([
        sweeper.clean(options.retention.completedMs, 1000, 'completed'),
        sweeper.clean(options.retention.failedMs, 1000, 'failed'),
      ]).catch(() => {});
    },
    Math.min(SWEEP_EVERY_MS, options.retention.completedMs),
  );
  sweep.unref();

  return {
    queue,
    setConcurrency: (concurrency) => {
      if (worker.concurrency !== concurrency) worker.concurrency = concurrency;
    },
    close: async () => {
      clearInterval(sweep);
      clearInterval(beats);
      await worker.close();
      await sweeper.close();
      await webhooks.close();
    },
  };
}

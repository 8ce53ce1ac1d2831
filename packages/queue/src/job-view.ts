import { isFinal, type JobState, type JobSummary, type JobView } from '@offload/contract';
import type { JobsOptions } from 'bullmq';
import { Job } from 'bullmq';
import type { RedisClient } from './connection.ts';
import { decodeFailure, encodeFailure } from './failure.ts';
import { isHeld } from './fair-share.ts';
import { luaScript } from './lua-script.ts';
import { PENDING_WEBHOOK } from './webhook-deliveries.ts';

/**
 * Marks, in a job's BullMQ options (which BullMQ keeps as given and every
 * read of the job's summary already fetches), a job submitted with a webhook:
 * only such a job's read looks up its delivery, so one without costs nothing.
 */
export const WEBHOOK_MARK = { webhook: 1 } as const;

/** Whether the job was submitted with a webhook (see WEBHOOK_MARK). */
export function hasWebhook(opts: JobsOptions): boolean {
  return (opts as { webhook?: unknown }).webhook === WEBHOOK_MARK.webhook;
}

/** What a job carries in Redis besides BullMQ's own fields. */
export interface JobData {
  task: string;
  input: unknown;
  /** Owner of the job; every read checks it. */
  tenant: string;
  /** Hard time limit of one attempt, ms. */
  timeoutMs: number;
  /** The catalog version (fingerprint) the API validated the input against; see catalog.ts. */
  fingerprint?: string;
  /** The workflow this job is a step of (see workflows.ts). */
  workflow?: string;
  /**
   * Step id → the job holding its result, for each step the input's
   * `$result` placeholders name: read and filled in when the job starts
   * (see step-input.ts), so a result is never copied into its dependents.
   */
  results?: StepResults;
}

/** Step id → where its result is: the job and its queue. */
export type StepResults = Record<string, { queue: string; jobId: string }>;

/**
 * BullMQ state names (as `Job.getState` answers) → public state. The one such
 * mapping. A held job (see fair-share.ts) is delayed to BullMQ but queued to its owner.
 */
export function publicState(
  bullState: string,
  failedReason: string | undefined,
  held = false,
): JobState | null {
  switch (bullState) {
    case 'waiting':
    case 'prioritized':
    case 'waiting-children':
      return 'queued';
    case 'delayed':
      return held ? 'queued' : 'delayed';
    case 'active':
      return 'running';
    case 'completed':
      return 'completed';
    case 'failed':
      return decodeFailure(failedReason).code === 'canceled' ? 'canceled' : 'failed';
    default:
      return null;
  }
}

function iso(ms: number | undefined | null): string | null {
  return ms ? new Date(ms).toISOString() : null;
}

function percentOf(progress: unknown): number {
  const value =
    typeof progress === 'number'
      ? progress
      : typeof progress === 'object' && progress !== null && 'percent' in progress
        ? Number((progress as { percent: unknown }).percent)
        : 0;
  return Number.isFinite(value) ? Math.min(100, Math.max(0, value)) : 0;
}

/**
 * What a view is made of, from a BullMQ Job or from a few fields of its hash
 * (readJobSummary): never the input, never the result.
 */
export interface JobRecord {
  id: string;
  /** The job's BullMQ name, which is its task's. */
  task: string;
  /** ms since epoch */
  timestamp: number;
  processedOn?: number | undefined;
  finishedOn?: number | undefined;
  progress: unknown;
  attemptsMade: number;
  attemptsStarted: number;
  maxAttempts: number;
  failedReason?: string | undefined;
  /** Held by the fair-share dispatcher: delayed in BullMQ, queued to its client. */
  held: boolean;
  /** Submitted with a webhook (its state is read from its delivery). */
  webhook: boolean;
  /** Has BullMQ's `delay` (set by a delayed add, cleared when the job is promoted to its wait list). */
  delayed: boolean;
  /** A cancel of it was recorded (CANCEL_MARK): its cancel record says what it is, not BullMQ. */
  canceled: boolean;
}

/**
 * The field a cancel sets in the job's hash besides writing its record: a
 * read of the job's fields learns of the cancel without reading the record,
 * which only a canceled job's read then fetches (one command less per read).
 */
export const CANCEL_MARK = 'canceled';

/** What a job canceled before it started failed with; a cancel also writes it into the job's hash. */
export const CANCELED_BEFORE_START = encodeFailure('canceled', 'Canceled before it started');

/**
 * Marks a job canceled in its hash, if the job still exists (never creates a
 * hash): CANCEL_MARK for reads, and its failure reason for workers, which
 * BullMQ hands them with the job: a worker that takes the job after this
 * (one whose worker was lost while running it, say) fails it unrun without
 * asking Redis. KEYS: the job's. ARGV: the reason.
 */
const markCanceled = luaScript(
  'mark_canceled',
  1,
  `if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], '${CANCEL_MARK}', 1, 'failedReason', ARGV[1])
end`,
);

/** Marks the job (its hash key) canceled, after its cancel record is written. */
export async function markJobCanceled(redis: RedisClient, jobKey: string): Promise<void> {
  await markCanceled(redis, [jobKey], [CANCELED_BEFORE_START]);
}

/** Whether a job as BullMQ hands it to a worker was marked canceled (markJobCanceled). */
export function isMarkedCanceled(job: { failedReason?: string | undefined }): boolean {
  return job.failedReason === CANCELED_BEFORE_START;
}

/**
 * The BullMQ state a job's fields settle on their own, read at one moment
 * (one HMGET): never started (no processedOn, which only moveToActive sets)
 * and not finished, it is waiting (or prioritized), or delayed while its
 * `delay` stands. Null when they do not (it ran: active, finished, or
 * waiting or delayed again after a lost worker or a failed attempt); the
 * caller asks BullMQ.
 */
export function stateFromFields(record: JobRecord): 'waiting' | 'delayed' | null {
  if (record.processedOn || record.finishedOn) return null;
  return record.delayed ? 'delayed' : 'waiting';
}

export function recordOf(job: Job<JobData>): JobRecord {
  return {
    id: job.id as string,
    task: job.name,
    timestamp: job.timestamp,
    processedOn: job.processedOn,
    finishedOn: job.finishedOn,
    progress: job.progress,
    attemptsMade: job.attemptsMade,
    attemptsStarted: job.attemptsStarted,
    maxAttempts: job.opts.attempts ?? 1,
    failedReason: job.failedReason,
    held: isHeld(job),
    webhook: hasWebhook(job.opts),
    delayed: job.delay > 0,
    canceled: false,
  };
}

/** The hash fields readJobSummary asks for, in the order of JobRecord's parse below. */
export const SUMMARY_FIELDS = [
  'name',
  'opts',
  'timestamp',
  'processedOn',
  'finishedOn',
  'progress',
  'attemptsMade',
  'atm',
  'ats',
  'failedReason',
  'delay',
  CANCEL_MARK,
] as const;

/** A JobRecord from the SUMMARY_FIELDS of a job's hash (HMGET order); null when the hash is gone. */
export function recordFromFields(id: string, fields: (string | null)[]): JobRecord | null {
  const [
    name,
    opts,
    timestamp,
    processedOn,
    finishedOn,
    progress,
    made,
    atm,
    ats,
    failedReason,
    delay,
    canceled,
  ] = fields;
  if (name === null || name === undefined || !timestamp) return null;
  const parsedOpts = Job.optsFromJSON(opts ?? undefined);
  const int = (text: string | null | undefined) => (text ? Number.parseInt(text, 10) : undefined);
  return {
    id,
    task: name,
    timestamp: Number(timestamp),
    processedOn: int(processedOn),
    finishedOn: int(finishedOn),
    progress: progress ? JSON.parse(progress) : 0,
    attemptsMade: int(made ?? atm) ?? 0,
    attemptsStarted: int(ats) ?? 0,
    maxAttempts: parsedOpts.attempts ?? 1,
    failedReason: failedReason ?? undefined,
    held: isHeld({ delay: delay ?? undefined }),
    webhook: hasWebhook(parsedOpts),
    delayed: Number(delay) > 0,
    canceled: canceled !== null && canceled !== undefined,
  };
}

export function toJobSummary(job: JobRecord, state: JobState): JobSummary {
  const running = state === 'running';
  const finished = isFinal(state);
  return {
    id: job.id,
    task: job.task,
    state,
    progress: state === 'completed' ? 100 : percentOf(job.progress),
    // Attempts started (BullMQ's attemptsStarted): a run cut short by a lost worker counts too,
    // although only failures use up `max` (a lost worker's job runs again up to twice more).
    attempts: {
      made: Math.max(job.attemptsStarted, job.attemptsMade + (running ? 1 : 0)),
      max: job.maxAttempts,
    },
    error: state === 'failed' || state === 'canceled' ? decodeFailure(job.failedReason) : null,
    createdAt: new Date(job.timestamp).toISOString(),
    // Never before the job was created. A job fetched by the end of the worker's previous job
    // gets that end's timestamp as processedOn, stamped in the worker before the call reached
    // Redis: a job added meanwhile would seem to start before it existed (by up to that call's
    // latency, 89 ms seen on a busy Redis Cluster).
    startedAt:
      (running || finished) && job.processedOn
        ? iso(Math.max(job.processedOn, job.timestamp))
        : null,
    finishedAt: finished ? iso(job.finishedOn) : null,
    ...(job.webhook && { webhook: PENDING_WEBHOOK }),
  };
}

/** The view of a summary: `result` in its place, after `attempts`, as the wire shows it. */
export function withResult(summary: JobSummary, result: unknown): JobView {
  const { id, task, state, progress, attempts, ...rest } = summary;
  return { id, task, state, progress, attempts, result, ...rest };
}

export function toJobView(job: Job<JobData>, state: JobState): JobView {
  return withResult(
    toJobSummary(recordOf(job), state),
    state === 'completed' ? (job.returnvalue ?? null) : null,
  );
}

import { isFinal, type JobState, type JobView } from '@offload/contract';
import type { Job } from 'bullmq';
import { decodeFailure } from './failure.ts';

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
}

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

export function toJobView(job: Job<JobData>, state: JobState): JobView {
  const running = state === 'running';
  const finished = isFinal(state);
  return {
    id: job.id as string,
    task: job.data.task,
    state,
    progress: state === 'completed' ? 100 : percentOf(job.progress),
    // Attempts started (BullMQ's attemptsStarted): a run cut short by a lost worker counts too,
    // although only failures use up `max` (a lost worker's job runs again up to twice more).
    attempts: {
      made: Math.max(job.attemptsStarted, job.attemptsMade + (running ? 1 : 0)),
      max: job.opts.attempts ?? 1,
    },
    result: state === 'completed' ? (job.returnvalue ?? null) : null,
    error: state === 'failed' || state === 'canceled' ? decodeFailure(job.failedReason) : null,
    createdAt: new Date(job.timestamp).toISOString(),
    startedAt: running || finished ? iso(job.processedOn) : null,
    finishedAt: finished ? iso(job.finishedOn) : null,
  };
}

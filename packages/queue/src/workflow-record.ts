import type { JobView, StepFailurePolicy, WorkflowState, WorkflowView } from '@offload/contract';
import { guardRedis, type RedisClient } from './connection.ts';
import type { SubmitRequest } from './job-queues.ts';
import type { OffloadKeys } from './keys.ts';
import { PENDING_WEBHOOK } from './webhook-deliveries.ts';

/**
 * A workflow's record as Redis holds it (one hash, keys.workflow(id)) and the
 * views made from it: the workflow's, and a step's before its job is added.
 */

/** A step as the API resolved it: the job to add once `needs` have completed (its input may hold `$result` placeholders). */
export interface WorkflowStep {
  request: SubmitRequest;
  needs: string[];
}

export interface WorkflowRequest {
  tenant: string;
  /** Step id → step, in the order the client gave them. */
  steps: Record<string, WorkflowStep>;
  onStepFailure: StepFailurePolicy;
  /** Where the workflow's end is POSTed (checked by the API like a job's). */
  webhook?: { url: string };
}

export interface PlannedStep extends WorkflowStep {
  jobId: string;
}

/**
 * A step's mark in the record: its job is being added (`submitting`: if it
 * is missing, it is added again), was added (`submitted`), or the step ended
 * without a job (its final view: canceled, or failed before it could start).
 * No mark: blocked.
 */
export type StepMark = 'submitting' | 'submitted' | JobView;

export interface WorkflowRecord {
  id: string;
  tenant: string;
  createdAt: number;
  onStepFailure: StepFailurePolicy;
  plan: Record<string, PlannedStep>;
  marks: Map<string, StepMark>;
  /**
   * The final view (without its result) of each step whose job an advance
   * saw finished: the step stays finished once its job has passed its
   * retention and is gone (`done:<step>` fields).
   */
  done: Map<string, JobView>;
  /** Why the owner canceled it; null unless DELETE asked. */
  cancel: string | null;
  /** Set once final. */
  state: WorkflowState | null;
  finishedAt: number | null;
  /** Created with a webhook (field `webhook`): its delivery's id is the workflow's. */
  webhook: boolean;
}

/** A step now: `waiting` (not added yet), `live` (its job is unfinished), or `done` (its view is final). */
export interface StepNow {
  phase: 'waiting' | 'live' | 'done';
  view: JobView;
  /** Finished, but its job (and so its result) is gone: past its retention. */
  expired?: boolean;
}

export const iso = (ms: number) => new Date(ms).toISOString();

/** A step whose job is yet to be added: `blocked`, with the id its job will have. */
export function waitingStep(record: WorkflowRecord, name: string): StepNow {
  const step = record.plan[name] as PlannedStep;
  const view: JobView = {
    id: step.jobId,
    task: step.request.task,
    state: 'blocked',
    progress: 0,
    attempts: { made: 0, max: step.request.attempts },
    result: null,
    error: null,
    createdAt: iso(record.createdAt),
    startedAt: null,
    finishedAt: null,
  };
  return { phase: 'waiting', view };
}

/** The workflow's view, each step as it is now. */
export function workflowView(record: WorkflowRecord, steps: Map<string, StepNow>): WorkflowView {
  return {
    id: record.id,
    state: record.state ?? 'running',
    steps: Object.fromEntries([...steps].map(([name, step]) => [name, step.view])),
    createdAt: iso(record.createdAt),
    finishedAt: record.finishedAt === null ? null : iso(record.finishedAt),
    ...(record.webhook && { webhook: PENDING_WEBHOOK }),
  };
}

/** The workflow's record, or null when there is none (never created, or past its retention). */
export async function readWorkflow(
  redis: RedisClient,
  keys: OffloadKeys,
  id: string,
): Promise<WorkflowRecord | null> {
  const fields = await guardRedis(redis, () => redis.hgetall(keys.workflow(id)));
  if (!fields.tenant || !fields.plan) return null;
  const marks = new Map<string, StepMark>();
  const done = new Map<string, JobView>();
  for (const [field, value] of Object.entries(fields)) {
    if (field.startsWith('done:')) done.set(field.slice('done:'.length), JSON.parse(value));
    if (!field.startsWith('step:')) continue;
    const mark =
      value === 'submitting' || value === 'submitted' ? value : (JSON.parse(value) as JobView);
    marks.set(field.slice('step:'.length), mark);
  }
  return {
    id,
    tenant: fields.tenant,
    createdAt: Number(fields.createdAt),
    onStepFailure: fields.onStepFailure === 'continue' ? 'continue' : 'cancel_rest',
    plan: JSON.parse(fields.plan) as Record<string, PlannedStep>,
    marks,
    done,
    cancel: fields.cancel ?? null,
    state: (fields.state as WorkflowState | undefined) ?? null,
    finishedAt: fields.finishedAt ? Number(fields.finishedAt) : null,
    webhook: fields.webhook === '1',
  };
}

import { z } from 'zod';

/**
 * The wire contract (DESIGN.md §3): what crosses HTTP and Redis between the
 * API, the workers, the dashboard and the clients. Each type is inferred from
 * its schema under the same name, so the API annotates, the queue maps and
 * the client imports one definition; nothing here knows Hono, BullMQ or Redis.
 */

export const JOB_STATES = [
  'queued',
  'delayed',
  /** A workflow step waiting for the steps it needs. */
  'blocked',
  'running',
  'completed',
  'failed',
  'canceled',
] as const;
export const JobState = z.enum(JOB_STATES);
export type JobState = z.infer<typeof JobState>;

/** States a job never leaves. */
export const FINAL_STATES: ReadonlySet<JobState> = new Set(['completed', 'failed', 'canceled']);
export const isFinal = (state: JobState): boolean => FINAL_STATES.has(state);

export const JOB_ERROR_CODES = [
  'timeout',
  'task_error',
  'worker_lost',
  'out_of_memory',
  'canceled',
  'invalid_input',
  'invalid_output',
  'result_too_large',
] as const;
export const JobErrorCode = z.enum(JOB_ERROR_CODES);
export type JobErrorCode = z.infer<typeof JobErrorCode>;

export const JobError = z
  .object({ code: JobErrorCode, message: z.string() })
  .meta({ id: 'JobError', description: 'Why a job failed or was canceled' });
export type JobError = z.infer<typeof JobError>;

/**
 * Where a job's or a workflow's end is POSTed (DESIGN.md §3, README "Webhooks"):
 * http(s) only, no credentials in it. The API also refuses addresses that are
 * not public (see packages/queue/src/webhook-address.ts).
 */
export const WebhookOption = z
  .strictObject({
    url: z
      .string()
      .max(2048)
      .refine((text) => URL.canParse(text), 'is not a URL')
      .refine((text) => /^https?:$/.test(URL.parse(text)?.protocol ?? ''), 'must be http or https')
      .refine((text) => {
        const url = URL.parse(text);
        return !url?.username && !url?.password;
      }, 'must not carry credentials (user:password@)'),
  })
  .meta({ id: 'WebhookOption', description: 'POST the end of the job (or workflow) to this URL' });
export type WebhookOption = z.infer<typeof WebhookOption>;

export const WEBHOOK_STATES = ['pending', 'delivered', 'failed'] as const;

/** How the webhook of a job (or workflow) fares: `failed` once its retries are spent or it answered 410. */
export const WebhookState = z
  .object({
    state: z.enum(WEBHOOK_STATES),
    /** Delivery attempts made. */
    attempts: z.number().int(),
    /** HTTP status of the latest attempt; null before the first, or when it got no answer. */
    lastStatus: z.number().int().nullable(),
  })
  .meta({ id: 'WebhookState', description: 'Delivery of the webhook of a job or workflow' });
export type WebhookState = z.infer<typeof WebhookState>;

/** The public view of a job. `result` is the task's output once completed. */
export const JobView = z
  .object({
    id: z.string(),
    task: z.string(),
    state: JobState,
    /** 0–100 */
    progress: z.number().min(0).max(100),
    attempts: z.object({ made: z.number().int(), max: z.number().int() }),
    result: z.unknown().meta({
      description:
        'The task’s output once completed, else null. For a task that returns bytes, `{ contentType, size, url }` (size in bytes): GET its url, relative to the API, for the bytes',
    }),
    error: JobError.nullable(),
    createdAt: z.string(),
    startedAt: z.string().nullable(),
    finishedAt: z.string().nullable(),
    /** Only on a job submitted with `options.webhook`. */
    webhook: WebhookState.optional(),
  })
  .meta({ id: 'JobView', description: 'A job as its owner sees it' });
export type JobView = z.infer<typeof JobView>;

/**
 * A job without its result, as lists show it: a result may be megabytes, and
 * a page of them would cost every tenant's requests; GET /v1/jobs/{id} has it.
 */
export const JobSummary = JobView.omit({ result: true }).meta({
  id: 'JobSummary',
  description: 'A job as its owner sees it, without the result',
});
export type JobSummary = z.infer<typeof JobSummary>;

export const JobPage = z
  .object({
    jobs: z.array(JobSummary),
    /** Pass as `cursor` for the next page; null on the last one. */
    nextCursor: z.string().nullable(),
  })
  .meta({ id: 'JobPage', description: 'A page of jobs, newest first' });
export type JobPage = z.infer<typeof JobPage>;

export const WORKFLOW_STATES = ['running', 'completed', 'failed', 'canceled'] as const;
export const WorkflowState = z.enum(WORKFLOW_STATES);
export type WorkflowState = z.infer<typeof WorkflowState>;

/**
 * What a workflow does when one of its steps fails or is canceled:
 * `cancel_rest` cancels every unfinished step; `continue` runs on every step
 * that does not need it (those that do are canceled, as they cannot run).
 */
export const StepFailurePolicy = z.enum(['cancel_rest', 'continue']);
export type StepFailurePolicy = z.infer<typeof StepFailurePolicy>;

/** A workflow as its owner sees it: each step as the JobView of its job. */
export const WorkflowView = z
  .object({
    id: z.string(),
    state: WorkflowState,
    /** Step id → its job; a step whose needs have not all completed is `blocked`. */
    steps: z.record(z.string(), JobView),
    createdAt: z.string(),
    finishedAt: z.string().nullable(),
    /** Only on a workflow created with a `webhook`. */
    webhook: WebhookState.optional(),
  })
  .meta({ id: 'WorkflowView', description: 'A workflow and the job of each of its steps' });
export type WorkflowView = z.infer<typeof WorkflowView>;

/** Longest delay a job may ask for, ms (30 days); its tenant's index keeps it until it has run. */
export const MAX_DELAY_MS = 30 * 24 * 3600 * 1000;

/** Per-job overrides of a task's defaults. */
export const JobOptions = z.strictObject({
  /** 1 is the highest; jobs without a priority run before every prioritized one. */
  priority: z.number().int().min(1).max(2_097_152).optional(),
  /** Run no sooner than this many ms from now (at most MAX_DELAY_MS). */
  delayMs: z.number().int().min(0).max(MAX_DELAY_MS).optional(),
  /** Attempts in all, the first included. */
  attempts: z.number().int().min(1).max(25).optional(),
  /** Hard time limit of one attempt, ms (100 ms … 24 h). */
  timeoutMs: z
    .number()
    .int()
    .min(100)
    .max(24 * 3600 * 1000)
    .optional(),
  /** POST the job's end (completed, failed, canceled) here, signed (README "Webhooks"). */
  webhook: WebhookOption.optional(),
});
export type JobOptions = z.infer<typeof JobOptions>;

/** Backoff between attempts, as BullMQ understands it. `delay` in ms. */
export const Backoff = z.object({ type: z.enum(['fixed', 'exponential']), delay: z.number() });
export type Backoff = z.infer<typeof Backoff>;

export const TaskDefaults = z.object({
  /** Hard time limit of one attempt, ms. */
  timeoutMs: z.number().int(),
  /** Attempts in all, first included (1 = never retried). */
  attempts: z.number().int(),
  backoff: Backoff,
});
export type TaskDefaults = z.infer<typeof TaskDefaults>;

const jsonSchema = z.record(z.string(), z.unknown());

/**
 * What a worker publishes about one task it runs (DESIGN.md §2, the catalog).
 * `fingerprint` identifies the input and output schemas: two workers with the
 * same fingerprint accept and return the same shapes.
 */
export const CatalogEntry = z.object({
  name: z.string().min(1).max(100),
  description: z.string(),
  queue: z.string().min(1).max(64),
  /** JSON Schema of the input. */
  input: jsonSchema,
  /** JSON Schema of the output. */
  output: jsonSchema,
  defaults: TaskDefaults,
  /**
   * Largest input a job of this task may carry, bytes of its JSON; unset: the
   * API's API_MAX_INPUT_BYTES. Larger answers 413 `input_too_large`.
   */
  maxInputBytes: z.number().int().min(1).optional(),
  fingerprint: z.string().regex(/^[0-9a-f]{16}$/),
});
export type CatalogEntry = z.infer<typeof CatalogEntry>;

/** One published version of a task, as the catalog holds it. */
export const TaskVersion = z
  .object({
    fingerprint: z.string(),
    /** When a worker first published it. */
    publishedAt: z.string(),
    /** Live workers that run this version. */
    workers: z.number().int(),
  })
  .meta({ id: 'TaskVersion', description: 'One published version of a task' });
export type TaskVersion = z.infer<typeof TaskVersion>;

/** One entry of GET /v1/tasks: the version submits are validated against, and the others live. */
export const TaskInfo = CatalogEntry.extend({
  /** Live workers that serve this task, whatever version they run. */
  workers: z.number().int(),
  /** Every known version, newest first; more than one live means a rolling deploy (or a mismatch). */
  versions: z.array(TaskVersion),
}).meta({ id: 'TaskInfo', description: 'A task of the catalog, as workers published it' });
export type TaskInfo = z.infer<typeof TaskInfo>;

export const TaskList = z
  .object({ tasks: z.array(TaskInfo) })
  .meta({ id: 'TaskList', description: 'Every task of the catalog' });
export type TaskList = z.infer<typeof TaskList>;

/** A schedule as its owner sees it (DESIGN.md §3, /v1/schedules): `cron` or `everyMs`, never both. */
export const ScheduleView = z
  .object({
    id: z.string(),
    task: z.string(),
    input: z.unknown(),
    options: JobOptions.optional(),
    /** 5-field cron expression, read in `timezone`. */
    cron: z.string().optional(),
    /** Interval between firings, ms. */
    everyMs: z.number().int().optional(),
    /** IANA time zone of `cron`; `UTC` for an interval. */
    timezone: z.string(),
    /** When it fires next (ISO 8601). */
    nextRunAt: z.string(),
    createdAt: z.string(),
    /** Why its latest firing made no job (unknown task, invalid input, quota), with that firing's time; null when it made one. */
    lastError: z.string().nullable(),
    /** Ids of its latest jobs, newest first (GET /v1/schedules/{id} only). */
    recentJobs: z.array(z.string()).optional(),
  })
  .meta({ id: 'ScheduleView', description: 'A schedule: what it submits and when' });
export type ScheduleView = z.infer<typeof ScheduleView>;

export const ScheduleList = z
  .object({ schedules: z.array(ScheduleView) })
  .meta({ id: 'ScheduleList', description: "The caller's schedules, oldest first" });
export type ScheduleList = z.infer<typeof ScheduleList>;

export const FieldError = z.object({
  /** Dotted path into the request: `input.below`, `options.timeoutMs`, `wait`. */
  path: z.string(),
  message: z.string(),
});
export type FieldError = z.infer<typeof FieldError>;

/**
 * The closed set of error codes Offload's HTTP services answer with, and their
 * HTTP status. Adding a code means adding it here.
 */
export const ERROR_STATUS = {
  malformed_json: 400,
  json_too_deep: 400,
  request_aborted: 400,
  unauthorized: 401,
  cross_site_request: 403,
  not_found: 404,
  gone: 410,
  job_finished: 409,
  job_not_finished: 409,
  job_has_no_result: 409,
  workflow_finished: 409,
  idempotency_conflict: 409,
  payload_too_large: 413,
  input_too_large: 413,
  unsupported_media_type: 415,
  validation_failed: 422,
  unknown_task: 422,
  webhook_secret_missing: 422,
  rate_limited: 429,
  queue_quota_exceeded: 429,
  too_many_streams: 429,
  storage_quota_exceeded: 429,
  schedule_quota_exceeded: 429,
  internal: 500,
  redis_unavailable: 503,
  redis_misconfigured: 503,
  redis_out_of_memory: 503,
  redis_not_replicated: 503,
} as const;
export type ErrorCode = keyof typeof ERROR_STATUS;

/** An RFC 9457 problem document, the body of every error answer. */
export const Problem = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    code: z.enum(Object.keys(ERROR_STATUS) as [ErrorCode, ...ErrorCode[]]),
    errors: z.array(FieldError).optional(),
    requestId: z.string().optional(),
  })
  .meta({ id: 'Problem', description: 'An RFC 9457 problem document' });
export type Problem = z.infer<typeof Problem>;

import { z } from '@hono/zod-openapi';
import {
  type FieldError,
  JobOptions,
  JobState,
  StepFailurePolicy,
  WebhookOption,
} from '@offload/contract';
import { MAX_WORKFLOW_STEPS, STEP_ID } from '@offload/contract/workflow';

/**
 * The request schemas of the HTTP API: they validate requests and, through
 * @hono/zod-openapi, are the OpenAPI document. Answers use the wire contract
 * (@offload/contract); a task's input is checked against the catalog (task-catalog.ts).
 */

/** Per-job overrides of a task's defaults, named for the document. */
export const jobOptionsSchema = JobOptions.meta({
  id: 'JobOptions',
  description:
    "Overrides of the task's defaults. priority: 1 is highest; delayMs: ms before the job may run; attempts: in all, the first included; timeoutMs: hard limit of one attempt, ms; webhook: where the job's end (job.completed, job.failed, job.canceled) is POSTed, signed per Standard Webhooks.",
});

/**
 * Body of POST /v1/jobs as the route checks it: the envelope. The input is
 * checked against the task's published schema once the task is known; the
 * OpenAPI document shows one variant per task (openapi-document.ts).
 */
export const jobRequestSchema = z
  .strictObject({
    task: z.string().min(1).max(200),
    input: z
      .custom<unknown>((value) => value !== undefined, 'is required')
      .openapi({ type: 'object', description: 'The task’s input, as its published schema says' }),
    options: jobOptionsSchema.optional(),
  })
  .meta({ id: 'JobRequest' });
export type JobRequest = z.infer<typeof jobRequestSchema>;

/** Most jobs one POST /v1/jobs/batch carries. */
export const MAX_BATCH_JOBS = 1000;

/** An Idempotency-Key, as a header of POST /v1/jobs or a field of a batch item. */
export const idempotencyKeySchema = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces');

/** Body of POST /v1/jobs/batch: 1 … MAX_BATCH_JOBS job requests, each with its own optional idempotency key. */
export const batchRequestSchema = z
  .strictObject({
    jobs: z
      .array(
        z
          .strictObject({
            ...jobRequestSchema.shape,
            idempotencyKey: idempotencyKeySchema.optional().openapi({
              description: 'Makes retrying the batch safe for this job: kept 24 h per tenant',
            }),
          })
          .meta({ id: 'BatchJobRequest' }),
      )
      .min(1)
      .max(MAX_BATCH_JOBS),
  })
  .meta({ id: 'BatchRequest' });
export type BatchRequest = z.infer<typeof batchRequestSchema>;

export const jobIdParams = z.object({
  id: z.string().openapi({ param: { name: 'id', in: 'path' }, example: 'Zwyo85fHW0Ny-30Tt6xbcQ' }),
});

/** `?wait=S`: seconds, fractions allowed, 0–60. */
export const waitSchema = z
  .string()
  .regex(/^\d+(\.\d+)?$/, 'must be a number of seconds')
  .transform(Number)
  .pipe(z.number().max(60, 'must be at most 60 seconds'));

export const getJobQuery = z.object({
  wait: waitSchema.optional().openapi({
    param: { name: 'wait', in: 'query' },
    type: 'string',
    description:
      'Long-poll: hold the request until the job is finished or this many seconds (0–60) pass',
    example: '30',
  }),
});

export const listJobsQuery = z.strictObject({
  state: JobState.optional(),
  task: z.string().min(1).max(200).optional(),
  limit: z
    .string()
    .regex(/^\d+$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().int().min(1).max(100))
    .optional()
    .openapi({ type: 'string', description: 'Page size, 1–100 (default 20)', example: '20' }),
  cursor: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,200}$/, 'must be a cursor this API issued')
    .optional(),
});

/**
 * zod issues as the problem document's `errors`, their paths under `prefix`
 * (e.g. `input`). An unknown field is reported at its own path (`input.extra`).
 */
export function fieldErrors(error: z.ZodError, prefix?: string): FieldError[] {
  const at = (path: PropertyKey[]) =>
    [...(prefix ? [prefix] : []), ...path.map(String)].join('.') || '(body)';
  return error.issues
    .flatMap((issue) =>
      issue.code === 'unrecognized_keys'
        ? issue.keys
            .slice(0, MAX_FIELD_ERRORS)
            .map((key) => ({ path: at([...issue.path, key]), message: 'unknown field' }))
        : [{ path: at(issue.path), message: issue.message }],
    )
    .slice(0, MAX_FIELD_ERRORS);
}

/**
 * Most field errors one refused request reports: enough to fix it, never an
 * answer larger than the request (a body of 80,000 unknown keys once answered
 * with a 4 MB problem).
 */
export const MAX_FIELD_ERRORS = 20;

/** A step of a workflow: a job request, and the steps whose results it needs before it starts. */
export const workflowStepSchema = z
  .strictObject({
    ...jobRequestSchema.shape,
    needs: z
      .array(z.string())
      .max(MAX_WORKFLOW_STEPS)
      .optional()
      .openapi({ description: 'Ids of the steps that must complete before this one starts' }),
  })
  .meta({ id: 'WorkflowStep' });

/** Body of POST /v1/workflows. */
export const workflowRequestSchema = z
  .strictObject({
    steps: z
      .record(
        z.string().regex(STEP_ID, 'a step id is 1–64 letters, digits, _ or -'),
        workflowStepSchema,
      )
      .refine((steps) => Object.keys(steps).length >= 1, 'a workflow has at least one step')
      .refine(
        (steps) => Object.keys(steps).length <= MAX_WORKFLOW_STEPS,
        `a workflow has at most ${MAX_WORKFLOW_STEPS} steps`,
      )
      .openapi({
        description:
          'Step id → step. `{ "$result": "<stepId>" }` or `{ "$result": "<stepId>.<field>…" }` anywhere in an input is replaced by that step’s result (or a field of it) when the step starts; that step must be in `needs`.',
      }),
    onStepFailure: StepFailurePolicy.optional().openapi({
      description:
        'cancel_rest (default): a step that fails or is canceled cancels every unfinished step. continue: the steps that do not need it run on.',
    }),
    /** POSTs the workflow's end (workflow.completed, workflow.failed, workflow.canceled), signed. */
    webhook: WebhookOption.optional(),
  })
  .meta({ id: 'WorkflowRequest' });
export type WorkflowRequestBody = z.infer<typeof workflowRequestSchema>;

export const workflowIdParams = z.object({
  id: z.string().openapi({ param: { name: 'id', in: 'path' }, example: 'Zwyo85fHW0Ny-30Tt6xbcQ' }),
});

import { createRoute, z } from '@hono/zod-openapi';
import { JobPage, JobView, Problem, TaskList, WorkflowView } from '@offload/contract';
import { ERROR_STATUS, type ErrorCode } from '@offload/problem';
import {
  batchRequestSchema,
  getJobQuery,
  idempotencyKeySchema,
  jobIdParams,
  jobRequestSchema,
  listJobsQuery,
  MAX_BATCH_JOBS,
  workflowIdParams,
  workflowRequestSchema,
} from './schemas.ts';

/**
 * The routes of the HTTP API as OpenAPI operations. Each is registered with
 * its handler in app.ts, which validates requests with these very schemas.
 */

/** Problem answers a route may give, by status, for the document. */
export function problems(...codes: ErrorCode[]) {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of codes) {
    const status = ERROR_STATUS[code];
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  return Object.fromEntries(
    [...byStatus].map(([status, list]) => [
      status,
      {
        description: `Problem: ${list.join(', ')}`,
        content: { 'application/problem+json': { schema: Problem } },
      },
    ]),
  );
}

export const json = <T extends z.ZodType>(schema: T, description: string) => ({
  description,
  content: { 'application/json': { schema } },
});

/** Every /v1 route: a Bearer key (unless in open development mode), a rate limit, Redis. */
export const v1 = { security: [{ bearer: [] as string[] }] };
/**
 * Health and metrics: no key, no rate limit, so probes and scrapers need
 * nothing. Like every route they refuse what they do not read: a query
 * parameter answers 422.
 */
const open = {
  security: [],
  request: { query: z.strictObject({}) },
};
const openProblems = problems('validation_failed');
export const v1Problems = ['unauthorized', 'rate_limited', 'redis_unavailable'] as const;

export const healthRoute = createRoute({
  method: 'get',
  path: '/healthz',
  operationId: 'getHealth',
  tags: ['health'],
  ...open,
  summary: 'Liveness: the process is up',
  responses: {
    200: json(z.object({ status: z.literal('ok') }), 'Alive'),
    ...openProblems,
  },
});

const readiness = z.object({
  status: z.enum(['ready', 'unavailable', 'misconfigured', 'out_of_memory']),
  redis: z.enum(['up', 'down', 'unsafe', 'full']),
  problem: z.string().optional(),
  workers: z.number().int().nullable(),
});
export const readyRoute = createRoute({
  method: 'get',
  path: '/readyz',
  operationId: 'getReadiness',
  tags: ['health'],
  ...open,
  summary: 'Readiness: 200 while Redis answers and is safe for jobs; the body counts live workers',
  responses: {
    200: json(readiness, 'Ready'),
    503: json(readiness, 'Redis unreachable, unsafe for jobs, or out of memory'),
    ...openProblems,
  },
});

export const metricsRoute = createRoute({
  method: 'get',
  path: '/metrics',
  operationId: 'getMetrics',
  tags: ['health'],
  ...open,
  summary: 'Prometheus metrics, text exposition format',
  responses: {
    200: { description: 'Metrics (text/plain; version=0.0.4)' },
    ...openProblems,
  },
});

export const tasksRoute = createRoute({
  method: 'get',
  path: '/v1/tasks',
  operationId: 'listTasks',
  tags: ['tasks'],
  summary:
    'Every task the workers publish: input and output as JSON Schema, defaults, live workers',
  ...v1,
  responses: {
    200: json(TaskList, 'The task catalog'),
    ...problems(...v1Problems),
  },
});

export const idempotencyKeyHeader = 'idempotency-key';

/** What a submit (a job, a batch, a workflow's first steps) may answer besides its success. */
const submitProblems = problems(
  'malformed_json',
  'json_too_deep',
  'request_aborted',
  'idempotency_conflict',
  'payload_too_large',
  'input_too_large',
  'unsupported_media_type',
  'validation_failed',
  'unknown_task',
  'webhook_secret_missing',
  'queue_quota_exceeded',
  'storage_quota_exceeded',
  'redis_out_of_memory',
  'redis_not_replicated',
  ...v1Problems,
);

export const submitJobRoute = createRoute({
  method: 'post',
  path: '/v1/jobs',
  operationId: 'submitJob',
  tags: ['jobs'],
  summary: 'Submit a job',
  description:
    'Validates the input against the task’s schema and queues the job. With an Idempotency-Key, the same key and body again answer the same job (200); the same key with another body answers 409.',
  ...v1,
  request: {
    headers: z.object({
      [idempotencyKeyHeader]: idempotencyKeySchema.optional().openapi({
        description: 'Makes retries safe: kept 24 h per tenant',
        example: 'order-1234-render',
      }),
    }),
    body: {
      required: true,
      content: { 'application/json': { schema: jobRequestSchema } },
    },
  },
  responses: {
    202: {
      ...json(JobView, 'Queued (or delayed)'),
      headers: z.object({ Location: z.string() }),
    },
    200: json(JobView, 'The job an earlier request with this Idempotency-Key created'),
    ...submitProblems,
  },
});

export const submitBatchRoute = createRoute({
  method: 'post',
  path: '/v1/jobs/batch',
  operationId: 'submitJobBatch',
  tags: ['jobs'],
  summary: `Submit up to ${MAX_BATCH_JOBS} jobs at once, all or none`,
  description:
    'Validates every job, then queues them all, or none when one is invalid (422 with paths such as jobs.3.input.below) or a quota would be passed. An item with an idempotencyKey used before with the same job answers that job; used with another job, the batch answers 409 and adds nothing.',
  ...v1,
  request: {
    body: {
      required: true,
      content: { 'application/json': { schema: batchRequestSchema } },
    },
  },
  responses: {
    202: json(
      z.object({ jobs: z.array(JobView) }).meta({ id: 'BatchAnswer' }),
      'Queued (or delayed), in the order given; an item whose idempotencyKey was used before answers that job',
    ),
    ...submitProblems,
  },
});

export const listJobsRoute = createRoute({
  method: 'get',
  path: '/v1/jobs',
  operationId: 'listJobs',
  tags: ['jobs'],
  summary: "The caller's jobs, newest first, without their results",
  description:
    'Each job as a JobSummary: its view without `result` (GET /v1/jobs/{id} has it). A page may hold fewer than `limit` jobs while `nextCursor` is not null (filters are applied as the index is read).',
  ...v1,
  request: { query: listJobsQuery },
  responses: {
    200: json(JobPage, 'A page of jobs'),
    ...problems('validation_failed', ...v1Problems),
  },
});

export const getJobRoute = createRoute({
  method: 'get',
  path: '/v1/jobs/{id}',
  operationId: 'getJob',
  tags: ['jobs'],
  summary: 'A job, now or when it finishes (long-poll with ?wait=)',
  ...v1,
  request: { params: jobIdParams, query: getJobQuery },
  responses: {
    200: json(JobView, 'The job'),
    ...problems('not_found', 'gone', 'validation_failed', 'too_many_streams', ...v1Problems),
  },
});

export const jobEventsRoute = createRoute({
  method: 'get',
  path: '/v1/jobs/{id}/events',
  operationId: 'streamJobEvents',
  tags: ['jobs'],
  summary: 'Server-sent events of a job until it finishes',
  description:
    'Each connection starts with a `state` event (a snapshot), then `state` on every change of state and `progress` on every change of progress, then one of `completed`, `failed` or `canceled`, after which the stream ends. Every event’s data is the JobView. A stream open longer than the server’s limit (API_STREAM_MAX_S) ends without a final event: reconnect, and it starts again from a snapshot. Past the streams one tenant may hold open, 429 `too_many_streams`.',
  ...v1,
  request: { params: jobIdParams },
  responses: {
    200: {
      description: 'An event stream',
      content: { 'text/event-stream': { schema: z.string() } },
    },
    ...problems('not_found', 'gone', 'too_many_streams', ...v1Problems),
  },
});

export const cancelJobRoute = createRoute({
  method: 'delete',
  path: '/v1/jobs/{id}',
  operationId: 'cancelJob',
  tags: ['jobs'],
  summary: 'Cancel a job',
  ...v1,
  request: { params: jobIdParams },
  responses: {
    200: json(JobView, 'Canceled (now or earlier)'),
    ...problems('not_found', 'gone', 'job_finished', ...v1Problems),
  },
});

export const submitWorkflowRoute = createRoute({
  method: 'post',
  path: '/v1/workflows',
  operationId: 'submitWorkflow',
  tags: ['workflows'],
  summary: 'Submit a workflow: jobs that start as the steps they need complete',
  description:
    'Validates every step (tasks, inputs, needs, `$result` placeholders, no cycle), then queues the steps that need none (with an Idempotency-Key, the same key and body again answer the same workflow, 200; another body, 409); each other step is `blocked` until every step it needs has completed, and its input’s placeholders are then filled from their results. A step that fails or is canceled cancels every unfinished step (`onStepFailure: cancel_rest`, the default) or only those that need it (`continue`).',
  ...v1,
  request: {
    headers: z.object({
      [idempotencyKeyHeader]: idempotencyKeySchema.optional().openapi({
        description:
          'Makes retries safe: kept 24 h per tenant, apart from the keys of POST /v1/jobs',
        example: 'nightly-report-2026-12-03',
      }),
    }),
    body: {
      required: true,
      content: { 'application/json': { schema: workflowRequestSchema } },
    },
  },
  responses: {
    202: {
      ...json(WorkflowView, 'Started'),
      headers: z.object({ Location: z.string() }),
    },
    200: json(WorkflowView, 'The workflow an earlier request with this Idempotency-Key started'),
    // A workflow starts its first steps through the submit path: it may answer what a submit does.
    ...submitProblems,
  },
});

export const getWorkflowRoute = createRoute({
  method: 'get',
  path: '/v1/workflows/{id}',
  operationId: 'getWorkflow',
  tags: ['workflows'],
  summary: 'A workflow and the job of each step',
  ...v1,
  request: { params: workflowIdParams },
  responses: {
    200: json(WorkflowView, 'The workflow'),
    ...problems('not_found', ...v1Problems),
  },
});

export const cancelWorkflowRoute = createRoute({
  method: 'delete',
  path: '/v1/workflows/{id}',
  operationId: 'cancelWorkflow',
  tags: ['workflows'],
  summary: 'Cancel every unfinished step of a workflow',
  ...v1,
  request: { params: workflowIdParams },
  responses: {
    200: json(WorkflowView, 'Canceled (now or earlier)'),
    ...problems('not_found', 'workflow_finished', ...v1Problems),
  },
});

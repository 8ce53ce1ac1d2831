import { createRoute, z } from '@hono/zod-openapi';
import { ERROR_STATUS, type ErrorCode } from '@offload/problem';
import type { TaskRegistry } from '@offload/tasks';
import {
  getJobQuery,
  jobIdParams,
  jobPageSchema,
  jobRequestSchema,
  jobViewSchema,
  listJobsQuery,
  problemSchema,
} from './schemas.ts';

/**
 * The routes of the HTTP API as OpenAPI operations. Each is registered with
 * its handler in app.ts, which validates requests with these very schemas.
 */

/** Problem answers a route may give, by status, for the document. */
function problems(...codes: ErrorCode[]) {
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
        content: { 'application/problem+json': { schema: problemSchema } },
      },
    ]),
  );
}

const json = <T extends z.ZodType>(schema: T, description: string) => ({
  description,
  content: { 'application/json': { schema } },
});

/** Every /v1 route: a Bearer key (unless in open development mode), a rate limit, Redis. */
const v1 = { security: [{ bearer: [] as string[] }] };
const v1Problems = ['unauthorized', 'rate_limited', 'redis_unavailable'] as const;

export const healthRoute = createRoute({
  method: 'get',
  path: '/healthz',
  tags: ['health'],
  summary: 'Liveness: the process is up',
  responses: { 200: json(z.object({ status: z.literal('ok') }), 'Alive') },
});

const readiness = z.object({
  status: z.enum(['ready', 'unavailable', 'misconfigured']),
  redis: z.enum(['up', 'down', 'unsafe']),
  problem: z.string().optional(),
  workers: z.number().int().nullable(),
});
export const readyRoute = createRoute({
  method: 'get',
  path: '/readyz',
  tags: ['health'],
  summary: 'Readiness: 200 while Redis answers and is safe for jobs; the body counts live workers',
  responses: {
    200: json(readiness, 'Ready'),
    503: json(readiness, 'Redis unreachable or unsafe for jobs'),
  },
});

export const metricsRoute = createRoute({
  method: 'get',
  path: '/metrics',
  tags: ['health'],
  summary: 'Prometheus metrics, text exposition format',
  responses: { 200: { description: 'Metrics (text/plain; version=0.0.4)' } },
});

export function tasksRoute() {
  const task = z.object({
    name: z.string(),
    description: z.string(),
    queue: z.string(),
    input: z.record(z.string(), z.unknown()).openapi({ description: 'JSON Schema of the input' }),
    output: z.record(z.string(), z.unknown()).openapi({ description: 'JSON Schema of the output' }),
    defaults: z.object({
      timeoutMs: z.number().int(),
      attempts: z.number().int(),
      backoff: z.object({ type: z.enum(['fixed', 'exponential']), delay: z.number() }),
    }),
  });
  return createRoute({
    method: 'get',
    path: '/v1/tasks',
    tags: ['tasks'],
    summary: 'Every task: its input and output as JSON Schema, and its defaults',
    ...v1,
    responses: {
      200: json(z.object({ tasks: z.array(task) }), 'The tasks'),
      ...problems(...v1Problems),
    },
  });
}

export const idempotencyKeyHeader = 'idempotency-key';

export function submitJobRoute(registry: TaskRegistry) {
  return createRoute({
    method: 'post',
    path: '/v1/jobs',
    tags: ['jobs'],
    summary: 'Submit a job',
    description:
      'Validates the input against the task’s schema and queues the job. With an Idempotency-Key, the same key and body again answer the same job (200); the same key with another body answers 409.',
    ...v1,
    request: {
      headers: z.object({
        [idempotencyKeyHeader]: z
          .string()
          .min(1)
          .max(255)
          .regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces')
          .optional()
          .openapi({
            description: 'Makes retries safe: kept 24 h per tenant',
            example: 'order-1234-render',
          }),
      }),
      body: {
        required: true,
        content: { 'application/json': { schema: jobRequestSchema(registry) } },
      },
    },
    responses: {
      202: {
        ...json(jobViewSchema, 'Queued (or delayed)'),
        headers: z.object({ Location: z.string() }),
      },
      200: json(jobViewSchema, 'The job an earlier request with this Idempotency-Key created'),
      ...problems(
        'malformed_json',
        'json_too_deep',
        'idempotency_conflict',
        'payload_too_large',
        'unsupported_media_type',
        'validation_failed',
        'unknown_task',
        'queue_quota_exceeded',
        ...v1Problems,
      ),
    },
  });
}

export const listJobsRoute = createRoute({
  method: 'get',
  path: '/v1/jobs',
  tags: ['jobs'],
  summary: "The caller's jobs, newest first",
  description:
    'A page may hold fewer than `limit` jobs while `nextCursor` is not null (filters are applied as the index is read).',
  ...v1,
  request: { query: listJobsQuery },
  responses: {
    200: json(jobPageSchema, 'A page of jobs'),
    ...problems('validation_failed', ...v1Problems),
  },
});

export const getJobRoute = createRoute({
  method: 'get',
  path: '/v1/jobs/{id}',
  tags: ['jobs'],
  summary: 'A job, now or when it finishes (long-poll with ?wait=)',
  ...v1,
  request: { params: jobIdParams, query: getJobQuery },
  responses: {
    200: json(jobViewSchema, 'The job'),
    ...problems('not_found', 'gone', 'validation_failed', ...v1Problems),
  },
});

export const jobEventsRoute = createRoute({
  method: 'get',
  path: '/v1/jobs/{id}/events',
  tags: ['jobs'],
  summary: 'Server-sent events of a job until it finishes',
  description:
    'Each connection starts with a `state` event (a snapshot), then `state` on every change of state and `progress` on every change of progress, then one of `completed`, `failed` or `canceled`, after which the stream ends. Every event’s data is the JobView. Reconnecting starts again from a snapshot.',
  ...v1,
  request: { params: jobIdParams },
  responses: {
    200: {
      description: 'An event stream',
      content: { 'text/event-stream': { schema: z.string() } },
    },
    ...problems('not_found', 'gone', ...v1Problems),
  },
});

export const cancelJobRoute = createRoute({
  method: 'delete',
  path: '/v1/jobs/{id}',
  tags: ['jobs'],
  summary: 'Cancel a job',
  ...v1,
  request: { params: jobIdParams },
  responses: {
    200: json(jobViewSchema, 'Canceled (now or earlier)'),
    ...problems('not_found', 'gone', 'job_finished', ...v1Problems),
  },
});

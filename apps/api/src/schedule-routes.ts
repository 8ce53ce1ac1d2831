import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { ScheduleList, ScheduleView } from '@offload/contract';
import { ApiError, type FieldError } from '@offload/problem';
import {
  firstFiring,
  type JobQueues,
  ScheduleQuotaExceededError,
  type ScheduleTiming,
  timingErrors,
  toScheduleView,
} from '@offload/queue';
import type { AppEnv } from './auth.ts';
import { jsonBody } from './json-body.ts';
import { json, problems, v1, v1Problems } from './routes.ts';
import { fieldErrors, jobRequestSchema, MAX_FIELD_ERRORS } from './schemas.ts';
import type { TaskCatalog } from './task-catalog.ts';
import { taskFor } from './task-requests.ts';
import { checkWebhooks, type WebhookPolicy } from './webhook-requests.ts';

/**
 * POST/GET/DELETE /v1/schedules (DESIGN.md §3): a task and its input, checked
 * as POST /v1/jobs checks them, submitted on a cron expression or an
 * interval. The firing itself is the Scheduler's (@offload/queue).
 */

export interface ScheduleLimits {
  /** API_MAX_SCHEDULES_PER_TENANT; 0: no limit. */
  maxPerTenant: number;
  /** API_SCHEDULE_MIN_INTERVAL_MS: shortest interval, and shortest gap between cron firings, ms. */
  minIntervalMs: number;
}

/** Longest interval, ms (a year): a later firing could not be told from a mistake. */
const MAX_EVERY_MS = 366 * 24 * 3600 * 1000;
/** Seconds a client over its schedule limit is told to wait: schedules go only when deleted. */
const SCHEDULE_QUOTA_RETRY_AFTER_S = 60;

export const scheduleRequestSchema = z
  .strictObject({
    ...jobRequestSchema.shape,
    cron: z.string().min(1).max(200).optional().openapi({
      description: '5 fields: minute hour day-of-month month day-of-week. Either cron or everyMs.',
      example: '0 3 * * *',
    }),
    timezone: z.string().min(1).max(64).optional().openapi({
      description: 'IANA time zone the cron expression is read in (default UTC)',
      example: 'Europe/Berlin',
    }),
    everyMs: z.number().int().min(1).max(MAX_EVERY_MS).optional().openapi({
      description:
        'Interval between firings, ms (at least API_SCHEDULE_MIN_INTERVAL_MS, 1000 by default). Either cron or everyMs.',
      example: 60_000,
    }),
  })
  .superRefine((body, ctx) => {
    if ((body.cron === undefined) === (body.everyMs === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['cron'], message: 'give either cron or everyMs' });
    }
    if (body.timezone !== undefined && body.cron === undefined) {
      ctx.addIssue({ code: 'custom', path: ['timezone'], message: 'applies to cron only' });
    }
  })
  .meta({ id: 'ScheduleRequest' });

const scheduleIdParams = z.object({
  id: z
    .string()
    .max(64)
    .openapi({ param: { name: 'id', in: 'path' }, example: 'q7Zp2m0bWc9xYk3L' }),
});

export const createScheduleRoute = createRoute({
  method: 'post',
  path: '/v1/schedules',
  operationId: 'createSchedule',
  tags: ['schedules'],
  summary: 'Submit a job on a cron expression or an interval',
  description:
    'The task and input are checked as POST /v1/jobs checks them. Each firing makes exactly one job, however many API processes run; firings missed while none ran make one job when the next starts.',
  ...v1,
  request: {
    body: { required: true, content: { 'application/json': { schema: scheduleRequestSchema } } },
  },
  responses: {
    201: {
      ...json(ScheduleView, 'Created'),
      headers: z.object({ Location: z.string() }),
    },
    ...problems(
      'malformed_json',
      'json_too_deep',
      'request_aborted',
      'payload_too_large',
      'input_too_large',
      'unsupported_media_type',
      'validation_failed',
      'unknown_task',
      'webhook_secret_missing',
      'schedule_quota_exceeded',
      ...v1Problems,
    ),
  },
});

export const listSchedulesRoute = createRoute({
  method: 'get',
  path: '/v1/schedules',
  operationId: 'listSchedules',
  tags: ['schedules'],
  summary: "The caller's schedules, oldest first",
  ...v1,
  responses: {
    200: json(ScheduleList, 'Every schedule of the caller'),
    ...problems(...v1Problems),
  },
});

export const getScheduleRoute = createRoute({
  method: 'get',
  path: '/v1/schedules/{id}',
  operationId: 'getSchedule',
  tags: ['schedules'],
  summary: 'A schedule, with the ids of its latest jobs (recentJobs, newest first)',
  ...v1,
  request: { params: scheduleIdParams },
  responses: {
    200: json(ScheduleView, 'The schedule'),
    ...problems('not_found', 'validation_failed', ...v1Problems),
  },
});

export const deleteScheduleRoute = createRoute({
  method: 'delete',
  path: '/v1/schedules/{id}',
  operationId: 'deleteSchedule',
  tags: ['schedules'],
  summary: 'Delete a schedule: it fires no more',
  ...v1,
  request: { params: scheduleIdParams },
  responses: {
    204: { description: 'Deleted' },
    ...problems('not_found', 'validation_failed', ...v1Problems),
  },
});

const notFound = (id: string) => new ApiError('not_found', `No schedule ${id}`);

export function scheduleRoutes(deps: {
  jobs: JobQueues;
  catalog: TaskCatalog;
  limits: ScheduleLimits;
  maxBodyBytes: number;
  maxJsonDepth: number;
  maxInputBytes: number;
  /** Who may ask for webhooks on the schedule's jobs, and where to. */
  webhooks: WebhookPolicy;
}) {
  const { jobs, catalog, limits } = deps;
  return new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (result.success) return;
      throw new ApiError(
        'validation_failed',
        'The schedule request is invalid',
        fieldErrors(result.error),
      );
    },
  })
    .openapi(
      {
        ...createScheduleRoute,
        middleware: [jsonBody({ maxBytes: deps.maxBodyBytes, maxDepth: deps.maxJsonDepth })],
      },
      async (c) => {
        const { cron, timezone, everyMs, ...request } = c.req.valid('json');
        const timing: ScheduleTiming =
          everyMs !== undefined ? { everyMs } : { cron: cron ?? '', timezone: timezone ?? 'UTC' };
        const errors = timingErrors(timing, limits.minIntervalMs);
        const found = await taskFor(catalog, request, deps.maxInputBytes).catch((err: unknown) => {
          if (!(err instanceof ApiError)) throw err;
          // Alone, the task's own problem (its code); with timing errors, all of them at once.
          if (errors.length === 0) throw err;
          errors.push(...(err.errors ?? []));
          return null;
        });
        if (!found || errors.length > 0) {
          throw new ApiError(
            'validation_failed',
            'The schedule request is invalid; nothing was stored',
            errors.slice(0, MAX_FIELD_ERRORS) satisfies FieldError[],
          );
        }
        // Checked again at each delivery of each firing's job, as for any job.
        await checkWebhooks(
          [{ webhook: request.options?.webhook, path: 'options.webhook' }],
          c.get('caller').tenant,
          deps.webhooks,
        );
        const now = Date.now();
        const nextRunAt = firstFiring(timing, now);
        const record = await jobs.schedules
          .create(
            {
              tenant: c.get('caller').tenant,
              task: found.task.info.name,
              input: request.input,
              ...(request.options && { options: request.options }),
              timing,
              createdAt: now,
            },
            nextRunAt,
            limits.maxPerTenant,
          )
          .catch((err: unknown) => {
            if (!(err instanceof ScheduleQuotaExceededError)) throw err;
            throw new ApiError('schedule_quota_exceeded', err.message, undefined, {
              'retry-after': String(SCHEDULE_QUOTA_RETRY_AFTER_S),
            });
          });
        c.header('Location', `/v1/schedules/${record.id}`);
        return c.json(toScheduleView(record, nextRunAt), 201);
      },
    )
    .openapi(listSchedulesRoute, async (c) => {
      const found = await jobs.schedules.list(c.get('caller').tenant);
      return c.json(
        { schedules: found.map(({ record, nextRunAt }) => toScheduleView(record, nextRunAt)) },
        200,
      );
    })
    .openapi(getScheduleRoute, async (c) => {
      const { id } = c.req.valid('param');
      const found = await jobs.schedules.get(id, c.get('caller').tenant);
      if (!found) throw notFound(id);
      return c.json(toScheduleView(found.record, found.nextRunAt, found.recentJobs), 200);
    })
    .openapi(deleteScheduleRoute, async (c) => {
      const { id } = c.req.valid('param');
      if (!(await jobs.schedules.delete(id, c.get('caller').tenant))) throw notFound(id);
      return c.body(null, 204);
    });
}

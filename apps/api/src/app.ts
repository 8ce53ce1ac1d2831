import { createHash } from 'node:crypto';
import { OpenAPIHono } from '@hono/zod-openapi';
import { ApiError, problemResponse } from '@offload/problem';
import {
  IdempotencyConflictError,
  InvalidCursorError,
  isRedisUnavailable,
  type JobQueues,
  QueueQuotaExceededError,
  type RateLimit,
  RedisMisconfiguredError,
} from '@offload/queue';
import type { TaskRegistry } from '@offload/tasks';
import { Scalar } from '@scalar/hono-api-reference';
import { requestId } from 'hono/request-id';
import type { Logger } from 'pino';
import { z } from 'zod';
import { type ApiKey, apiKeyAuth, type Caller } from './auth.ts';
import { streamJobEvents } from './job-events.ts';
import { jsonBody } from './json-body.ts';
import { createApiMetrics } from './metrics.ts';
import { missingJobError } from './missing-job.ts';
import { rateLimit } from './rate-limit.ts';
import {
  cancelJobRoute,
  getJobRoute,
  healthRoute,
  idempotencyKeyHeader,
  jobEventsRoute,
  listJobsRoute,
  metricsRoute,
  readyRoute,
  submitJobRoute,
  tasksRoute,
} from './routes.ts';
import { fieldErrors } from './schemas.ts';

export interface AppDeps {
  jobs: JobQueues;
  registry: TaskRegistry;
  logger: Logger;
  /** API_KEYS; null: open development mode, every job belongs to tenant `dev`. */
  apiKeys: readonly ApiKey[] | null;
  /** Largest request body accepted, bytes. */
  maxBodyBytes: number;
  /** Deepest nesting of objects and arrays in a request body. */
  maxJsonDepth: number;
  /** Requests per API key per window (limit 0: none). */
  rateLimit: RateLimit;
}

type Env = { Variables: { caller: Caller; requestId: string } };

/** Seconds a client over its job quota should wait before trying again: jobs take seconds to finish. */
const QUOTA_RETRY_AFTER_S = 5;
/** Jobs per page of GET /v1/jobs when `limit` is not given. */
const DEFAULT_PAGE_SIZE = 20;

/**
 * The HTTP API. It validates, enqueues and reads; it never runs a task, so a
 * flood of heavy jobs cannot slow its answers.
 */
export function createApp(deps: AppDeps) {
  const { jobs, registry, logger } = deps;
  const metrics = createApiMetrics({ jobs, logger });
  const knownTasks = registry
    .list()
    .map((t) => t.name)
    .join(', ');
  const taskList = registry.list().map((task) => ({
    name: task.name,
    description: task.description,
    queue: task.queue,
    input: z.toJSONSchema(task.input, { io: 'input', unrepresentable: 'any' }),
    output: z.toJSONSchema(task.output, { io: 'output', unrepresentable: 'any' }),
    defaults: task.defaults,
  }));

  const app = new OpenAPIHono<Env>({
    // Every request part that fails its schema becomes one 422 problem with field paths.
    defaultHook: (result) => {
      if (result.success) return;
      if (result.target === 'json') {
        // On failure the validator hands over the body as it came.
        const body = (result as { data?: unknown }).data;
        const task =
          typeof body === 'object' && body !== null ? (body as { task?: unknown }).task : undefined;
        throw jsonProblem(result.error, registry, knownTasks, task);
      }
      throw new ApiError('validation_failed', 'The request is invalid', fieldErrors(result.error));
    },
  });
  app.use(requestId());
  app.use(metrics.observe);
  app.use('/v1/*', apiKeyAuth(deps.apiKeys));
  app.use('/v1/*', rateLimit(jobs, deps.rateLimit));

  const routes = app
    .openapi(healthRoute, (c) => c.json({ status: 'ok' as const }, 200))
    .openapi(metricsRoute, (c) => metrics.scrape(c))
    .openapi(readyRoute, async (c) => {
      try {
        const { workers, redisProblem } = await jobs.readiness();
        // An evicting Redis could drop accepted jobs: not ready, and submits are refused.
        if (redisProblem) {
          return c.json(
            {
              status: 'misconfigured' as const,
              redis: 'unsafe' as const,
              problem: redisProblem,
              workers,
            },
            503,
          );
        }
        return c.json({ status: 'ready' as const, redis: 'up' as const, workers }, 200);
      } catch (err) {
        if (!isRedisUnavailable(err)) throw err;
        return c.json(
          { status: 'unavailable' as const, redis: 'down' as const, workers: null },
          503,
        );
      }
    })
    .openapi(tasksRoute(), (c) => c.json({ tasks: taskList }, 200))
    .openapi(
      {
        ...submitJobRoute(registry),
        middleware: [jsonBody({ maxBytes: deps.maxBodyBytes, maxDepth: deps.maxJsonDepth })],
      },
      async (c) => {
        const body = c.req.valid('json');
        const task = registry.get(body.task);
        // The schema only admits registered tasks; this narrows the type.
        if (!task) throw new ApiError('unknown_task', `No task is named "${body.task}"`);
        const options = body.options ?? {};
        const request = {
          task: task.name,
          queue: task.queue,
          input: body.input,
          tenant: c.get('caller').tenant,
          timeoutMs: options.timeoutMs ?? task.defaults.timeoutMs,
          attempts: options.attempts ?? task.defaults.attempts,
          backoff: task.defaults.backoff,
          ...(options.priority !== undefined && { priority: options.priority }),
          ...(options.delayMs !== undefined && { delayMs: options.delayMs }),
        };
        const key = c.req.valid('header')[idempotencyKeyHeader];
        const { view, created } = await submitOrQuota(() =>
          key === undefined
            ? jobs.submitJob(request).then((v) => ({ view: v, created: true }))
            : // Validated bodies list their fields in schema order, so equal requests hash equally.
              jobs.submitJobOnce(request, key, sha256(JSON.stringify(body))),
        );
        c.header('Location', `/v1/jobs/${view.id}`);
        if (!created) return c.json(view, 200);
        metrics.jobSubmitted(task.name);
        return c.json(view, 202);
      },
    )
    .openapi(listJobsRoute, async (c) => {
      const { state, task, limit, cursor } = c.req.valid('query');
      try {
        const page = await jobs.listJobs(c.get('caller').tenant, {
          limit: limit ?? DEFAULT_PAGE_SIZE,
          ...(state && { state }),
          ...(task && { task }),
          ...(cursor && { cursor }),
        });
        return c.json(page, 200);
      } catch (err) {
        if (!(err instanceof InvalidCursorError)) throw err;
        throw new ApiError('validation_failed', err.message, [
          { path: 'cursor', message: err.message },
        ]);
      }
    })
    .openapi(getJobRoute, async (c) => {
      const { id } = c.req.valid('param');
      const { wait } = c.req.valid('query');
      const { tenant } = c.get('caller');
      const view = await jobs.waitForJobView(id, tenant, (wait ?? 0) * 1000);
      if (!view) throw await missingJobError(jobs, id, tenant);
      return c.json(view, 200);
    })
    .openapi(jobEventsRoute, (c) =>
      streamJobEvents(c, jobs, c.req.valid('param').id, c.get('caller').tenant),
    )
    .openapi(cancelJobRoute, async (c) => {
      const { id } = c.req.valid('param');
      const { tenant } = c.get('caller');
      const cancel = await jobs.cancelJob(id, tenant);
      if (!cancel) throw await missingJobError(jobs, id, tenant);
      if (cancel.outcome === 'finished') {
        throw new ApiError(
          'job_finished',
          `Job ${id} is already ${cancel.view.state}; nothing to cancel`,
        );
      }
      return c.json(cancel.view, 200);
    });

  app.openAPIRegistry.registerComponent('securitySchemes', 'bearer', {
    type: 'http',
    scheme: 'bearer',
    description: 'An API key from API_KEYS (not needed in open development mode)',
  });
  app.doc31('/openapi.json', {
    openapi: '3.1.0',
    info: {
      title: 'Offload API',
      version: '1.0.0',
      description:
        'Submit CPU-heavy jobs, follow them (poll, long-poll or server-sent events) and cancel them. Errors are RFC 9457 problem documents.',
    },
  });
  // The page loads Scalar's script from its CDN in the reader's browser; the API serves only this HTML.
  app.get('/docs', Scalar({ url: '/openapi.json', pageTitle: 'Offload API' }));

  app.notFound(() => {
    throw new ApiError('not_found', 'No such route');
  });
  app.onError((err, c) => {
    if (err instanceof ApiError) return problemResponse(c, err);
    if (err instanceof RedisMisconfiguredError) {
      return problemResponse(c, new ApiError('redis_misconfigured', err.message));
    }
    if (isRedisUnavailable(err)) {
      return problemResponse(
        c,
        new ApiError('redis_unavailable', 'Redis is unreachable; try again shortly'),
      );
    }
    logger.error({ err, requestId: c.get('requestId') }, 'unhandled error');
    return problemResponse(c, new ApiError('internal', 'Something went wrong on our side'));
  });
  return routes;
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** Turns the queue's refusals of a submit into problems. */
async function submitOrQuota<T>(submit: () => Promise<T>): Promise<T> {
  try {
    return await submit();
  } catch (err) {
    if (err instanceof QueueQuotaExceededError) {
      throw new ApiError(
        'queue_quota_exceeded',
        `Your tenant already has ${err.limit} unfinished jobs; wait for some to finish`,
        undefined,
        { 'retry-after': String(QUOTA_RETRY_AFTER_S) },
      );
    }
    if (err instanceof IdempotencyConflictError) {
      throw new ApiError('idempotency_conflict', err.message);
    }
    throw err;
  }
}

/**
 * The problem for a body that fails the job-request schema: a string `task`
 * no task has is `unknown_task` (naming the known ones); anything else is
 * `validation_failed` with field paths.
 */
function jsonProblem(
  error: z.ZodError,
  registry: TaskRegistry,
  knownTasks: string,
  task: unknown,
): ApiError {
  if (typeof task === 'string' && !registry.get(task)) {
    return new ApiError('unknown_task', `No task is named "${task}". Known tasks: ${knownTasks}`, [
      { path: 'task', message: 'unknown task' },
    ]);
  }
  const detail =
    typeof task === 'string' && error.issues.some((i) => i.path[0] === 'input')
      ? `The input does not fit task ${task}`
      : 'The job request is invalid';
  return new ApiError('validation_failed', detail, fieldErrors(error));
}

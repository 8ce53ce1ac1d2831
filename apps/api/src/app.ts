import { createHash } from 'node:crypto';
import { OpenAPIHono } from '@hono/zod-openapi';
import type { FieldError } from '@offload/contract';
import { ApiError, type ErrorCode, problemResponse } from '@offload/problem';
import {
  IdempotencyConflictError,
  InvalidCursorError,
  isRedisOutOfMemory,
  isRedisUnavailable,
  type JobQueues,
  NotReplicatedError,
  QueueQuotaExceededError,
  type RateLimit,
  RedisMisconfiguredError,
  StorageQuotaExceededError,
} from '@offload/queue';
import { except } from 'hono/combine';
import { requestId } from 'hono/request-id';
import type { Logger } from 'pino';
import type { z } from 'zod';
import { type ApiKey, type AppEnv, apiKeyAuth } from './auth.ts';
import { docs } from './docs.ts';
import { streamJobEvents } from './job-events.ts';
import { jobResultRoute, serveJobResult } from './job-result.ts';
import { jsonBody } from './json-body.ts';
import { createApiMetrics } from './metrics.ts';
import { missingJobError } from './missing-job.ts';
import { openApiDocument } from './openapi-document.ts';
import { rateLimit } from './rate-limit.ts';
import {
  cancelJobRoute,
  cancelWorkflowRoute,
  getJobRoute,
  getWorkflowRoute,
  healthRoute,
  idempotencyKeyHeader,
  jobEventsRoute,
  listJobsRoute,
  metricsRoute,
  readyRoute,
  submitBatchRoute,
  submitJobRoute,
  submitWorkflowRoute,
  tasksRoute,
} from './routes.ts';
import { type ScheduleLimits, scheduleRoutes } from './schedule-routes.ts';
import {
  fieldErrors,
  type JobRequest,
  MAX_FIELD_ERRORS,
  type WorkflowRequestBody,
} from './schemas.ts';
import { apiSecurityHeaders } from './security-headers.ts';
import { type StreamLimits, StreamSlots } from './stream-slots.ts';
import type { TaskCatalog } from './task-catalog.ts';
import { type FoundTask, submitRequest, taskFor, unknownTask } from './task-requests.ts';
import { checkWebhooks, NO_WEBHOOKS, type WebhookPolicy } from './webhook-requests.ts';
import { workflowRequest } from './workflow-requests.ts';

export interface AppDeps {
  jobs: JobQueues;
  /** The tasks workers publish; the API imports no task code. */
  catalog: TaskCatalog;
  logger: Logger;
  /** API_KEYS; null: open development mode, every job belongs to tenant `dev`. */
  apiKeys: readonly ApiKey[] | null;
  /** Largest request body accepted, bytes. */
  maxBodyBytes: number;
  /** Largest job input, bytes of its JSON, for tasks that declare no `maxInputBytes` of their own. */
  maxInputBytes: number;
  /** Deepest nesting of objects and arrays in a request body. */
  maxJsonDepth: number;
  /** Requests per API key per window (limit 0: none). */
  rateLimit: RateLimit;
  /** Event streams and waiting long-polls held at once, and how long a stream lasts. */
  streams: StreamLimits & {
    /** Longest an event stream stays open, ms. */
    maxLifetimeMs: number;
  };
  /** How many schedules a tenant may keep, and how often they may fire. */
  schedules: ScheduleLimits;
  /** Who may ask for webhooks, and where to (WEBHOOK_SECRETS, WEBHOOK_ALLOW_PRIVATE); default: nobody. */
  webhooks?: WebhookPolicy;
}

/** Seconds a client over its job quota should wait before trying again: jobs take seconds to finish. */
const QUOTA_RETRY_AFTER_S = 5;
/** Seconds a client over its storage quota should wait: bytes are released as retention windows end. */
const STORAGE_RETRY_AFTER_S = 60;
/** Jobs per page of GET /v1/jobs when `limit` is not given. */
const DEFAULT_PAGE_SIZE = 20;

/**
 * The HTTP API. It validates, enqueues and reads; it never runs a task, so a
 * flood of heavy jobs cannot slow its answers.
 */
export function createApp(deps: AppDeps) {
  const { jobs, catalog, logger } = deps;
  const webhooks = deps.webhooks ?? NO_WEBHOOKS;
  const metrics = createApiMetrics({ jobs, logger });
  const streamSlots = new StreamSlots(deps.streams);

  const app = new OpenAPIHono<AppEnv>({
    // Every request part that fails its schema becomes one 422 problem with field paths.
    defaultHook: async (result) => {
      if (result.success) return;
      if (result.target === 'json') {
        // On failure the validator hands over the body as it came.
        throw await bodyProblem(catalog, (result as { data?: unknown }).data, result.error);
      }
      throw new ApiError('validation_failed', 'The request is invalid', fieldErrors(result.error));
    },
  });
  app.use(requestId());
  app.use(metrics.observe);
  app.use(except('/docs/*', apiSecurityHeaders));
  app.use('/v1/*', apiKeyAuth(deps.apiKeys));
  app.use('/v1/*', rateLimit(jobs, deps.rateLimit));

  const routes = app
    .openapi(healthRoute, (c) => c.json({ status: 'ok' as const }, 200))
    .openapi(metricsRoute, (c) => metrics.scrape(c))
    .openapi(readyRoute, async (c) => {
      try {
        const { workers, redisProblem, outOfMemory } = await jobs.readiness();
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
        // A full Redis refuses every submit: not ready, so a balancer or an operator knows.
        if (outOfMemory) {
          return c.json(
            {
              status: 'out_of_memory' as const,
              redis: 'full' as const,
              problem: outOfMemory,
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
    .openapi(tasksRoute, async (c) => c.json({ tasks: await catalog.list() }, 200))
    .openapi(
      {
        ...submitJobRoute,
        middleware: [jsonBody({ maxBytes: deps.maxBodyBytes, maxDepth: deps.maxJsonDepth })],
      },
      async (c) => {
        const body = c.req.valid('json');
        const found = await taskFor(catalog, body, deps.maxInputBytes);
        await checkWebhooks(
          [{ webhook: body.options?.webhook, path: 'options.webhook' }],
          c.get('caller').tenant,
          webhooks,
        );
        const request = submitRequest(body, found, c.get('caller').tenant);
        const key = c.req.valid('header')[idempotencyKeyHeader];
        const { view, created } = await submitOrQuota(() =>
          key === undefined
            ? jobs.submitJob(request).then((v) => ({ view: v, created: true }))
            : jobs.submitJobOnce(request, key, requestHash(body)),
        );
        c.header('Location', `/v1/jobs/${view.id}`);
        if (!created) return c.json(view, 200);
        metrics.jobSubmitted(request.task);
        return c.json(view, 202);
      },
    )
    .openapi(
      {
        ...submitBatchRoute,
        middleware: [jsonBody({ maxBytes: deps.maxBodyBytes, maxDepth: deps.maxJsonDepth })],
      },
      async (c) => {
        const items = c.req.valid('json').jobs;
        const found = await batchTasks(catalog, items, deps.maxInputBytes);
        const tenant = c.get('caller').tenant;
        await checkWebhooks(
          items.map((item, i) => ({
            webhook: item.options?.webhook,
            path: `jobs.${i}.options.webhook`,
          })),
          tenant,
          webhooks,
        );
        const answers = await submitOrQuota(() =>
          jobs.submitBatch(
            items.map(({ idempotencyKey, ...body }, i) => ({
              request: submitRequest(body, found[i] as FoundTask, tenant),
              ...(idempotencyKey !== undefined && {
                idempotency: { key: idempotencyKey, requestHash: requestHash(body) },
              }),
            })),
          ),
        );
        for (const { view, created } of answers) if (created) metrics.jobSubmitted(view.task);
        return c.json({ jobs: answers.map((answer) => answer.view) }, 202);
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
      const waitMs = (wait ?? 0) * 1000;
      // Only a long-poll that waits holds a slot; a plain read is over at once.
      const release = waitMs > 0 ? streamSlots.take(tenant) : () => {};
      try {
        const view =
          (await jobs.waitForJobView(id, tenant, waitMs, c.req.raw.signal)) ??
          // A workflow step with no job yet (blocked) is answered as it is, without waiting.
          (await jobs.workflows.stepView(id, tenant));
        if (!view) throw await missingJobError(jobs, id, tenant);
        return c.json(view, 200);
      } finally {
        release();
      }
    })
    .openapi(jobResultRoute, (c) =>
      serveJobResult(c, jobs, c.req.valid('param').id, c.get('caller').tenant),
    )
    .openapi(jobEventsRoute, (c) =>
      streamJobEvents(c, jobs, c.req.valid('param').id, c.get('caller').tenant, {
        slots: streamSlots,
        maxLifetimeMs: deps.streams.maxLifetimeMs,
      }),
    )
    .openapi(cancelJobRoute, async (c) => {
      const { id } = c.req.valid('param');
      const { tenant } = c.get('caller');
      const cancel =
        (await jobs.cancelJob(id, tenant)) ??
        (await jobs.workflows.cancelStep(id, tenant)) ??
        // Its job was added while the step was being canceled.
        (await jobs.cancelJob(id, tenant));
      if (!cancel) throw await missingJobError(jobs, id, tenant);
      if (cancel.outcome === 'finished') {
        throw new ApiError(
          'job_finished',
          `Job ${id} is already ${cancel.view.state}; nothing to cancel`,
        );
      }
      return c.json(cancel.view, 200);
    })
    .openapi(
      {
        ...submitWorkflowRoute,
        middleware: [jsonBody({ maxBytes: deps.maxBodyBytes, maxDepth: deps.maxJsonDepth })],
      },
      async (c) => {
        const tenant = c.get('caller').tenant;
        const body = c.req.valid('json');
        await checkWebhooks(
          [
            { webhook: body.webhook, path: 'webhook' },
            ...Object.entries(body.steps).map(([name, step]) => ({
              webhook: step.options?.webhook,
              path: `steps.${name}.options.webhook`,
            })),
          ],
          tenant,
          webhooks,
        );
        const request = await workflowRequest(
          catalog,
          body,
          await c.req.json(),
          tenant,
          deps.maxInputBytes,
        );
        const key = c.req.valid('header')[idempotencyKeyHeader];
        const { view, created } = await submitOrQuota(() =>
          key === undefined
            ? jobs.workflows.create(request).then((v) => ({ view: v, created: true }))
            : jobs.workflows.createOnce(request, key, requestHash(body)),
        );
        c.header('Location', `/v1/workflows/${view.id}`);
        if (!created) return c.json(view, 200);
        for (const step of Object.values(view.steps)) {
          if (step.state !== 'blocked') metrics.jobSubmitted(step.task);
        }
        return c.json(view, 202);
      },
    )
    .openapi(getWorkflowRoute, async (c) => {
      const { id } = c.req.valid('param');
      const view = await jobs.workflows.get(id, c.get('caller').tenant);
      if (!view) throw new ApiError('not_found', `No workflow ${id}`);
      return c.json(view, 200);
    })
    .openapi(cancelWorkflowRoute, async (c) => {
      const { id } = c.req.valid('param');
      const cancel = await jobs.workflows.cancel(id, c.get('caller').tenant);
      if (!cancel) throw new ApiError('not_found', `No workflow ${id}`);
      if (cancel.outcome === 'finished') {
        throw new ApiError(
          'workflow_finished',
          `Workflow ${id} is already ${cancel.view.state}; nothing to cancel`,
        );
      }
      return c.json(cancel.view, 200);
    })
    .route(
      '/',
      scheduleRoutes({
        jobs,
        catalog,
        limits: deps.schedules,
        maxBodyBytes: deps.maxBodyBytes,
        maxJsonDepth: deps.maxJsonDepth,
        maxInputBytes: deps.maxInputBytes,
        webhooks,
      }),
    );

  app.openAPIRegistry.registerComponent('securitySchemes', 'bearer', {
    type: 'http',
    scheme: 'bearer',
    description: 'An API key from API_KEYS (not needed in open development mode)',
  });
  let document: { generation: number; body: object } | null = null;
  app.get('/openapi.json', async (c) => {
    const tasks = await catalog.list();
    if (document?.generation !== catalog.generation) {
      document = { generation: catalog.generation, body: openApiDocument(app, tasks) };
    }
    return c.json(document.body);
  });
  app.route('/docs', docs);

  // Answered, not thrown: a throw here skips the innermost middleware's work (security headers).
  app.notFound((c) => problemResponse(c, new ApiError('not_found', 'No such route')));
  app.onError((err, c) => {
    if (err instanceof ApiError) return problemResponse(c, err);
    if (err instanceof RedisMisconfiguredError) {
      return problemResponse(c, new ApiError('redis_misconfigured', err.message));
    }
    if (isRedisOutOfMemory(err)) {
      return problemResponse(
        c,
        new ApiError(
          'redis_out_of_memory',
          'Redis is out of memory and accepts no new jobs; try again once jobs have finished and expired',
        ),
      );
    }
    if (err instanceof NotReplicatedError) {
      return problemResponse(c, new ApiError('redis_not_replicated', err.message));
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
    if (err instanceof StorageQuotaExceededError) {
      throw new ApiError(
        'storage_quota_exceeded',
        `${err.message}; they are released as jobs finish and their retention ends`,
        undefined,
        { 'retry-after': String(STORAGE_RETRY_AFTER_S) },
      );
    }
    if (err instanceof IdempotencyConflictError) {
      throw new ApiError('idempotency_conflict', err.message);
    }
    throw err;
  }
}

/** Stringifies with object keys sorted, so equal requests hash equally whatever their key order. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

/** What an Idempotency-Key compares: the request (a job's task, input, options; a workflow's steps), whatever its key order. */
function requestHash(body: JobRequest | WorkflowRequestBody): string {
  return sha256(canonicalJson(body));
}

/**
 * Every item's task, or one problem for the whole batch: each invalid item's
 * errors with its place in the path (`jobs.3.input.below`), and a key that
 * repeats within the batch. The code is the items' own when they share one.
 */
async function batchTasks(
  catalog: TaskCatalog,
  items: readonly (JobRequest & { idempotencyKey?: string | undefined })[],
  defaultMaxInputBytes: number,
): Promise<FoundTask[]> {
  const found: FoundTask[] = [];
  const errors: FieldError[] = [];
  const codes = new Set<ErrorCode>();
  let invalid = 0;
  const fail = (i: number, code: ErrorCode, itemErrors: readonly FieldError[]) => {
    invalid++;
    codes.add(code);
    for (const e of itemErrors)
      errors.push({ ...e, path: `jobs.${i}${e.path ? `.${e.path}` : ''}` });
  };
  // Each name looked up once: a name the catalog lacks makes it re-read (at most every 100 ms).
  const names = [...new Set(items.map((item) => item.task))];
  const known = new Set(
    (
      await Promise.all(names.map(async (name) => ((await catalog.find(name)) ? name : null)))
    ).filter((name) => name !== null),
  );
  const keys = new Map<string, number>();
  for (const [i, item] of items.entries()) {
    const { idempotencyKey, ...body } = item;
    if (!known.has(body.task)) {
      fail(i, 'unknown_task', [{ path: 'task', message: 'unknown task' }]);
      continue;
    }
    try {
      found.push(await taskFor(catalog, body, defaultMaxInputBytes));
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      fail(i, err.code, err.errors?.length ? err.errors : [{ path: '', message: err.message }]);
      continue;
    }
    if (idempotencyKey === undefined) continue;
    const first = keys.get(idempotencyKey);
    if (first === undefined) keys.set(idempotencyKey, i);
    else {
      fail(i, 'validation_failed', [
        { path: 'idempotencyKey', message: `repeats the key of jobs.${first}` },
      ]);
    }
  }
  if (invalid === 0) return found;
  throw new ApiError(
    codes.size === 1 ? ([...codes][0] as ErrorCode) : 'validation_failed',
    `${invalid} of ${items.length} jobs are invalid; none was added`,
    errors.slice(0, MAX_FIELD_ERRORS),
  );
}

/**
 * The problem for a body that fails the envelope schema: a string `task` no
 * task has is `unknown_task` (naming the known ones); anything else is
 * `validation_failed` with field paths, the input's own included.
 */
async function bodyProblem(
  catalog: TaskCatalog,
  body: unknown,
  error: z.ZodError,
): Promise<ApiError> {
  const fields = typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {};
  const { task: name, input } = fields;
  const task = typeof name === 'string' ? await catalog.find(name) : undefined;
  if (typeof name === 'string' && !task) return unknownTask(catalog, name);
  const errors = fieldErrors(error);
  const inputErrors = task && input !== undefined ? task.check(input) : [];
  const detail =
    inputErrors.length > 0 || errors.some((e) => e.path.startsWith('input'))
      ? `The input does not fit task ${name}`
      : 'The request is invalid';
  return new ApiError(
    'validation_failed',
    detail,
    [...errors, ...inputErrors].slice(0, MAX_FIELD_ERRORS),
  );
}

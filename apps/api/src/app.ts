import type { JobQueues } from '@offload/queue';
import { isRedisUnavailable, RedisMisconfiguredError } from '@offload/queue';
import type { TaskRegistry } from '@offload/tasks';
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { requestId } from 'hono/request-id';
import type { Logger } from 'pino';
import { z } from 'zod';
import { createApiMetrics } from './metrics.ts';
import { ApiError, problemResponse } from './problem.ts';
import { fieldErrors, submitJobSchema, waitSchema } from './schemas.ts';

export interface AppDeps {
  jobs: JobQueues;
  registry: TaskRegistry;
  logger: Logger;
  /** Largest request body accepted, bytes. */
  maxBodyBytes: number;
}

/** Tenant of every job while API keys are not configured (open development mode). */
export const DEV_TENANT = 'dev';

type Env = { Variables: { tenant: string; requestId: string } };

const JSON_TYPE = /^application\/([a-z0-9.+-]+\+)?json\s*(;|$)/i;

/** Reads the JSON body of a request, or throws the matching 415/400 problem. */
async function readJson(request: Request): Promise<unknown> {
  const type = request.headers.get('content-type') ?? '';
  if (!JSON_TYPE.test(type)) {
    throw new ApiError('unsupported_media_type', 'Send the body as application/json');
  }
  const text = await request.text();
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ApiError('malformed_json', `The body is not valid JSON: ${(err as Error).message}`);
  }
}

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

  const app = new Hono<Env>()
    .use(requestId())
    .use(metrics.observe)
    .use(async (c, next) => {
      c.set('tenant', DEV_TENANT);
      await next();
    })
    .get('/healthz', (c) => c.json({ status: 'ok' }))
    .get('/metrics', (c) => metrics.scrape(c))
    .get('/readyz', async (c) => {
      try {
        const { workers, redisProblem } = await jobs.readiness();
        // An evicting Redis could drop accepted jobs: not ready, and submits are refused.
        if (redisProblem) {
          return c.json(
            { status: 'misconfigured', redis: 'unsafe', problem: redisProblem, workers },
            503,
          );
        }
        return c.json({ status: 'ready', redis: 'up', workers });
      } catch (err) {
        if (!isRedisUnavailable(err)) throw err;
        return c.json({ status: 'unavailable', redis: 'down', workers: null }, 503);
      }
    })
    .get('/v1/tasks', (c) => c.json({ tasks: taskList }))
    .post(
      '/v1/jobs',
      bodyLimit({
        maxSize: deps.maxBodyBytes,
        onError: () => {
          throw new ApiError(
            'payload_too_large',
            `The body is larger than ${deps.maxBodyBytes} bytes`,
          );
        },
      }),
      async (c) => {
        const body = submitJobSchema.safeParse(await readJson(c.req.raw));
        if (!body.success) {
          throw new ApiError(
            'validation_failed',
            'The job request is invalid',
            fieldErrors(body.error),
          );
        }
        const { task: name, input, options = {} } = body.data;
        const task = registry.get(name);
        if (!task) {
          throw new ApiError(
            'unknown_task',
            `No task is named "${name}". Known tasks: ${knownTasks}`,
            [{ path: 'task', message: 'unknown task' }],
          );
        }
        const parsedInput = task.input.safeParse(input);
        if (!parsedInput.success) {
          throw new ApiError(
            'validation_failed',
            `The input does not fit task ${task.name}`,
            fieldErrors(parsedInput.error, 'input'),
          );
        }
        const view = await jobs.submitJob({
          task: task.name,
          queue: task.queue,
          input: parsedInput.data,
          tenant: c.get('tenant'),
          timeoutMs: options.timeoutMs ?? task.defaults.timeoutMs,
          attempts: options.attempts ?? task.defaults.attempts,
          backoff: task.defaults.backoff,
          ...(options.priority !== undefined && { priority: options.priority }),
          ...(options.delayMs !== undefined && { delayMs: options.delayMs }),
        });
        metrics.jobSubmitted(task.name);
        c.header('Location', `/v1/jobs/${view.id}`);
        return c.json(view, 202);
      },
    )
    .get('/v1/jobs/:id', async (c) => {
      const rawWait = c.req.query('wait');
      let waitSeconds = 0;
      if (rawWait !== undefined) {
        const wait = waitSchema.safeParse(rawWait);
        if (!wait.success) {
          throw new ApiError(
            'validation_failed',
            'wait must be 0–60 seconds',
            fieldErrors(wait.error, 'wait'),
          );
        }
        waitSeconds = wait.data;
      }
      const id = c.req.param('id');
      const view = await jobs.waitForJobView(id, c.get('tenant'), waitSeconds * 1000);
      if (!view) throw new ApiError('not_found', `No job has the id ${id}`);
      return c.json(view);
    })
    .delete('/v1/jobs/:id', async (c) => {
      const id = c.req.param('id');
      const cancel = await jobs.cancelJob(id, c.get('tenant'));
      if (!cancel) throw new ApiError('not_found', `No job has the id ${id}`);
      if (cancel.outcome === 'finished') {
        throw new ApiError(
          'job_finished',
          `Job ${id} is already ${cancel.view.state}; nothing to cancel`,
        );
      }
      return c.json(cancel.view);
    });

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
  return app;
}

import { z } from '@hono/zod-openapi';
import { ERROR_STATUS, type FieldError } from '@offload/problem';
import { JOB_STATES } from '@offload/queue';
import type { TaskRegistry } from '@offload/tasks';

/**
 * The zod schemas of the HTTP API: they validate requests and, through
 * @hono/zod-openapi, are the OpenAPI document. One definition serves both.
 */

/** Per-job overrides of a task's defaults. */
export const jobOptionsSchema = z
  .strictObject({
    /** 1 is the highest; jobs without a priority run before every prioritized one. */
    priority: z.number().int().min(1).max(2_097_152).optional(),
    /** Run no sooner than this many ms from now (at most 30 days). */
    delayMs: z
      .number()
      .int()
      .min(0)
      .max(30 * 24 * 3600 * 1000)
      .optional(),
    /** Attempts in all, the first included. */
    attempts: z.number().int().min(1).max(25).optional(),
    /** Hard time limit of one attempt, ms (100 ms … 24 h). */
    timeoutMs: z
      .number()
      .int()
      .min(100)
      .max(24 * 3600 * 1000)
      .optional(),
  })
  .openapi('JobOptions', {
    description:
      "Overrides of the task's defaults. priority: 1 is highest; delayMs: ms before the job may run; attempts: in all, the first included; timeoutMs: hard limit of one attempt, ms.",
  });

export type JobOptions = z.infer<typeof jobOptionsSchema>;

/** Body of POST /v1/jobs, whatever the task: what the handler reads once validation has passed. */
export interface JobRequest {
  task: string;
  input: unknown;
  options?: JobOptions;
}

/**
 * Body of POST /v1/jobs: one strict object per task, told apart by `task`, each
 * with that task's own input schema. Unknown fields are refused at every level.
 */
export function jobRequestSchema(registry: TaskRegistry): z.ZodType<JobRequest> {
  const variants = registry.list().map((task) =>
    z
      .strictObject({
        task: z.literal(task.name),
        input: task.input,
        options: jobOptionsSchema.optional(),
      })
      .openapi(`JobRequest_${task.name.replace(/[^A-Za-z0-9_]/g, '_')}`, {
        description: task.description,
      }),
  );
  const [first, ...rest] = variants;
  if (!first) throw new Error('The registry has no tasks');
  return z
    .discriminatedUnion('task', [first, ...rest])
    .openapi('JobRequest') as z.ZodType<JobRequest>;
}

const jobErrorSchema = z.object({
  code: z.enum(['timeout', 'task_error', 'worker_lost', 'out_of_memory', 'canceled']),
  message: z.string(),
});

/** The public view of a job (DESIGN.md §3). `result` is the task's output once completed. */
export const jobViewSchema = z
  .object({
    id: z.string(),
    task: z.string(),
    state: z.enum(JOB_STATES),
    /** 0–100 */
    progress: z.number().min(0).max(100),
    attempts: z.object({ made: z.number().int(), max: z.number().int() }),
    result: z.unknown().openapi({ description: "The task's output once completed, else null" }),
    error: jobErrorSchema.nullable(),
    createdAt: z.string(),
    startedAt: z.string().nullable(),
    finishedAt: z.string().nullable(),
  })
  .openapi('JobView');

export const jobPageSchema = z
  .object({
    jobs: z.array(jobViewSchema),
    nextCursor: z
      .string()
      .nullable()
      .openapi({ description: 'Pass as `cursor` for the next page; null on the last one' }),
  })
  .openapi('JobPage');

export const problemSchema = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    code: z.enum(Object.keys(ERROR_STATUS) as [keyof typeof ERROR_STATUS]),
    errors: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
    requestId: z.string().optional(),
  })
  .openapi('Problem', { description: 'An RFC 9457 problem document' });

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
  state: z.enum(JOB_STATES).optional(),
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
  return error.issues.flatMap((issue) =>
    issue.code === 'unrecognized_keys'
      ? issue.keys.map((key) => ({ path: at([...issue.path, key]), message: 'unknown field' }))
      : [{ path: at(issue.path), message: issue.message }],
  );
}

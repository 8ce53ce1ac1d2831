import { ApiError } from '@offload/problem';
import type { SubmitRequest } from '@offload/queue';
import type { JobRequest } from './schemas.ts';
import type { CatalogTask, TaskCatalog } from './task-catalog.ts';

/**
 * From a job request as a client sends it (task, input, options) to what the
 * queue adds: the task found in the catalog, the input checked against its
 * size bound and published schema, the task's defaults under the options.
 * Shared by every route that makes jobs.
 */

/** Most task names an unknown_task problem lists. */
const MAX_NAMES_LISTED = 20;

export async function unknownTask(catalog: TaskCatalog, name: string): Promise<ApiError> {
  const names = (await catalog.list()).map((t) => t.name);
  const known =
    names.length === 0
      ? 'No worker has published a task yet'
      : `Known tasks: ${names.slice(0, MAX_NAMES_LISTED).join(', ')}${names.length > MAX_NAMES_LISTED ? ', …' : ''}`;
  return new ApiError('unknown_task', `No task is named "${name}". ${known}`, [
    { path: 'task', message: 'unknown task' },
  ]);
}

export type FoundTask = Awaited<ReturnType<typeof taskFor>>;

/** What the queue adds for a valid request: the task's defaults under the request's options. */
export function submitRequest(
  body: JobRequest,
  { task, inputBytes }: FoundTask,
  tenant: string,
): SubmitRequest {
  const { info } = task;
  const options = body.options ?? {};
  return {
    task: info.name,
    queue: info.queue,
    input: body.input,
    inputBytes,
    tenant,
    timeoutMs: options.timeoutMs ?? info.defaults.timeoutMs,
    attempts: options.attempts ?? info.defaults.attempts,
    backoff: info.defaults.backoff,
    fingerprint: info.fingerprint,
    ...(options.priority !== undefined && { priority: options.priority }),
    ...(options.delayMs !== undefined && { delayMs: options.delayMs }),
    ...(options.webhook && { webhook: options.webhook }),
  };
}

/**
 * The task of a well-formed request whose input fits its size bound and its
 * published schema. `placeholders` are paths (`input.below`) of values filled
 * in later (a workflow's `$result`): the schema is not held against them.
 */
export async function taskFor(
  catalog: TaskCatalog,
  body: JobRequest,
  defaultMaxInputBytes: number,
  placeholders: readonly string[] = [],
): Promise<{ task: CatalogTask; inputBytes: number }> {
  const task = await catalog.find(body.task);
  if (!task) throw await unknownTask(catalog, body.task);
  // Bounded by the body limit, so measuring costs at most one stringify of API_MAX_BODY_BYTES.
  const maxInputBytes = task.info.maxInputBytes ?? defaultMaxInputBytes;
  const inputBytes = Buffer.byteLength(JSON.stringify(body.input));
  if (inputBytes > maxInputBytes) {
    throw new ApiError(
      'input_too_large',
      `The input is ${inputBytes} bytes of JSON; task ${body.task} accepts at most ${maxInputBytes}`,
      [{ path: 'input', message: `larger than ${maxInputBytes} bytes` }],
    );
  }
  const errors = task
    .check(body.input)
    .filter((e) => !placeholders.some((at) => e.path === at || e.path.startsWith(`${at}.`)));
  if (errors.length > 0) {
    throw new ApiError('validation_failed', `The input does not fit task ${body.task}`, errors);
  }
  return { task, inputBytes };
}

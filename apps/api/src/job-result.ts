import { createRoute, z } from '@hono/zod-openapi';
import { ApiError } from '@offload/problem';
import { noResultError } from '@offload/problem/no-result';
import { blobResponse, type JobQueues } from '@offload/queue';
import type { Context } from 'hono';
import type { AppEnv } from './auth.ts';
import { missingJobError } from './missing-job.ts';
import { problems, v1, v1Problems } from './routes.ts';
import { jobIdParams } from './schemas.ts';

/**
 * GET /v1/jobs/{id}/result (DESIGN.md §3): a completed job's result alone.
 * A JSON result answers as `application/json`; a binary one (a task that
 * returned `binary(bytes, contentType)`) answers its bytes, streamed from the
 * blob store with the task's content type and their length. Before the job
 * completes: 409 `job_not_finished`; once it failed or was canceled: 409
 * `job_has_no_result`; an unknown id or another tenant's job 404, a job
 * removed past retention 410, as GET /v1/jobs/{id} answers them.
 */
export const jobResultRoute = createRoute({
  method: 'get',
  path: '/v1/jobs/{id}/result',
  operationId: 'getJobResult',
  tags: ['jobs'],
  summary: 'A completed job’s result alone: JSON, or a binary result’s bytes',
  description:
    'A JSON result as `application/json`. A binary result (the job’s `result` is then `{ contentType, size, url }`, a BinaryResult) answers its bytes with that content type and `Content-Length`. 409 `job_not_finished` while the job is queued, delayed, blocked or running; 409 `job_has_no_result` once it failed or was canceled.',
  ...v1,
  request: { params: jobIdParams },
  responses: {
    200: {
      description: 'The result: JSON, or the bytes of a binary result with their content type',
      content: {
        'application/json': { schema: z.unknown() },
        '*/*': { schema: z.string().openapi({ format: 'binary' }) },
      },
    },
    ...problems('not_found', 'gone', 'job_not_finished', 'job_has_no_result', ...v1Problems),
  },
});

export async function serveJobResult(
  c: Context<AppEnv>,
  jobs: JobQueues,
  id: string,
  tenant: string,
): Promise<Response> {
  const found = await jobs.getJobResult(id, tenant);
  // A workflow step with no job yet is blocked (or was canceled before it started).
  const view = found?.view ?? (await jobs.workflows.stepView(id, tenant));
  if (!view) throw await missingJobError(jobs, id, tenant);
  const unavailable = noResultError(view);
  if (unavailable) throw unavailable;
  if (!found?.blob) return c.json(view.result ?? null, 200);
  const answer = await blobResponse(jobs.blobs, found.blob);
  if (!answer) {
    throw new ApiError('gone', `The bytes of job ${id} were removed after its retention window`);
  }
  return answer;
}

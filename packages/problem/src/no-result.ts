import type { JobView } from '@offload/contract';
import { ApiError } from './index.ts';

/**
 * Why a job has no result to serve yet or ever (GET …/result, on the API and
 * the dashboard alike): 409 `job_not_finished` while it is queued, delayed,
 * blocked or running; 409 `job_has_no_result` once it failed or was
 * canceled. Null for a completed job.
 */
export function noResultError(view: JobView): ApiError | null {
  if (view.state === 'completed') return null;
  if (view.state === 'failed' || view.state === 'canceled') {
    return new ApiError(
      'job_has_no_result',
      `Job ${view.id} is ${view.state} (${view.error?.code ?? view.state}); only a completed job has a result`,
    );
  }
  return new ApiError(
    'job_not_finished',
    `Job ${view.id} is ${view.state}; its result is here once it completes (GET /v1/jobs/${view.id}?wait=30 waits for that)`,
  );
}

import { ApiError } from '@offload/problem';
import type { JobQueues } from '@offload/queue';

/**
 * What to answer for an id with no job: 404 for a workflow step not started
 * (its job is added when the steps it needs complete), 410 when it was
 * issued to this tenant and its job removed past retention, 404 when it never
 * was (or is another tenant's). Job ids prove their own issue
 * (packages/queue/src/job-ids.ts).
 */
export async function missingJobError(jobs: JobQueues, id: string, tenant: string) {
  const step = await jobs.workflows.stepView(id, tenant);
  if (step) {
    return new ApiError(
      'not_found',
      `Job ${id} is a workflow step that is ${step.state} and has no job to follow; GET /v1/jobs/${id} shows it`,
    );
  }
  if (await jobs.isExpiredJobId(id, tenant)) {
    return new ApiError('gone', `Job ${id} finished and was removed after its retention window`);
  }
  return new ApiError('not_found', `No job has the id ${id}`);
}

import { ApiError } from '@offload/problem';
import type { JobQueues } from '@offload/queue';

/**
 * What to answer for an id with no job: 410 when it was issued to this tenant
 * and its job removed past retention, 404 when it never was (or is another
 * tenant's). Job ids prove their own issue (packages/queue/src/job-ids.ts).
 */
export async function missingJobError(jobs: JobQueues, id: string, tenant: string) {
  if (await jobs.isExpiredJobId(id, tenant)) {
    return new ApiError('gone', `Job ${id} finished and was removed after its retention window`);
  }
  return new ApiError('not_found', `No job has the id ${id}`);
}

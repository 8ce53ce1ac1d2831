import { type JobQueues, Scheduler } from '@offload/queue';
import type { Logger } from 'pino';
import type { TaskCatalog } from './task-catalog.ts';
import { submitRequest, taskFor } from './task-requests.ts';

/**
 * Starts this process's share of firing the schedules (see scheduler.ts):
 * each firing's job goes through the path of POST /v1/jobs, the catalog's
 * current version of the task, its input check, quota and fair share, under
 * the firing's own Idempotency-Key. Every API process runs one; schedules
 * fire while at least one API process runs.
 */
export function startScheduler(deps: {
  jobs: JobQueues;
  catalog: TaskCatalog;
  logger: Logger;
  /** API_MAX_INPUT_BYTES */
  maxInputBytes: number;
}): Scheduler {
  const { jobs, catalog, logger } = deps;
  return new Scheduler({
    schedules: jobs.schedules,
    submit: async (record, key) => {
      const body = {
        task: record.task,
        input: record.input,
        ...(record.options && { options: record.options }),
      };
      const found = await taskFor(catalog, body, deps.maxInputBytes);
      const request = submitRequest(body, found, record.tenant);
      // The key is its own request hash: every retry of one firing is the same request.
      const { view } = await jobs.submitJobOnce(request, key, key);
      return view.id;
    },
    onError: (err, firing) =>
      logger.warn({ err: err.message, ...firing }, 'a schedule firing made no job'),
  }).start();
}

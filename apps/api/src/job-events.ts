import { isFinal, type JobView } from '@offload/contract';
import type { JobQueues } from '@offload/queue';
import type { Context } from 'hono';
import { streamSSE } from 'hono/streaming';
import { missingJobError } from './missing-job.ts';

/** A comment line this often keeps proxies from closing a quiet stream, ms. */
const KEEPALIVE_MS = 15_000;

/**
 * GET /v1/jobs/{id}/events: a snapshot (`state`), then `state` and `progress`
 * as they change, then the final event, named after the final state; then the
 * stream ends. Changes come from the process's one event reader per queue
 * (FinishWatcher), and each one costs one read of the job, never a poll.
 */
export async function streamJobEvents(
  c: Context,
  jobs: JobQueues,
  id: string,
  tenant: string,
): Promise<Response> {
  let changed = false;
  let wake: () => void = () => {};
  // Watch before the first read, so a change between the two is not missed.
  const unwatch = jobs.watchJob(id, () => {
    changed = true;
    wake();
  });
  let first: JobView | null;
  try {
    first = await jobs.getJobView(id, tenant);
  } catch (err) {
    unwatch();
    throw err;
  }
  if (!first) {
    unwatch();
    throw await missingJobError(jobs, id, tenant);
  }
  const snapshot = first;
  c.header('cache-control', 'no-cache');
  // Tells nginx not to buffer the stream.
  c.header('x-accel-buffering', 'no');

  return streamSSE(c, async (stream) => {
    stream.onAbort(() => wake());
    let sequence = 0;
    const send = (event: string, view: JobView) =>
      stream.writeSSE({ event, data: JSON.stringify(view), id: String(++sequence) });
    try {
      let last = snapshot;
      await send('state', last);
      // A job finished before the stream opened still gets its final event: clients wait for it.
      if (isFinal(last.state)) await send(last.state, last);
      while (!isFinal(last.state) && !stream.aborted) {
        if (!changed) {
          const quiet = await new Promise<boolean>((resolve) => {
            const timer = setTimeout(() => resolve(true), KEEPALIVE_MS);
            wake = () => {
              clearTimeout(timer);
              resolve(false);
            };
          });
          if (stream.aborted) break;
          if (quiet) {
            await stream.write(': keep-alive\n\n');
            continue;
          }
        }
        changed = false;
        const view = await jobs.getJobView(id, tenant);
        // Removed past retention while watched: nothing more will happen to it.
        if (!view) break;
        if (isFinal(view.state)) await send(view.state, view);
        else if (view.state !== last.state) await send('state', view);
        else if (view.progress !== last.progress) await send('progress', view);
        last = view;
      }
    } catch {
      // Redis went away mid-stream: end it; the client reconnects and starts from a snapshot.
    } finally {
      unwatch();
    }
  });
}

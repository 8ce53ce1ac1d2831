import { isFinal, type JobView } from '@offload/contract';
import type { JobQueues, JobUpdate } from '@offload/queue';
import type { Context } from 'hono';
import { streamSSE } from 'hono/streaming';
import { missingJobError } from './missing-job.ts';
import type { StreamSlots } from './stream-slots.ts';

/** A comment line this often keeps proxies from closing a quiet stream, ms. */
const KEEPALIVE_MS = 15_000;

/**
 * Each view serialized once, however many streams send it: the followers of a
 * job share the view objects its feed reads, and a final view may carry a
 * result of megabytes.
 */
const serialized = new WeakMap<JobView, string>();
function dataOf(view: JobView): string {
  let text = serialized.get(view);
  if (text === undefined) {
    text = JSON.stringify(view);
    serialized.set(view, text);
  }
  return text;
}

export interface EventStreamOptions {
  slots: StreamSlots;
  /** Longest a stream stays open, ms; then it ends, and the client reconnects to a fresh snapshot. */
  maxLifetimeMs: number;
}

/**
 * GET /v1/jobs/{id}/events: a snapshot (`state`), then `state` and `progress`
 * as they change, then the final event, named after the final state; then the
 * stream ends. It also ends, without a final event, after `maxLifetimeMs`,
 * so no stream holds a slot for ever. Views come from the job's feed, whose
 * one read per change serves every stream and long-poll of the job.
 */
export async function streamJobEvents(
  c: Context,
  jobs: JobQueues,
  id: string,
  tenant: string,
  options: EventStreamOptions,
): Promise<Response> {
  const release = options.slots.take(tenant);
  // Only the newest update waits: a stream that falls behind skips views, never the final one.
  let pending: JobUpdate | null = null;
  let wake = () => {};
  let watch: Awaited<ReturnType<JobQueues['watchJob']>>;
  try {
    watch = await jobs.watchJob(id, tenant, (update) => {
      pending = update;
      wake();
    });
    if (!watch) throw await missingJobError(jobs, id, tenant);
  } catch (err) {
    release();
    throw err;
  }
  const { view: snapshot, subscription } = watch;
  c.header('cache-control', 'no-cache');
  // Tells nginx not to buffer the stream.
  c.header('x-accel-buffering', 'no');

  return streamSSE(c, async (stream) => {
    const endsAt = performance.now() + options.maxLifetimeMs;
    stream.onAbort(() => wake());
    let sequence = 0;
    const send = (event: string, view: JobView) =>
      stream.writeSSE({ event, data: dataOf(view), id: String(++sequence) });
    try {
      let last = snapshot;
      await send('state', last);
      // A job finished before the stream opened still gets its final event: clients wait for it.
      if (isFinal(last.state)) await send(last.state, last);
      while (!isFinal(last.state) && !stream.aborted) {
        const left = endsAt - performance.now();
        if (left <= 0) break;
        if (pending === null) {
          const quiet = await new Promise<boolean>((resolve) => {
            const timer = setTimeout(() => resolve(true), Math.min(KEEPALIVE_MS, left));
            wake = () => {
              clearTimeout(timer);
              resolve(false);
            };
          });
          if (stream.aborted) break;
          if (quiet) {
            if (performance.now() < endsAt) await stream.write(': keep-alive\n\n');
            continue;
          }
        }
        const update = pending as JobUpdate | null;
        pending = null;
        if (!update) continue;
        // Redis went away mid-stream: end it; the client reconnects and starts from a snapshot.
        if ('error' in update) break;
        const { view } = update;
        // Removed past retention while watched: nothing more will happen to it.
        if (!view) break;
        if (isFinal(view.state)) await send(view.state, view);
        else if (view.state !== last.state) await send('state', view);
        else if (view.progress !== last.progress) await send('progress', view);
        last = view;
      }
    } catch {
      // The client went away mid-write: nothing to tell anyone.
    } finally {
      subscription.stop();
      release();
    }
  });
}

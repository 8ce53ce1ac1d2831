import type { TaskContext, TaskProgress } from '@offload/tasks';

/** A task context that records progress; `signal` aborts when `abort` is called. */
export function recordingContext() {
  const progress: TaskProgress[] = [];
  const abort = new AbortController();
  const context: TaskContext = {
    progress: (value) => {
      progress.push(value);
    },
    log: () => {},
    signal: abort.signal,
  };
  return { context, progress, abort: (reason: string) => abort.abort(new Error(reason)) };
}

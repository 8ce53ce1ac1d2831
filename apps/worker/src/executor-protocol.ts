/** Messages between the worker's main thread and its executor threads. */

export interface ExecutorData {
  /** URL of a module that exports `registry` (a TaskRegistry); unset runs the built-in tasks. */
  tasksModule: string | undefined;
}

export type ToExecutor =
  | { type: 'run'; jobId: string; task: string; input: unknown }
  /** Ask the running task to stop through its AbortSignal; the pool kills the thread if it does not. */
  | { type: 'abort'; reason: string };

export type FromExecutor =
  | { type: 'ready' }
  | { type: 'progress'; value: number | object }
  | { type: 'log'; line: string }
  | { type: 'done'; result: unknown }
  /** `final`: no retry can help (unknown task, invalid input or output). */
  | { type: 'failed'; message: string; final: boolean };

/** Messages between the worker's main thread and its executor threads. */

export interface ExecutorData {
  /** OFFLOAD_TASKS entries, loaded by the thread as the main thread loaded them (task-modules.ts). */
  taskModules: readonly string[];
  /** Folder relative entries are resolved from. */
  cwd: string;
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
  | { type: 'failed'; message: string; final: boolean; code?: 'invalid_input' };

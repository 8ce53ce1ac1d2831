/**
 * What the pool and its executors say to each other. A thread executor posts
 * these objects; a Python executor writes them as JSON lines
 * (sdk/python/PROTOCOL.md): one protocol, two transports.
 */

/** Why an execution did not produce a result; the job's error code unless `shutdown`. */
export type ExecutionErrorCode =
  | 'timeout'
  | 'canceled'
  | 'shutdown'
  | 'task_error'
  | 'invalid_input'
  | 'invalid_output'
  | 'result_too_large'
  | 'out_of_memory';

export class ExecutionError extends Error {
  override readonly name = 'ExecutionError';
  constructor(
    readonly code: ExecutionErrorCode,
    message: string,
    /** No retry can help: the same input would fail the same way. */
    readonly final = false,
  ) {
    super(message);
  }
}

export interface ExecutorData {
  /** OFFLOAD_TASKS entries, loaded by the thread as the main thread loaded them (task-modules.ts). */
  taskModules: readonly string[];
  /** Folder relative entries are resolved from. */
  cwd: string;
}

export type ToExecutor =
  | { type: 'run'; jobId: string; task: string; input: unknown }
  /** Ask the running task to stop (its AbortSignal, Python's ctx.canceled); the pool kills the executor if it does not. */
  | { type: 'abort'; reason: string };

export type FromExecutor =
  | { type: 'ready' }
  | { type: 'progress'; value: number | object }
  | { type: 'log'; line: string }
  /**
   * `bytes`: the size of the result's JSON (UTF-8), measured by the executor,
   * off the main thread; for a binary result (`binary`, then `result` is
   * null), the length of its bytes, whose memory a thread transfers.
   */
  | {
      type: 'done';
      result: unknown;
      bytes: number;
      binary?: { data: Uint8Array<ArrayBuffer>; contentType: string };
    }
  /** `final`: no retry can help (unknown task, invalid input or output). */
  | {
      type: 'failed';
      message: string;
      final: boolean;
      code?: 'task_error' | 'invalid_input' | 'invalid_output' | 'out_of_memory';
    };

/** One live executor, whatever runs it: a worker thread or a child process. */
export interface ExecutorChannel {
  send(message: ToExecutor): void;
  /** Stops it at once, and whatever it started (a Python executor's child processes). */
  kill(): void;
}

/** What a channel reports to the pool; `exited` comes once, last, with the error a job it held fails with. */
export interface ChannelListener {
  message(message: FromExecutor): void;
  exited(cause: ExecutionError): void;
}

/** Starts executors of one kind, for the tasks it serves. */
export interface ExecutorBackend {
  /** `typescript` or `python`, for logs. */
  readonly kind: string;
  /** Names of the tasks its executors run. */
  readonly tasks: ReadonlySet<string>;
  launch(listener: ChannelListener): ExecutorChannel;
}

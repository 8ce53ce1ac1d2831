import {
  ExecutionError,
  type ExecutorBackend,
  type ExecutorChannel,
  type FromExecutor,
  type ToExecutor,
} from './executor-protocol.ts';

export interface ExecutorPoolOptions {
  /** Executors of each backend, each running one task at a time. */
  size: number;
  /** Where tasks run: threads for TypeScript tasks, processes for Python tasks. */
  backends: readonly ExecutorBackend[];
  /** How long a task gets to honour its abort before its executor is killed, ms. */
  abortGraceMs?: number;
  /**
   * Largest result, bytes of its JSON (WORKER_MAX_RESULT_BYTES); a larger one
   * fails its job with `result_too_large`, final. Unset: no bound.
   */
  maxResultBytes?: number;
}

/** A task's result and the size of its JSON, bytes, as its executor measured it. */
export interface ExecutionResult {
  result: unknown;
  bytes: number;
  /** Bytes the task returned instead of JSON (`bytes` is their length; `result` is null). */
  binary?: { data: Uint8Array; contentType: string };
}

export interface Execution {
  jobId: string;
  task: string;
  input: unknown;
  /** Hard limit, ms: at the limit the task is aborted and its executor killed. */
  timeoutMs: number;
  onProgress?: (value: number | object) => void;
  onLog?: (line: string) => void;
}

interface Pending {
  execution: Execution;
  resolve: (result: ExecutionResult) => void;
  reject: (err: ExecutionError) => void;
}

interface Executor {
  backend: ExecutorBackend;
  channel: ExecutorChannel;
  /** Sent its ready message at some point. */
  started: boolean;
  /** Can take a job: started and not dying. */
  ready: boolean;
  /** The execution it runs; settled executions are cleared at once, before the executor is free again. */
  current: (Pending & { timer: NodeJS.Timeout }) | null;
  /** Set between an abort and the executor's answer (or its kill). */
  stopping: NodeJS.Timeout | null;
  /** Resolves once it has exited. */
  gone: Promise<void>;
}

const DEFAULT_ABORT_GRACE_MS = 200;
/** Wait before replacing an executor that died while starting, ms. */
const RESPAWN_DELAY_MS = 1000;

/**
 * A fixed set of reused executors per backend. Starting one costs tens of ms
 * (a thread; a Python interpreter) to hundreds (under tsx, or importing a
 * task module), so executors live across jobs and are replaced only when one
 * is killed (timeout, cancel, crash, out of memory). Tasks never run on the
 * caller's thread. With two backends the worker still holds at most `size`
 * jobs at once (its BullMQ concurrency), so a job always finds a free executor
 * of its kind.
 */
export class ExecutorPool {
  private readonly executors = new Set<Executor>();
  private readonly waiting: Pending[] = [];
  private closed = false;
  private readonly abortGraceMs: number;

  private constructor(private readonly options: ExecutorPoolOptions) {
    this.abortGraceMs = options.abortGraceMs ?? DEFAULT_ABORT_GRACE_MS;
  }

  /** Starts `size` executors of every backend and resolves once every one is ready. */
  static async start(options: ExecutorPoolOptions): Promise<ExecutorPool> {
    const pool = new ExecutorPool(options);
    try {
      await Promise.all(
        options.backends.flatMap((backend) =>
          Array.from({ length: options.size }, () => pool.spawn(backend)),
        ),
      );
    } catch (err) {
      await pool.close();
      throw err;
    }
    return pool;
  }

  get size(): number {
    return this.options.size;
  }

  /** Runs the execution on the next free executor of its task's kind; rejects with ExecutionError. */
  async run(execution: Execution): Promise<unknown> {
    return (await this.execute(execution)).result;
  }

  /** `run`, answering the size of the result's JSON too. */
  execute(execution: Execution): Promise<ExecutionResult> {
    if (this.closed)
      return Promise.reject(new ExecutionError('shutdown', 'Executor pool is closed'));
    if (!this.options.backends.some((backend) => backend.tasks.has(execution.task))) {
      return Promise.reject(
        new ExecutionError('task_error', `Unknown task "${execution.task}"`, true),
      );
    }
    return new Promise((resolve, reject) => {
      this.waiting.push({ execution, resolve, reject });
      this.dispatch();
    });
  }

  /**
   * Stops a job's execution, waiting or running: it rejects at once with
   * `reason`, and its executor is killed unless the task honours the abort
   * within the grace. Returns false when the pool holds no such job.
   */
  stop(jobId: string, reason: 'canceled' | 'shutdown'): boolean {
    const index = this.waiting.findIndex((p) => p.execution.jobId === jobId);
    if (index >= 0) {
      const [pending] = this.waiting.splice(index, 1);
      pending?.reject(stopError(reason));
      return true;
    }
    for (const executor of this.executors) {
      if (executor.current?.execution.jobId === jobId) {
        this.abort(executor, stopError(reason));
        return true;
      }
    }
    return false;
  }

  /** Kills every executor; running and waiting executions reject with `shutdown`. */
  async close(): Promise<void> {
    this.closed = true;
    for (const pending of this.waiting.splice(0)) {
      pending.reject(stopError('shutdown'));
    }
    const exits = [...this.executors].map((executor) => {
      this.settle(executor, stopError('shutdown'));
      executor.channel.kill();
      return executor.gone;
    });
    await Promise.all(exits);
  }

  /**
   * Starts one executor; resolves when it is ready, rejects when it dies
   * before (a broken tasks module). A replacement that dies that way is retried
   * after RESPAWN_DELAY_MS rather than in a tight loop.
   */
  private spawn(backend: ExecutorBackend): Promise<void> {
    return new Promise((resolveReady, rejectReady) => {
      let markGone = () => {};
      const gone = new Promise<void>((resolve) => {
        markGone = resolve;
      });
      const channel = backend.launch({
        message: (message) => {
          if (message.type === 'ready') {
            executor.started = true;
            executor.ready = !this.closed;
            resolveReady();
            this.dispatch();
          } else this.onMessage(executor, message);
        },
        exited: (cause) => {
          executor.ready = false;
          this.settle(executor, cause);
          if (executor.stopping) clearTimeout(executor.stopping);
          this.executors.delete(executor);
          markGone();
          if (!executor.started) {
            rejectReady(new Error(`An executor failed to start: ${cause.message}`));
          }
          if (this.closed) return;
          const respawn = () => {
            if (!this.closed)
              this.spawn(backend).catch(() => setTimeout(respawn, RESPAWN_DELAY_MS));
          };
          if (executor.started) respawn();
          else setTimeout(respawn, RESPAWN_DELAY_MS);
        },
      });
      const executor: Executor = {
        backend,
        channel,
        started: false,
        ready: false,
        current: null,
        stopping: null,
        gone,
      };
      this.executors.add(executor);
    });
  }

  private onMessage(executor: Executor, message: FromExecutor): void {
    if (message.type === 'progress') executor.current?.execution.onProgress?.(message.value);
    else if (message.type === 'log') executor.current?.execution.onLog?.(message.line);
    else if (message.type === 'done') {
      const max = this.options.maxResultBytes;
      if (max !== undefined && message.bytes > max) {
        this.settle(
          executor,
          new ExecutionError(
            'result_too_large',
            `The result is ${message.bytes} bytes${message.binary ? '' : ' of JSON'}; results are limited to ${max} (WORKER_MAX_RESULT_BYTES)`,
            true,
          ),
        );
      } else {
        const { result, bytes, binary } = message;
        this.settle(executor, null, { result, bytes, ...(binary && { binary }) });
      }
      this.release(executor);
    } else if (message.type === 'failed') {
      const code = message.code ?? 'task_error';
      this.settle(executor, new ExecutionError(code, message.message, message.final));
      this.release(executor);
    }
  }

  /** The executor answered (or was never asked): it may take the next job. */
  private release(executor: Executor): void {
    if (executor.stopping) {
      clearTimeout(executor.stopping);
      executor.stopping = null;
    }
    this.dispatch();
  }

  private dispatch(): void {
    for (let i = 0; i < this.waiting.length; i++) {
      const pending = this.waiting[i] as Pending;
      const executor = this.freeExecutorFor(pending.execution.task);
      if (!executor) continue;
      this.waiting.splice(i--, 1);
      const { execution } = pending;
      const timer = setTimeout(() => {
        this.abort(
          executor,
          new ExecutionError(
            'timeout',
            `The task exceeded its ${execution.timeoutMs} ms time limit`,
            true,
          ),
        );
      }, execution.timeoutMs);
      executor.current = { ...pending, timer };
      const message: ToExecutor = {
        type: 'run',
        jobId: execution.jobId,
        task: execution.task,
        input: execution.input,
      };
      executor.channel.send(message);
    }
  }

  private freeExecutorFor(task: string): Executor | undefined {
    for (const executor of this.executors) {
      if (!executor.backend.tasks.has(task)) continue;
      if (executor.ready && !executor.current && !executor.stopping) return executor;
    }
    return undefined;
  }

  /** Rejects the executor's job now; kills the executor if the task ignores the abort for the grace period. */
  private abort(executor: Executor, err: ExecutionError): void {
    if (!executor.current || executor.stopping) return;
    this.settle(executor, err);
    executor.channel.send({ type: 'abort', reason: err.message });
    executor.stopping = setTimeout(() => executor.channel.kill(), this.abortGraceMs);
  }

  /** Settles the executor's current job once: with `err`, or with `result` when err is null. */
  private settle(executor: Executor, err: ExecutionError | null, result?: ExecutionResult): void {
    const current = executor.current;
    if (!current) return;
    executor.current = null;
    clearTimeout(current.timer);
    if (err) current.reject(err);
    else current.resolve(result as ExecutionResult);
  }
}

/** A canceled job must not run again; one stopped by a shutdown goes back to its queue. */
function stopError(reason: 'canceled' | 'shutdown'): ExecutionError {
  return reason === 'canceled'
    ? new ExecutionError('canceled', 'Canceled by request', true)
    : new ExecutionError('shutdown', 'The worker is shutting down');
}

import { Worker } from 'node:worker_threads';
import type { ExecutorData, FromExecutor, ToExecutor } from './executor-protocol.ts';

/** Why an execution did not produce a result. */
export type ExecutionErrorCode =
  | 'timeout'
  | 'canceled'
  | 'shutdown'
  | 'task_error'
  | 'invalid_input'
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

export interface ExecutorPoolOptions {
  /** Number of executor threads, each running one task at a time. */
  size: number;
  /** OFFLOAD_TASKS entries the executors run tasks from (see task-modules.ts). */
  taskModules: readonly string[];
  /** Folder relative entries are resolved from; default the process' working directory. */
  cwd?: string;
  /** How long a task gets to honour its AbortSignal before its thread is killed, ms. */
  abortGraceMs?: number;
  /** V8 old-generation heap cap of each executor, MB; unset leaves V8's default. */
  memoryLimitMb?: number;
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
  resolve: (result: unknown) => void;
  reject: (err: ExecutionError) => void;
}

interface Executor {
  thread: Worker;
  /** Sent its ready message at some point. */
  started: boolean;
  /** Can take a job: started and not dying. */
  ready: boolean;
  /** The execution it runs; settled executions are cleared at once, before the thread is free again. */
  current: (Pending & { timer: NodeJS.Timeout }) | null;
  /** Set between an abort and the thread's answer (or its kill). */
  stopping: NodeJS.Timeout | null;
}

const DEFAULT_ABORT_GRACE_MS = 200;
/** Wait before replacing an executor that died while starting, ms. */
const RESPAWN_DELAY_MS = 1000;

/**
 * A fixed set of reused executor threads. Spawning a thread costs tens of ms
 * (hundreds under tsx), so executors live across jobs and are replaced only
 * when one is killed (timeout, cancel, crash, out of memory). Tasks never run
 * on the caller's thread.
 */
export class ExecutorPool {
  private readonly executors = new Set<Executor>();
  private readonly waiting: Pending[] = [];
  private closed = false;
  private readonly abortGraceMs: number;

  private constructor(private readonly options: ExecutorPoolOptions) {
    this.abortGraceMs = options.abortGraceMs ?? DEFAULT_ABORT_GRACE_MS;
  }

  /** Starts `size` executors and resolves once every one is ready. */
  static async start(options: ExecutorPoolOptions): Promise<ExecutorPool> {
    const pool = new ExecutorPool(options);
    try {
      await Promise.all(Array.from({ length: options.size }, () => pool.spawn()));
    } catch (err) {
      await pool.close();
      throw err;
    }
    return pool;
  }

  get size(): number {
    return this.options.size;
  }

  /** Runs the execution on the next free executor; rejects with ExecutionError. */
  run(execution: Execution): Promise<unknown> {
    if (this.closed)
      return Promise.reject(new ExecutionError('shutdown', 'Executor pool is closed'));
    return new Promise((resolve, reject) => {
      this.waiting.push({ execution, resolve, reject });
      this.dispatch();
    });
  }

  /**
   * Stops a job's execution, waiting or running: it rejects at once with
   * `reason`, and its executor is killed unless the task honours its signal
   * within the abort grace. Returns false when the pool holds no such job.
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
    const threads = [...this.executors].map((executor) => {
      this.settle(executor, stopError('shutdown'));
      return executor.thread.terminate();
    });
    this.executors.clear();
    await Promise.all(threads);
  }

  /**
   * Starts one executor; resolves when it is ready, rejects when it dies
   * before (a broken tasks module). A replacement that dies that way is retried
   * after RESPAWN_DELAY_MS rather than in a tight loop.
   */
  private spawn(): Promise<void> {
    const data: ExecutorData = {
      taskModules: this.options.taskModules,
      cwd: this.options.cwd ?? process.cwd(),
    };
    const thread = createThread(data, this.options.memoryLimitMb);
    const executor: Executor = {
      thread,
      started: false,
      ready: false,
      current: null,
      stopping: null,
    };
    this.executors.add(executor);
    return new Promise((resolveReady, rejectReady) => {
      let startError: Error | undefined;
      thread.on('message', (message: FromExecutor) => {
        if (message.type === 'ready') {
          executor.started = true;
          executor.ready = true;
          resolveReady();
          this.dispatch();
        } else this.onMessage(executor, message);
      });
      thread.on('error', (err: Error & { code?: string }) => {
        // An uncaught error ends the thread; 'exit' follows and replaces it. Until then it takes no job.
        executor.ready = false;
        if (!executor.started) startError = err;
        const outOfMemory = err.code === 'ERR_WORKER_OUT_OF_MEMORY';
        this.settle(
          executor,
          new ExecutionError(
            outOfMemory ? 'out_of_memory' : 'task_error',
            outOfMemory
              ? 'The task ran out of memory; its executor was stopped'
              : `The task crashed its executor: ${err.message}`,
          ),
        );
      });
      thread.on('exit', (exitCode) => {
        this.settle(
          executor,
          new ExecutionError('task_error', `The task ended its executor (exit code ${exitCode})`),
        );
        if (executor.stopping) clearTimeout(executor.stopping);
        this.executors.delete(executor);
        executor.ready = false;
        if (!executor.started) {
          rejectReady(
            new Error(
              `An executor failed to start: ${startError?.message ?? `exit code ${exitCode}`}`,
            ),
          );
        }
        if (this.closed) return;
        const respawn = () => {
          if (!this.closed) this.spawn().catch(() => setTimeout(respawn, RESPAWN_DELAY_MS));
        };
        if (executor.started) respawn();
        else setTimeout(respawn, RESPAWN_DELAY_MS);
      });
    });
  }

  private onMessage(executor: Executor, message: FromExecutor): void {
    if (message.type === 'progress') executor.current?.execution.onProgress?.(message.value);
    else if (message.type === 'log') executor.current?.execution.onLog?.(message.line);
    else if (message.type === 'done') {
      this.settle(executor, null, message.result);
      this.release(executor);
    } else if (message.type === 'failed') {
      const code = message.code ?? 'task_error';
      this.settle(executor, new ExecutionError(code, message.message, message.final));
      this.release(executor);
    }
  }

  /** The thread answered (or was never asked): it may take the next job. */
  private release(executor: Executor): void {
    if (executor.stopping) {
      clearTimeout(executor.stopping);
      executor.stopping = null;
    }
    this.dispatch();
  }

  private dispatch(): void {
    for (const executor of this.executors) {
      if (this.waiting.length === 0) return;
      if (!executor.ready || executor.current || executor.stopping) continue;
      const pending = this.waiting.shift() as Pending;
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
      executor.thread.postMessage(message);
    }
  }

  /** Rejects the executor's job now; kills the thread if the task ignores its signal for the grace period. */
  private abort(executor: Executor, err: ExecutionError): void {
    if (!executor.current || executor.stopping) return;
    this.settle(executor, err);
    const message: ToExecutor = { type: 'abort', reason: err.message };
    executor.thread.postMessage(message);
    executor.stopping = setTimeout(() => {
      void executor.thread.terminate();
    }, this.abortGraceMs);
  }

  /** Settles the executor's current job once: with `err`, or with `result` when err is null. */
  private settle(executor: Executor, err: ExecutionError | null, result?: unknown): void {
    const current = executor.current;
    if (!current) return;
    executor.current = null;
    clearTimeout(current.timer);
    if (err) current.reject(err);
    else current.resolve(result);
  }
}

/** A canceled job must not run again; one stopped by a shutdown goes back to its queue. */
function stopError(reason: 'canceled' | 'shutdown'): ExecutionError {
  return reason === 'canceled'
    ? new ExecutionError('canceled', 'Canceled by request', true)
    : new ExecutionError('shutdown', 'The worker is shutting down');
}

/**
 * Under tsx (development, tests) the thread entry is TypeScript: the thread
 * registers tsx's loader before importing it. A bundled build runs the .js twin.
 */
function createThread(workerData: ExecutorData, memoryLimitMb: number | undefined): Worker {
  const options = {
    workerData,
    ...(memoryLimitMb && { resourceLimits: { maxOldGenerationSizeMb: memoryLimitMb } }),
  };
  const source = import.meta.url.endsWith('.ts');
  const entry = new URL(source ? './executor-thread.ts' : './executor-thread.js', import.meta.url);
  if (!source) return new Worker(entry, options);
  const tsx = import.meta.resolve('tsx/esm/api');
  const bootstrap = `import(${JSON.stringify(tsx)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry.href)}); })`;
  return new Worker(bootstrap, { ...options, eval: true });
}

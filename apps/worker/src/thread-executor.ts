import { Worker } from 'node:worker_threads';
import {
  type ChannelListener,
  ExecutionError,
  type ExecutorBackend,
  type ExecutorChannel,
  type ExecutorData,
  type FromExecutor,
} from './executor-protocol.ts';

export interface ThreadBackendOptions {
  /** Names of the tasks the modules define. */
  tasks: Iterable<string>;
  /** The TypeScript OFFLOAD_TASKS entries each thread loads. */
  taskModules: readonly string[];
  cwd: string;
  /** V8 old-generation heap cap of each thread, MB; unset leaves V8's default. */
  memoryLimitMb?: number;
}

/** Executors for TypeScript tasks: worker threads of the worker process (executor-thread.ts). */
export function threadBackend(options: ThreadBackendOptions): ExecutorBackend {
  const data: ExecutorData = { taskModules: options.taskModules, cwd: options.cwd };
  return {
    kind: 'typescript',
    tasks: new Set(options.tasks),
    launch: (listener) => launchThread(data, options.memoryLimitMb, listener),
  };
}

/** How often a running job's memory outside the heap (Buffers, ArrayBuffers) is checked, ms. */
const EXTERNAL_CHECK_MS = 250;

function launchThread(
  data: ExecutorData,
  memoryLimitMb: number | undefined,
  listener: ChannelListener,
): ExecutorChannel {
  const thread = createThread(data, memoryLimitMb);
  // An uncaught error ends the thread; 'exit' follows and reports it.
  let error: (Error & { code?: string }) | undefined;
  /**
   * V8's heap limit does not count Buffers and ArrayBuffers, which live outside
   * the heap. While a job runs, the thread's isolate is asked for its external
   * memory (an interrupt: it answers even from a synchronous loop), and a job
   * past the cap has its thread killed, as one past the heap limit does.
   */
  let external: NodeJS.Timeout | null = null;
  let externalOver = 0;
  const watchExternal = (on: boolean) => {
    if (external) clearInterval(external);
    external = null;
    if (!on || !memoryLimitMb) return;
    const limit = memoryLimitMb * 1024 * 1024;
    external = setInterval(() => {
      thread.getHeapStatistics().then(
        (stats) => {
          if (stats.external_memory <= limit || externalOver) return;
          externalOver = stats.external_memory;
          void thread.terminate();
        },
        () => {},
      );
    }, EXTERNAL_CHECK_MS);
  };
  thread.on('message', (message: FromExecutor) => {
    if (message.type === 'done' || message.type === 'failed') watchExternal(false);
    listener.message(message);
  });
  thread.on('error', (err: Error & { code?: string }) => {
    error = err;
  });
  thread.on('exit', (exitCode) => {
    watchExternal(false);
    if (externalOver) {
      const mb = Math.round(externalOver / 1024 / 1024);
      listener.exited(
        new ExecutionError(
          'out_of_memory',
          `The task held ${mb} MB of Buffers, past the executor's ${memoryLimitMb} MB cap; its executor was stopped`,
        ),
      );
    } else if (error?.code === 'ERR_WORKER_OUT_OF_MEMORY') {
      listener.exited(
        new ExecutionError('out_of_memory', 'The task ran out of memory; its executor was stopped'),
      );
    } else if (error) {
      listener.exited(
        new ExecutionError('task_error', `The task crashed its executor: ${error.message}`),
      );
    } else {
      listener.exited(
        new ExecutionError('task_error', `The task ended its executor (exit code ${exitCode})`),
      );
    }
  });
  return {
    send: (message) => {
      if (message.type === 'run') watchExternal(true);
      thread.postMessage(message);
    },
    kill: () => {
      watchExternal(false);
      void thread.terminate();
    },
  };
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

import { setPriority } from 'node:os';
import { createRedis, offloadKeys } from '@offload/queue';
import type { TaskRegistry } from '@offload/tasks';
import { pino } from 'pino';
import { loadWorkerEnv } from './env.ts';
import { ExecutorPool } from './executor-pool.ts';
import { createWorker } from './worker.ts';

export interface WorkerProcessOptions {
  /** The registry this process serves. */
  registry: TaskRegistry;
  /** URL of the module that exports it as `registry`, for the executor threads; unset: the built-ins. */
  tasksModule?: string;
}

/**
 * Starts a worker process: lowers its CPU priority, starts the executors and
 * the job loop, and drains on SIGTERM/SIGINT. Used by index.ts and by tests
 * that serve extra tasks.
 */
export async function runWorkerProcess(options: WorkerProcessOptions): Promise<void> {
  const env = loadWorkerEnv();
  const logger = pino({
    name: 'worker',
    level: env.LOG_LEVEL,
    redact: { paths: ['redisUrl', '*.password'], censor: '[redacted]' },
  });

  // Before any executor thread exists: on Linux a thread inherits the nice value of the thread that creates it.
  try {
    setPriority(env.WORKER_NICE);
  } catch (err) {
    logger.warn({ err: (err as Error).message }, 'could not lower CPU priority');
  }

  const known = options.registry.queues();
  const queues = env.WORKER_QUEUES ?? [...known];
  const unknown = queues.filter((queue) => !known.includes(queue));
  if (unknown.length > 0) {
    logger.warn({ unknown, known }, 'WORKER_QUEUES names queues no task uses');
  }

  const redis = createRedis(env.REDIS_URL, 'worker');
  const pool = await ExecutorPool.start({
    size: env.WORKER_CONCURRENCY,
    ...(options.tasksModule && { tasksModule: options.tasksModule }),
  });
  const worker = await createWorker({
    redis,
    keys: offloadKeys(env.OFFLOAD_PREFIX),
    queues,
    pool,
    logger,
    shutdownGraceMs: env.WORKER_SHUTDOWN_GRACE_MS,
  });

  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping');
    worker
      .close()
      .then(() => redis.quit())
      .then(
        () => process.exit(0),
        (err: Error) => {
          logger.error({ err: err.message }, 'unclean stop');
          process.exit(1);
        },
      );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

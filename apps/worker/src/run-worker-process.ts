import { setPriority } from 'node:os';
import {
  createRedis,
  evictionProblem,
  FileBlobStore,
  JobQueues,
  LOG_REDACT,
  offloadKeys,
  type RedisTarget,
  redisTargetFrom,
  retentionFrom,
  startWebhookSender,
} from '@offload/queue';
import { pino } from 'pino';
import { inheritedEnvironment, loadWorkerEnv } from './env.ts';
import { ExecutorPool } from './executor-pool.ts';
import { createWorkerMetrics, serveMetrics } from './metrics.ts';
import { pythonBackend } from './python-executor.ts';
import { loadWorkerTasks, TaskModuleError } from './task-modules.ts';
import { threadBackend } from './thread-executor.ts';
import { createWebhookMetrics } from './webhook-metrics.ts';
import { createWorker } from './worker.ts';

/** How long the worker waits for Redis at start before it says so, ms. */
const REDIS_WAIT_WARNING_MS = 3000;

/** Where Redis is, for the log: host and port only, never a password. */
function describeTarget(target: RedisTarget): string {
  if ('url' in target) {
    const url = new URL(target.url);
    return `${url.hostname}:${url.port || 6379}`;
  }
  return `cluster ${target.clusterNodes.map(({ host, port }) => `${host}:${port}`).join(',')}`;
}

/**
 * Starts a worker process: loads its task modules (OFFLOAD_TASKS), lowers its
 * CPU priority, starts the executors and the job loop, and drains on SIGTERM/SIGINT.
 */
export async function runWorkerProcess(): Promise<void> {
  const env = loadWorkerEnv();
  const logger = pino({
    name: 'worker',
    level: env.LOG_LEVEL,
    redact: LOG_REDACT,
  });

  // Every module loads before anything starts: a worker serves all of them or none.
  const cwd = process.cwd();
  const python = {
    cwd,
    python: env.OFFLOAD_PYTHON,
    memoryLimitMb: env.WORKER_EXECUTOR_MEMORY_MB,
    environment: inheritedEnvironment(),
    pythonPath: env.PYTHONPATH,
  };
  const tasks = await loadWorkerTasks(env.OFFLOAD_TASKS, python).catch((err: Error) => {
    if (!(err instanceof TaskModuleError)) throw err;
    logger.fatal(err.message);
    process.exit(1);
  });

  // Before any executor thread exists: on Linux a thread inherits the nice value of the thread that creates it.
  try {
    setPriority(env.WORKER_NICE);
  } catch (err) {
    logger.warn({ err: (err as Error).message }, 'could not lower CPU priority');
  }

  const known = [...new Set(tasks.catalog.map((entry) => entry.queue))];
  const queues = env.WORKER_QUEUES ?? [...known];
  const unknown = queues.filter((queue) => !known.includes(queue));
  if (unknown.length > 0) {
    logger.warn({ unknown, known }, 'WORKER_QUEUES names queues no task uses');
  }

  const target = redisTargetFrom(env);
  const redis = createRedis(target, 'worker');
  // Says once, not on every retry, that the worker is waiting: a wrong address or a cluster
  // with no live seed node is then visible in the log, and the worker starts when Redis answers.
  const waiting = setTimeout(() => {
    logger.warn(
      { redis: describeTarget(target) },
      'Redis does not answer yet; the worker keeps trying and starts once it does',
    );
  }, REDIS_WAIT_WARNING_MS);
  // Refuse rather than run jobs that an evicting Redis may drop (waits for Redis if it is down).
  const redisProblem = await evictionProblem(redis);
  clearTimeout(waiting);
  if (redisProblem) {
    logger.fatal(`${redisProblem} The worker will not start until it is.`);
    redis.disconnect();
    process.exit(1);
  }
  const backends = [];
  if (tasks.typescript.tasks.length > 0) {
    backends.push(
      threadBackend({
        tasks: tasks.typescript.tasks,
        taskModules: tasks.typescript.entries,
        cwd,
        memoryLimitMb: env.WORKER_EXECUTOR_MEMORY_MB,
      }),
    );
  }
  if (tasks.python.tasks.length > 0) {
    backends.push(
      pythonBackend({ ...python, ...tasks.python, maxResultBytes: env.WORKER_MAX_RESULT_BYTES }),
    );
  }
  const pool = await ExecutorPool.start({
    size: env.WORKER_CONCURRENCY,
    backends,
    maxResultBytes: env.WORKER_MAX_RESULT_BYTES,
  });
  const metrics = createWorkerMetrics({ executors: pool.size });
  const worker = await createWorker({
    redis,
    keys: offloadKeys(env.OFFLOAD_PREFIX),
    queues,
    pool,
    catalog: tasks.catalog,
    logger,
    shutdownGraceMs: env.WORKER_SHUTDOWN_GRACE_MS,
    retention: retentionFrom(env),
    blobs: new FileBlobStore(env.BLOB_DIR),
    maxRunningPerTenant: env.MAX_RUNNING_PER_TENANT,
    onAttemptEnd: metrics.attemptEnded,
  });
  // Metrics are for watching: a worker without them still serves its queues.
  const metricsServer = await serveMetrics(metrics.registry, {
    host: env.WORKER_METRICS_HOST,
    port: env.WORKER_METRICS_PORT,
  }).catch((err: Error) => {
    logger.warn({ err: err.message }, 'metrics not served');
    return undefined;
  });
  metrics.countBusyWith(worker.busyExecutors);
  // Every worker process delivers webhooks beside its task queues (see webhook-sender.ts):
  // the jobs and workflows it sends are read as the API reads them.
  const reader = JobQueues.create({
    redis: target,
    prefix: env.OFFLOAD_PREFIX,
    retention: retentionFrom(env),
    followJobs: false,
  });
  const webhooks = startWebhookSender({
    redis,
    keys: offloadKeys(env.OFFLOAD_PREFIX),
    jobs: reader,
    secrets: env.WEBHOOK_SECRETS,
    retrySchedule: env.WEBHOOK_RETRY_SCHEDULE,
    timeoutMs: env.WEBHOOK_TIMEOUT_MS,
    allowPrivate: env.WEBHOOK_ALLOW_PRIVATE,
    onAttempt: createWebhookMetrics(metrics.registry),
    onError: (err) => logger.warn({ err: err.message }, 'webhook sender error'),
  });
  if (metricsServer) logger.info({ url: metricsServer.url }, 'metrics listening');

  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping');
    metricsServer?.close();
    Promise.all([worker.close(), webhooks.close()])
      .then(() => reader.close())
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

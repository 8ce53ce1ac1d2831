import { hostname } from 'node:os';
import type { CatalogEntry } from '@offload/contract';
import {
  type AttemptOutcome,
  type BlobStore,
  CancelListener,
  type FinishedAttempt,
  HandBack,
  HEARTBEAT_EVERY_MS,
  HistoryRecorder,
  JobFailure,
  type JobRunner,
  liveVersions,
  type OffloadKeys,
  publishCatalog,
  type QueueWorker,
  type RedisClient,
  type Retention,
  type RunningJob,
  readFleet,
  removeHeartbeat,
  startQueueWorker,
  versionKey,
  writeHeartbeat,
} from '@offload/queue';
import type { Logger } from 'pino';
import type { ExecutorPool } from './executor-pool.ts';
import { ExecutionError } from './executor-protocol.ts';

export interface WorkerDeps {
  /** A worker-role connection (createRedis(target, 'worker')). */
  redis: RedisClient;
  keys: OffloadKeys;
  /** Queues this process serves (WORKER_QUEUES). */
  queues: readonly string[];
  pool: ExecutorPool;
  /** The tasks this process runs, as it publishes them to the catalog. */
  catalog: readonly CatalogEntry[];
  logger: Logger;
  /** How long SIGTERM waits for running jobs before handing them back, ms. */
  shutdownGraceMs: number;
  /** How long finished jobs are kept before this worker sweeps them (JOB_RETENTION_*). */
  retention: Retention;
  /** Where binary results go (BLOB_DIR); this worker also deletes those whose retention has ended. */
  blobs: BlobStore;
  /** Most jobs of one tenant running on a queue at once, fleet-wide (MAX_RUNNING_PER_TENANT); 0 = no limit. */
  maxRunningPerTenant: number;
  /** Told when an attempt ends, for metrics; also recorded in the dashboard's history. */
  onAttemptEnd?: (attempt: FinishedAttempt) => void;
}

export interface OffloadWorker {
  readonly id: string;
  /** Executors computing a job right now. */
  busyExecutors(): number;
  /** Stops taking jobs, lets running ones finish within the grace, hands back the rest. */
  close(): Promise<void>;
}

/** Least time between two heartbeats written because a job started or ended, ms. */
const BEAT_ON_CHANGE_MS = 250;
/** How long a job this worker must not run waits before it is offered again, ms (see runnerFor). */
const HAND_BACK_DELAY_MS = 250;
/** How often this worker deletes binary results past retention, ms (more often when retention is shorter). */
const BLOB_SWEEP_EVERY_MS = 60 * 1000;
/** How old the fleet this worker decides hand-backs with may be, ms. */
const FLEET_FRESH_MS = 1000;

interface RunningEntry {
  queue: string;
  task: string;
  startedAt: string;
  /** A cancel arrived while the job was still on its way to an executor. */
  canceled: boolean;
}

/**
 * A worker process's job loop: one BullMQ worker per served queue, all
 * feeding one executor pool. Together they hold at most as many jobs as the
 * pool has executors (see syncConcurrency), so `running` means computing.
 */
export async function createWorker(deps: WorkerDeps): Promise<OffloadWorker> {
  const { redis, keys, pool, logger } = deps;
  const id = `${hostname()}:${process.pid}:${Math.random().toString(36).slice(2, 8)}`;
  const startedAt = new Date().toISOString();
  const running = new Map<string, RunningEntry>();
  let jobsDone = 0;
  let closing = false;
  /** A heartbeat due because a job started or ended (see beatOnChange). */
  let changeBeat: NodeJS.Timeout | null = null;
  let lastChangeBeatAt = 0;

  const history = new HistoryRecorder(redis, keys, (err) =>
    logger.debug({ err: err.message }, 'history not written'),
  );
  const cancels = await CancelListener.start(redis, keys, (jobId) => {
    const entry = running.get(jobId);
    if (!entry) return;
    entry.canceled = true;
    if (pool.stop(jobId, 'canceled')) logger.info({ jobId }, 'job canceled; executor stopped');
  });

  const mine = new Map(deps.catalog.map((entry) => [entry.name, entry.fingerprint]));
  let fleet: { at: number; versions: Promise<Map<string, number>> } | null = null;
  /** Live workers per task version, read at most once per FLEET_FRESH_MS. */
  const versionsLive = (): Promise<Map<string, number>> => {
    if (!fleet || Date.now() - fleet.at > FLEET_FRESH_MS) {
      fleet = { at: Date.now(), versions: readFleet(redis, keys).then(liveVersions) };
    }
    return fleet.versions;
  };

  /**
   * Whether this worker should leave the job to another (DESIGN.md §2, rolling
   * deploys). It does when it lacks the task (workers with other task modules
   * share the queue), and when it runs another version of the task than the one
   * the job was validated against while a live worker runs that version. With
   * none left (the old version is gone), it runs the job, validating the input
   * with its own schema, so no job waits forever for a version that will not return.
   */
  async function belongsElsewhere(job: RunningJob): Promise<string | null> {
    const fingerprint = mine.get(job.task);
    if (fingerprint === undefined) return `this worker does not run task ${job.task}`;
    if (job.fingerprint === undefined || job.fingerprint === fingerprint) return null;
    if (!(await versionsLive()).has(versionKey(job.task, job.fingerprint))) return null;
    return `validated against version ${job.fingerprint} of ${job.task}; this worker runs ${fingerprint}`;
  }

  const runnerFor =
    (queue: string): JobRunner =>
    async (job) => {
      const elsewhere = await belongsElsewhere(job);
      if (elsewhere) {
        logger.debug({ jobId: job.id, task: job.task }, `job handed back: ${elsewhere}`);
        throw new HandBack(elsewhere, HAND_BACK_DELAY_MS);
      }
      const entry: RunningEntry = {
        queue,
        task: job.task,
        startedAt: new Date().toISOString(),
        canceled: false,
      };
      running.set(job.id, entry);
      syncConcurrency();
      beatOnChange();
      const log = logger.child({ jobId: job.id, task: job.task, attempt: job.attempt });
      const ended = (outcome: AttemptOutcome) => {
        const finishedAt = Date.now();
        const startedMs = Date.parse(entry.startedAt);
        const attempt: FinishedAttempt = {
          queue,
          task: job.task,
          outcome,
          runMs: finishedAt - startedMs,
          finishedAt,
          // BullMQ keeps no time for when a retry became runnable: only first attempts have a wait.
          ...(job.attempt === 1 && { waitMs: startedMs - job.queuedAt }),
        };
        deps.onAttemptEnd?.(attempt);
        history.add(attempt);
      };
      try {
        // Marked before the fetch, announced before this runner registered it, or since (the flag).
        if (job.canceled || cancels.wasAnnounced(job.id) || entry.canceled) {
          throw new ExecutionError('canceled', 'Canceled before it started', true);
        }
        log.debug('job started');
        const result = await pool.execute({
          jobId: job.id,
          task: job.task,
          input: job.input,
          timeoutMs: job.timeoutMs,
          onProgress: job.progress,
          onLog: job.log,
        });
        jobsDone++;
        ended('completed');
        log.info('job completed');
        return result;
      } catch (err) {
        if (!(err instanceof ExecutionError)) throw err;
        if (err.code === 'shutdown') {
          log.info('job handed back to its queue');
          throw new HandBack(err.message);
        }
        jobsDone++;
        ended(err.code === 'canceled' ? 'canceled' : 'failed');
        log.warn({ code: err.code, final: err.final }, err.message);
        throw new JobFailure(err.code, err.message, err.final);
      } finally {
        running.delete(job.id);
        syncConcurrency();
        beatOnChange();
      }
    };

  const onError = (err: Error) => logger.warn({ err: err.message }, 'queue worker error');
  const workers: QueueWorker[] = deps.queues.map((queue) =>
    startQueueWorker({
      redis,
      keys,
      queue,
      retention: deps.retention,
      maxRunningPerTenant: deps.maxRunningPerTenant,
      concurrency: pool.size,
      run: runnerFor(queue),
      blobs: deps.blobs,
      onError,
    }),
  );

  /**
   * BullMQ limits each worker on its own; the pool is shared. Each queue may
   * hold what the other queues leave free, so the sum stays at the pool's size
   * (BullMQ's floor of 1 lets an idle queue hold one job more while all are busy).
   */
  function syncConcurrency(): void {
    if (workers.length < 2) return;
    for (const worker of workers) {
      let elsewhere = 0;
      for (const entry of running.values()) if (entry.queue !== worker.queue) elsewhere++;
      worker.setConcurrency(Math.max(1, pool.size - elsewhere));
    }
  }

  const beat = () =>
    writeHeartbeat(redis, keys, {
      id,
      host: hostname(),
      pid: process.pid,
      queues: [...deps.queues],
      tasks: deps.catalog.map((entry) => versionKey(entry.name, entry.fingerprint)),
      concurrency: pool.size,
      running: [...running].map(([jobId, entry]) => ({
        jobId,
        task: entry.task,
        startedAt: entry.startedAt,
      })),
      jobsDone,
      startedAt,
      lastSeenAt: new Date().toISOString(),
    }).catch((err: Error) => logger.debug({ err: err.message }, 'heartbeat not written'));
  // Published before the first job is taken: the API learns the tasks within its next refresh.
  await publishCatalog(redis, keys, deps.catalog);
  await beat();
  const heartbeat = setInterval(beat, HEARTBEAT_EVERY_MS);
  /**
   * A job's start or end is published at once rather than at the next regular
   * beat (up to HEARTBEAT_EVERY_MS later), so the fleet page shows what runs
   * now; at most one extra beat per BEAT_ON_CHANGE_MS however many jobs pass.
   */
  function beatOnChange(): void {
    if (changeBeat || closing) return;
    const wait = Math.max(0, lastChangeBeatAt + BEAT_ON_CHANGE_MS - Date.now());
    changeBeat = setTimeout(() => {
      changeBeat = null;
      lastChangeBeatAt = Date.now();
      void beat();
    }, wait);
  }

  /** Binary results past their job's retention; every worker sweeps, a blob gone already is no error. */
  const blobSweep = setInterval(
    () => {
      deps.blobs
        .deleteExpired(Date.now())
        .catch((err: Error) => logger.warn({ err: err.message }, 'expired blobs not deleted'));
    },
    Math.min(BLOB_SWEEP_EVERY_MS, deps.retention.completedMs),
  );
  blobSweep.unref();

  logger.info({ workerId: id, queues: deps.queues, concurrency: pool.size }, 'worker ready');

  return {
    id,
    busyExecutors: () => running.size,
    async close() {
      if (closing) return;
      closing = true;
      logger.info({ running: running.size, graceMs: deps.shutdownGraceMs }, 'worker draining');
      const grace = setTimeout(() => {
        for (const jobId of running.keys()) pool.stop(jobId, 'shutdown');
      }, deps.shutdownGraceMs);
      await Promise.all(workers.map((worker) => worker.close()));
      clearTimeout(grace);
      clearInterval(heartbeat);
      clearInterval(blobSweep);
      if (changeBeat) clearTimeout(changeBeat);
      cancels.close();
      await pool.close();
      await history.close().catch(() => {});
      await removeHeartbeat(redis, keys, id).catch(() => {});
      logger.info({ jobsDone }, 'worker stopped');
    },
  };
}

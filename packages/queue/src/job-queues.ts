import { type Backoff, isFinal, type JobPage, type JobView } from '@offload/contract';
import { Job, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { type CatalogSnapshot, readCatalog, readCatalogVersion } from './catalog.ts';
import { createRedis, guardRedis } from './connection.ts';
import { FairShare, HELD_DELAY_MS, isHeld } from './fair-share.ts';
import { FinishWatcher } from './finish-watcher.ts';
import { countLiveWorkers, readFleet, type WorkerHeartbeat } from './fleet.ts';
import { type History, readHistory } from './history.ts';
import { submitIdempotently } from './idempotency.ts';
import { JobIds } from './job-ids.ts';
import {
  DEFAULT_RETENTION,
  isWellFormedJobId,
  jobOptionsFor,
  type Retention,
} from './job-options.ts';
import { type JobData, publicState, toJobView } from './job-view.ts';
import { type OffloadKeys, offloadKeys } from './keys.ts';
import { type RateLimit, type RateLimitDecision, takeRateLimit } from './rate-limit.ts';
import { evictionProblem, RedisMisconfiguredError } from './redis-config.ts';
import { forgetOpenJob, type ListQuery, TenantJobs } from './tenant-jobs.ts';

export interface JobQueuesConfig {
  redisUrl: string;
  /** OFFLOAD_PREFIX. */
  prefix: string;
  /** Queues known at start; more are added with useQueues as the catalog names them. */
  queueNames?: readonly string[];
  /** Most unfinished jobs one tenant may have; more throw QueueQuotaExceededError. 0 or unset: no limit. */
  maxOpenJobsPerTenant?: number;
  /** How long finished jobs stay readable (JOB_RETENTION_*); default DEFAULT_RETENTION. */
  retention?: Retention;
  /** Told when a (re)connection finds Redis unsafe for jobs (see redis-config.ts), to say so loudly. */
  onRedisProblem?: (problem: string) => void;
}

export interface SubmitRequest {
  task: string;
  queue: string;
  input: unknown;
  tenant: string;
  /** Hard time limit of one attempt, ms. */
  timeoutMs: number;
  attempts: number;
  backoff: Backoff;
  /** 1 (highest) … 2097152; unset runs in arrival order ahead of every prioritized job. */
  priority?: number;
  /** Wait this long before the job becomes runnable, ms. */
  delayMs?: number;
  /** The catalog version the input was validated against. */
  fingerprint?: string;
}

export type CancelOutcome =
  | { outcome: 'canceled'; view: JobView }
  | { outcome: 'finished'; view: JobView };

/** How long past its retention a removed job's id still answers 410 rather than 404, ms (DESIGN.md §3). */
const EXPIRED_IDS_REMEMBERED_MS = 30 * 24 * 60 * 60 * 1000;

/** Longest close() waits for BullMQ to close gracefully, ms. */
const CLOSE_WITHIN_MS = 2000;

interface CanceledRecord {
  tenant: string;
  view: JobView;
}

/**
 * The producer side of Offload: what the API does with jobs. Fails fast when
 * Redis is unreachable (RedisUnavailableError), so callers can answer 503.
 */
export class JobQueues {
  readonly keys: OffloadKeys;
  private readonly queues = new Map<string, Queue<JobData>>();
  private readonly fairShares = new Map<string, FairShare>();
  private readonly defaultJobOptions: ReturnType<typeof jobOptionsFor>;
  private readonly watcher: FinishWatcher;
  private readonly tenantJobs: TenantJobs;
  /** Why Redis is unsafe for jobs, as last checked (on each connect and each readiness check). */
  private redisProblem: string | null = null;
  private readonly retention: Retention;
  /** Loaded from Redis on first use; forgotten if that fails, so the next call tries again. */
  private jobIds: Promise<JobIds> | null = null;

  private constructor(
    private readonly redis: Redis,
    config: JobQueuesConfig,
  ) {
    this.keys = offloadKeys(config.prefix);
    this.retention = config.retention ?? DEFAULT_RETENTION;
    this.defaultJobOptions = jobOptionsFor(this.retention);
    this.watcher = new FinishWatcher([], config.redisUrl, config.prefix);
    this.useQueues(config.queueNames ?? []);
    this.tenantJobs = new TenantJobs(redis, this.keys, {
      maxOpenJobs: config.maxOpenJobsPerTenant ?? 0,
      indexRetentionMs: this.retention.failedMs,
      viewOf: (id, tenant) => this.getJobView(id, tenant),
    });
    redis.on('ready', () => {
      this.readiness().then(
        ({ redisProblem }) => redisProblem && config.onRedisProblem?.(redisProblem),
        () => {},
      );
    });
  }

  /** Connects lazily: the API starts, and answers 503, while Redis is still down. */
  static create(config: JobQueuesConfig): JobQueues {
    return new JobQueues(createRedis(config.redisUrl, 'api'), config);
  }

  /** Serves these queues too (submit, look up, watch); the catalog names them as workers publish. */
  useQueues(names: Iterable<string>): void {
    for (const name of names) {
      if (this.queues.has(name)) continue;
      const queue = new Queue<JobData>(name, {
        connection: this.redis,
        prefix: this.keys.prefix,
        defaultJobOptions: this.defaultJobOptions,
      });
      queue.on('error', () => {});
      this.queues.set(name, queue);
      this.fairShares.set(name, new FairShare(this.redis, this.keys, name));
      this.watcher.add(name);
    }
  }

  /**
   * Adds the job; throws QueueQuotaExceededError when its tenant has too many
   * unfinished jobs. A job without a delay is held for fair share (see
   * fair-share.ts) and dispatched at once when an executor of its queue is free.
   */
  async submitJob(request: SubmitRequest, givenId?: string): Promise<JobView> {
    this.useQueues([request.queue]);
    const queue = this.queues.get(request.queue) as Queue<JobData>;
    const fairShare = this.fairShares.get(request.queue) as FairShare;
    if (this.redisProblem) throw new RedisMisconfiguredError(this.redisProblem);
    const jobId = givenId ?? (await this.ids()).issue(request.tenant);
    const data: JobData = {
      task: request.task,
      input: request.input,
      tenant: request.tenant,
      timeoutMs: request.timeoutMs,
      ...(request.fingerprint && { fingerprint: request.fingerprint }),
    };
    const held = !request.delayMs;
    const createdAt = Date.now();
    const job = await guardRedis(this.redis, async () => {
      await this.tenantJobs.reserve(request.tenant, jobId);
      try {
        if (held) await fairShare.hold(request.tenant, jobId, createdAt, request.priority);
        return await queue.add(request.task, data, {
          jobId,
          timestamp: createdAt,
          attempts: request.attempts,
          backoff: request.backoff,
          ...(request.priority !== undefined && { priority: request.priority }),
          delay: held ? HELD_DELAY_MS : request.delayMs,
        });
      } catch (err) {
        await Promise.all([
          this.tenantJobs.release(request.tenant, jobId),
          held && fairShare.unhold(request.tenant, jobId, createdAt),
        ]).catch(() => {});
        throw err;
      }
    });
    // Accepted whatever happens now: a dispatch that fails here is made by the workers' next beat.
    if (held) await fairShare.dispatch().catch(() => {});
    return toJobView(job, held ? 'queued' : 'delayed');
  }

  /**
   * submitJob under an Idempotency-Key (see idempotency.ts): `created` is false
   * when an earlier request with the same key and `requestHash` made the job.
   */
  async submitJobOnce(
    request: SubmitRequest,
    key: string,
    requestHash: string,
  ): Promise<{ view: JobView; created: boolean }> {
    const { tenant } = request;
    // Longer than one command: a repeated request may wait up to 2 s for the first one's job.
    return guardRedis(
      this.redis,
      () =>
        submitIdempotently({
          redis: this.redis,
          keys: this.keys,
          tenant,
          key,
          requestHash,
          newJobId: async () => (await this.ids()).issue(tenant),
          create: (jobId) => this.submitJob(request, jobId),
          viewOf: (jobId) => this.getJobView(jobId, tenant),
        }),
      5000,
    );
  }

  /** The tenant's jobs, newest first; throws InvalidCursorError for a cursor it did not issue. */
  async listJobs(tenant: string, query: ListQuery): Promise<JobPage> {
    return guardRedis(this.redis, () => this.tenantJobs.list(tenant, query));
  }

  /** Counts one request of `identity` (an API key) against `limit`, shared by every API process. */
  async takeRateLimit(identity: string, limit: RateLimit): Promise<RateLimitDecision> {
    return guardRedis(this.redis, () => takeRateLimit(this.redis, this.keys, identity, limit));
  }

  /**
   * Calls `onChange` whenever the job may have changed (progress, started,
   * finished, removed) until the returned function is called. One event reader
   * per queue serves every watcher of the process.
   */
  watchJob(id: string, onChange: () => void): () => void {
    return this.watcher.watch(id, onChange);
  }

  /**
   * For an id with no job: true when it was issued to this tenant and its job
   * was removed past retention within the last EXPIRED_IDS_REMEMBERED_MS
   * (answer 410), false when it never was (answer 404).
   */
  async isExpiredJobId(id: string, tenant: string, now = Date.now()): Promise<boolean> {
    const issuedAt = (await this.ids()).issuedAt(id, tenant);
    return (
      issuedAt !== null && now - issuedAt <= this.retention.failedMs + EXPIRED_IDS_REMEMBERED_MS
    );
  }

  /** The job's view, or null when no job of this tenant has that id. */
  async getJobView(id: string, tenant: string): Promise<JobView | null> {
    return (await this.lookup(id, tenant))?.view ?? null;
  }

  /**
   * Long-poll: the view once the job is finished, or after `waitMs`, whichever
   * comes first. Woken by BullMQ's event stream, not by polling Redis.
   */
  async waitForJobView(id: string, tenant: string, waitMs: number): Promise<JobView | null> {
    if (waitMs <= 0) return this.getJobView(id, tenant);
    // Listen before reading, so a finish between the read and the wait is not missed.
    const wait = this.watcher.waitFor(id, waitMs);
    try {
      const view = await this.getJobView(id, tenant);
      if (!view || isFinal(view.state)) return view;
      await wait.done;
      return await this.getJobView(id, tenant);
    } finally {
      wait.cancel();
    }
  }

  /**
   * Records the cancel, then stops the job wherever it is: a queued or delayed
   * job is removed; a running one is killed by the worker that holds it (told
   * over pub/sub); a job whose worker vanished is failed as canceled by
   * whichever worker picks it up next, without running it.
   */
  async cancelJob(id: string, tenant: string): Promise<CancelOutcome | null> {
    return this.cancel(id, tenant);
  }

  /** cancelJob for operators (the dashboard): a job of any tenant, by the same path. */
  async cancelJobAsAdmin(id: string): Promise<CancelOutcome | null> {
    return this.cancel(id, null);
  }

  /** `tenant` null: whichever tenant owns the job. */
  private async cancel(id: string, tenant: string | null): Promise<CancelOutcome | null> {
    const found = await this.lookup(id, tenant);
    if (!found) return null;
    const { job, view } = found;
    if (view.state === 'canceled') return { outcome: 'canceled', view };
    if (view.state === 'completed' || view.state === 'failed') return { outcome: 'finished', view };

    const canceledView: JobView = {
      ...view,
      state: 'canceled',
      error: { code: 'canceled', message: 'Canceled by request' },
      finishedAt: new Date().toISOString(),
    };
    // The owner's API keeps answering for the job, whoever canceled it.
    const record: CanceledRecord = { tenant: tenant ?? job?.data.tenant ?? '', view: canceledView };
    return guardRedis(this.redis, async () => {
      const key = this.keys.canceled(id);
      const set = await this.redis.set(
        key,
        JSON.stringify(record),
        'PX',
        this.retention.failedMs,
        'NX',
      );
      if (set === null) {
        const earlier = await this.redis.get(key);
        return {
          outcome: 'canceled',
          view: earlier ? (JSON.parse(earlier) as CanceledRecord).view : canceledView,
        };
      }
      // Record first, then publish: a worker that takes the job after this point sees the record.
      await this.redis.publish(this.keys.cancelChannel, id);
      // A locked (running) job refuses removal; its worker handles it.
      await job?.remove().catch(() => {});
      if (job && isHeld(job)) {
        await this.fairShares
          .get(job.queueName)
          ?.unhold(job.data.tenant, id, job.timestamp)
          .catch(() => {});
      }
      await forgetOpenJob(this.redis, this.keys, record.tenant, id);
      return { outcome: 'canceled', view: canceledView };
    });
  }

  /**
   * How many workers are alive, and why Redis is unsafe for jobs (null when it
   * is safe). Throws RedisUnavailableError when Redis does not answer.
   */
  async readiness(): Promise<{ workers: number; redisProblem: string | null }> {
    return guardRedis(this.redis, async () => {
      const [workers, redisProblem] = await Promise.all([
        countLiveWorkers(this.redis, this.keys),
        evictionProblem(this.redis),
      ]);
      this.redisProblem = redisProblem;
      return { workers, redisProblem };
    });
  }

  /** The catalog's change counter: cheap to read every second. */
  async catalogVersion(): Promise<string> {
    return guardRedis(this.redis, () => readCatalogVersion(this.redis, this.keys));
  }

  /** Every published task version (see catalog.ts). */
  async readCatalog(): Promise<CatalogSnapshot> {
    return guardRedis(this.redis, () => readCatalog(this.redis, this.keys));
  }

  /** Heartbeats of the live workers. */
  async readFleet(): Promise<WorkerHeartbeat[]> {
    return guardRedis(this.redis, () => readFleet(this.redis, this.keys));
  }

  /** Throughput and latency of the last `hours`, as the workers recorded them. */
  async readHistory(hours: number): Promise<History> {
    return guardRedis(this.redis, () => readHistory(this.redis, this.keys, hours));
  }

  /** Jobs of each queue by BullMQ state (waiting, active, delayed, completed, failed, …). */
  async countJobs(): Promise<{ queue: string; counts: Record<string, number> }[]> {
    return guardRedis(this.redis, () =>
      Promise.all(
        [...this.queues].map(async ([queue, q]) => ({ queue, counts: await q.getJobCounts() })),
      ),
    );
  }

  /** The BullMQ queues themselves, for the dashboard's queue browser (bull-board). */
  bullQueues(): Queue<JobData>[] {
    return [...this.queues.values()];
  }

  /** Closes every connection; bounded in time, since BullMQ's close waits for a Redis that may be gone. */
  async close(): Promise<void> {
    const graceful = Promise.all([
      this.watcher.close(),
      ...[...this.queues.values()].map((queue) => queue.close()),
    ]);
    await Promise.race([
      graceful.catch(() => {}),
      new Promise((r) => setTimeout(r, CLOSE_WITHIN_MS)),
    ]);
    this.watcher.disconnect();
    this.redis.disconnect();
  }

  private ids(): Promise<JobIds> {
    if (!this.jobIds) {
      const loading = guardRedis(this.redis, () => JobIds.load(this.redis, this.keys));
      this.jobIds = loading;
      loading.catch(() => {
        if (this.jobIds === loading) this.jobIds = null;
      });
    }
    return this.jobIds;
  }

  /** The job (while BullMQ still holds it) and its public view. */
  private async lookup(
    id: string,
    tenant: string | null,
  ): Promise<{ job: Job<JobData> | undefined; view: JobView } | null> {
    if (!isWellFormedJobId(id)) return null;
    // An id this tenant was never issued (its HMAC tag says so) reads nothing from Redis.
    if (tenant !== null && (await this.ids()).issuedAt(id, tenant) === null) return null;
    return guardRedis(this.redis, async () => {
      const [job, canceled] = await Promise.all([
        this.findJob(id),
        this.redis.get(this.keys.canceled(id)),
      ]);
      // A recorded cancel wins over whatever BullMQ still says: the API already answered "canceled".
      if (canceled) {
        const record = JSON.parse(canceled) as CanceledRecord;
        return tenant === null || record.tenant === tenant ? { job, view: record.view } : null;
      }
      if (!job || (tenant !== null && job.data.tenant !== tenant)) return null;
      const bullState = await job.getState();
      // The hash was read before the state: a job that finished in between would show its final
      // state with the data of an earlier attempt. A hash read after a final state is final.
      const current =
        bullState === 'completed' || bullState === 'failed'
          ? await Job.fromId<JobData>(this.queues.get(job.queueName) as Queue<JobData>, id)
          : job;
      if (!current) return null;
      const state = publicState(bullState, current.failedReason, isHeld(current));
      return state ? { job: current, view: toJobView(current, state) } : null;
    });
  }

  private async findJob(id: string): Promise<Job<JobData> | undefined> {
    const found = await Promise.all(
      [...this.queues.values()].map((queue) => Job.fromId<JobData>(queue, id)),
    );
    return found.find((job) => job !== undefined);
  }
}

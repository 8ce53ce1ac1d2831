import {
  type Backoff,
  isFinal,
  type JobPage,
  type JobSummary,
  type JobView,
  MAX_DELAY_MS,
} from '@offload/contract';
import { type Job, Queue } from 'bullmq';
import { type BlobRecord, readBlobRecord } from './binary-results.ts';
import { type BlobStore, DEFAULT_BLOB_DIR, FileBlobStore } from './blob-store.ts';
import { type CatalogSnapshot, readCatalog, readCatalogVersion } from './catalog.ts';
import {
  API_COMMAND_TIMEOUT_MS,
  createRedis,
  guardRedis,
  NotReplicatedError,
  type RedisClient,
  RedisOutOfMemoryError,
  type RedisTarget,
  waitForReplicas,
} from './connection.ts';
import { FairShare, HELD_DELAY_MS } from './fair-share.ts';
import { countLiveWorkers, readFleet, type WorkerHeartbeat } from './fleet.ts';
import { type History, readHistory } from './history.ts';
import {
  claimIdempotencyKeys,
  IDEMPOTENCY_POLL_MS,
  IDEMPOTENCY_WAIT_MS,
  IdempotencyConflictError,
  releaseIdempotencyKey,
  submitIdempotently,
} from './idempotency.ts';
import { JobFeed, type JobFinish, type JobSubscription, type JobUpdate } from './job-feed.ts';
import { JobIds } from './job-ids.ts';
import {
  DEFAULT_RETENTION,
  isWellFormedJobId,
  jobOptionsFor,
  type Retention,
} from './job-options.ts';
import {
  type JobData,
  type JobRecord,
  markJobCanceled,
  publicState,
  recordFromFields,
  type StepResults,
  SUMMARY_FIELDS,
  stateFromFields,
  toJobSummary,
  toJobView,
  WEBHOOK_MARK,
  withResult,
} from './job-view.ts';
import { type OffloadKeys, offloadKeys } from './keys.ts';
import { type RateLimit, type RateLimitDecision, takeRateLimit } from './rate-limit.ts';
import { memoryState, RedisMisconfiguredError } from './redis-config.ts';
import { Schedules } from './schedules.ts';
import { type ListQuery, settleJob, TenantJobs } from './tenant-jobs.ts';
import { WebhookDeliveries, webhookState } from './webhook-deliveries.ts';
import { type StepJobs, Workflows } from './workflows.ts';

export interface JobQueuesConfig {
  redis: RedisTarget;
  /** OFFLOAD_PREFIX. */
  prefix: string;
  /** Queues known at start; more are added with useQueues as the catalog names them. */
  queueNames?: readonly string[];
  /** Most unfinished jobs one tenant may have; more throw QueueQuotaExceededError. 0 or unset: no limit. */
  maxOpenJobsPerTenant?: number;
  /**
   * Most bytes of inputs and results one tenant's jobs may hold in Redis until
   * their retention ends; more throw StorageQuotaExceededError. 0 or unset: no limit.
   */
  maxStoredBytesPerTenant?: number;
  /** How long finished jobs stay readable (JOB_RETENTION_*); default DEFAULT_RETENTION. */
  retention?: Retention;
  /**
   * REDIS_MIN_REPLICAS_ACK: with n > 0 a submit returns only once n replicas
   * of each primary it wrote to hold its writes (Redis WAIT), else throws
   * NotReplicatedError after REPLICA_ACK_WAIT_MS. 0 or unset: no wait.
   */
  minReplicasAck?: number;
  /** Where binary results are (BLOB_DIR); default the filesystem store in DEFAULT_BLOB_DIR. */
  blobs?: BlobStore;
  /** Told when a (re)connection finds Redis unsafe for jobs (see redis-config.ts), to say so loudly. */
  onRedisProblem?: (problem: string) => void;
  /**
   * false: this process only reads jobs, never follows them (event streams,
   * long-polls), so it reads no queue's events (the webhook sender). Default true.
   */
  followJobs?: boolean;
}

/** A job of a submitJobs call on its way into BullMQ. */
interface PendingJob {
  request: SubmitRequest;
  id: string;
  /** Held for fair share (see fair-share.ts). */
  held: boolean;
}

export interface SubmitRequest {
  task: string;
  queue: string;
  input: unknown;
  /** Size of the input's JSON, bytes, when the caller measured it already; what the job holds in its tenant's storage quota. */
  inputBytes?: number;
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
  /** The workflow this job is a step of: its worker nudges it when the job ends. */
  workflow?: string;
  /** Where the results its input's `$result` placeholders name are (see JobData.results). */
  results?: StepResults;
  /** Where the job's end is POSTed (checked by the API: public address, tenant has a secret). */
  webhook?: { url: string };
}

export type CancelOutcome =
  | { outcome: 'canceled'; view: JobView }
  | { outcome: 'finished'; view: JobView };

/** How long past its retention a removed job's id still answers 410 rather than 404, ms (DESIGN.md §3). */
const EXPIRED_IDS_REMEMBERED_MS = 30 * 24 * 60 * 60 * 1000;

/** How long a write refused for memory keeps /readyz saying so while Redis stays nearly full, ms. */
const OUT_OF_MEMORY_REMEMBERED_MS = 10_000;

/**
 * Longest a submit waits for REDIS_MIN_REPLICAS_ACK replicas, ms: within the
 * API's command timeout, which would otherwise end the WAIT as if Redis were down.
 */
export const REPLICA_ACK_WAIT_MS = API_COMMAND_TIMEOUT_MS / 2;

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
export class JobQueues implements StepJobs {
  readonly keys: OffloadKeys;
  /** Workflows of jobs (see workflows.ts); the API process starts their advancing. */
  readonly workflows: Workflows;
  /** Every tenant's schedules (see schedules.ts). */
  readonly schedules: Schedules;
  private readonly queues = new Map<string, Queue<JobData>>();
  private readonly fairShares = new Map<string, FairShare>();
  private readonly defaultJobOptions: ReturnType<typeof jobOptionsFor>;
  private readonly feed: JobFeed;
  private readonly followJobs: boolean;
  private readonly tenantJobs: TenantJobs;
  /** The webhook deliveries of jobs and workflows (see webhook-deliveries.ts). */
  readonly webhooks: WebhookDeliveries;
  /** Why Redis is unsafe for jobs, as last checked (on each connect and each readiness check). */
  private redisProblem: string | null = null;
  /** When Redis last refused a submit for memory, ms since epoch. */
  private refusedForMemoryAt = 0;
  private readonly retention: Retention;
  private readonly minReplicasAck: number;
  /** Where binary results are (BLOB_DIR); the API serves them from here. */
  readonly blobs: BlobStore;
  /** Loaded from Redis on first use; forgotten if that fails, so the next call tries again. */
  private jobIds: Promise<JobIds> | null = null;

  private constructor(
    private readonly redis: RedisClient,
    config: JobQueuesConfig,
  ) {
    this.keys = offloadKeys(config.prefix);
    this.schedules = new Schedules(redis, this.keys);
    this.retention = config.retention ?? DEFAULT_RETENTION;
    this.minReplicasAck = config.minReplicasAck ?? 0;
    this.blobs = config.blobs ?? new FileBlobStore(DEFAULT_BLOB_DIR);
    this.defaultJobOptions = jobOptionsFor(this.retention);
    this.webhooks = new WebhookDeliveries(redis, this.keys, this.retention);
    this.followJobs = config.followJobs ?? true;
    this.feed = new JobFeed(config.redis, this.keys, {
      read: async (id) => {
        const found = await this.read(id, null, { result: true });
        return found && withResult(found.summary, found.result);
      },
      readFinished: (id, queue, finish) => this.readFinished(id, queue, finish),
    });
    this.useQueues(config.queueNames ?? []);
    this.tenantJobs = new TenantJobs(redis, this.keys, {
      maxOpenJobs: config.maxOpenJobsPerTenant ?? 0,
      maxStoredBytes: config.maxStoredBytesPerTenant ?? 0,
      failedRetentionMs: this.retention.failedMs,
      summaryOf: async (id, tenant) =>
        (await this.read(id, tenant, { result: false }))?.summary ?? null,
    });
    this.workflows = new Workflows(redis, this.keys, this, this.retention, config.redis);
    redis.on('ready', () => {
      this.readiness().then(
        ({ redisProblem }) => redisProblem && config.onRedisProblem?.(redisProblem),
        () => {},
      );
    });
  }

  /** Connects lazily: the API starts, and answers 503, while Redis is still down. */
  static create(config: JobQueuesConfig): JobQueues {
    return new JobQueues(createRedis(config.redis, 'api'), config);
  }

  /** Serves these queues too (submit, look up, watch); the catalog names them as workers publish. */
  useQueues(names: Iterable<string>): void {
    for (const name of names) {
      if (this.queues.has(name)) continue;
      const queue = new Queue<JobData>(name, {
        connection: this.redis,
        prefix: this.keys.queuePrefix(name),
        defaultJobOptions: this.defaultJobOptions,
      });
      queue.on('error', () => {});
      this.queues.set(name, queue);
      this.fairShares.set(name, new FairShare(this.redis, this.keys, name));
      if (this.followJobs) this.feed.add(name);
    }
  }

  /**
   * Adds the job; throws QueueQuotaExceededError when its tenant has too many
   * unfinished jobs. A job without a delay goes to BullMQ's wait list, or is
   * held for fair share while other tenants' jobs wait (see fair-share.ts).
   */
  async submitJob(request: SubmitRequest, givenId?: string): Promise<JobView> {
    return (await this.submitJobs([request], [givenId]))[0] as JobView;
  }

  /**
   * Adds jobs of one tenant, all of them or none (a quota they would pass
   * refuses them all), in a fixed number of round trips to Redis whatever
   * their number: the quota check beside fair share's admission (one call
   * per queue), then BullMQ's add (one pipeline per queue).
   */
  async submitJobs(
    requests: readonly SubmitRequest[],
    givenIds: readonly (string | undefined)[] = [],
  ): Promise<JobView[]> {
    const tenant = (requests[0] as SubmitRequest).tenant;
    if (requests.some((request) => request.tenant !== tenant)) {
      throw new Error('submitJobs takes the jobs of one tenant');
    }
    this.useQueues([...new Set(requests.map((request) => request.queue))]);
    if (this.redisProblem) throw new RedisMisconfiguredError(this.redisProblem);
    const ids = await this.ids();
    const createdAt = Date.now();
    const jobs: PendingJob[] = requests.map((request, i) => ({
      request,
      id: givenIds[i] ?? ids.issue(tenant),
      held: false,
    }));
    const byQueue = new Map<string, PendingJob[]>();
    for (const job of jobs) {
      const group = byQueue.get(job.request.queue);
      if (group) group.push(job);
      else byQueue.set(job.request.queue, [job]);
    }
    const fairShareOf = (queue: string) => this.fairShares.get(queue) as FairShare;
    const added = await guardRedis(this.redis, async () => {
      // At once, one round trip: jobs held but refused by the quota are unheld below.
      const [reserved, ...admitted] = await Promise.allSettled([
        this.tenantJobs.reserve(
          tenant,
          jobs.map(({ id, request }) => ({
            id,
            inputBytes: request.inputBytes ?? Buffer.byteLength(JSON.stringify(request.input)),
          })),
        ),
        ...[...byQueue].map(async ([queue, group]) => {
          const undelayed = group.filter((job) => !job.request.delayMs);
          if (undelayed.length === 0) return;
          const held = await fairShareOf(queue).admit(
            tenant,
            undelayed.map(({ id, request }) => ({ id, createdAt, priority: request.priority })),
          );
          undelayed.forEach((job, i) => {
            job.held = held[i] ?? false;
          });
        }),
      ]);
      const unhold = () =>
        Promise.all(
          jobs
            .filter((job) => job.held)
            .map((job) => fairShareOf(job.request.queue).unhold(tenant, job.id, createdAt)),
        );
      if (reserved.status === 'rejected') {
        await unhold().catch(() => {});
        throw reserved.reason;
      }
      try {
        const refused = admitted.find((answer) => answer.status === 'rejected');
        if (refused) throw refused.reason;
        // Before the jobs: a job that exists has its delivery (one for a job not added finds none, and ends).
        await this.webhooks.add(
          jobs.flatMap(({ id, request }) =>
            request.webhook
              ? [
                  {
                    kind: 'job' as const,
                    id,
                    queue: request.queue,
                    tenant,
                    url: request.webhook.url,
                  },
                ]
              : [],
          ),
          createdAt,
        );
        return await Promise.all(
          [...byQueue].map(([queue, group]) => this.addJobs(queue, group, createdAt)),
        );
      } catch (err) {
        await Promise.all([
          this.tenantJobs.release(
            tenant,
            jobs.map((job) => job.id),
          ),
          unhold(),
        ]).catch(() => {});
        throw err;
      }
    }).catch((err: unknown) => {
      if (err instanceof RedisOutOfMemoryError) this.refusedForMemoryAt = Date.now();
      throw err;
    });
    if (this.minReplicasAck > 0) await this.replicated(tenant, jobs);
    // Accepted whatever happens now: a refill that fails here is made by the workers' next beat.
    await Promise.all(
      [...byQueue]
        .filter(([, group]) => group.some((job) => job.held))
        .map(([queue]) =>
          fairShareOf(queue)
            .refill()
            .catch(() => {}),
        ),
    );
    const views = new Map(added.flat().map((job) => [job.id as string, job] as const));
    return jobs.map(({ id, request }) =>
      toJobView(views.get(id) as Job<JobData>, request.delayMs ? 'delayed' : 'queued'),
    );
  }

  /**
   * Waits until REDIS_MIN_REPLICAS_ACK replicas hold the submit's writes: on
   * the primary of each queue the jobs went to, and on the tenant's (its job
   * index, quota and Idempotency-Keys). WAIT covers every earlier write of the
   * connection to that primary, so one per primary is enough.
   */
  private async replicated(tenant: string, jobs: readonly PendingJob[]): Promise<void> {
    const slotKeys = [
      this.keys.tenantJobs(tenant),
      ...new Map(
        jobs.map((job) => [job.request.queue, this.keys.bullKey(job.request.queue, job.id)]),
      ).values(),
    ];
    const wanted = this.minReplicasAck;
    const acked = await guardRedis(
      this.redis,
      () =>
        Promise.all(
          slotKeys.map((key) => waitForReplicas(this.redis, key, wanted, REPLICA_ACK_WAIT_MS)),
        ),
      REPLICA_ACK_WAIT_MS + 2 * API_COMMAND_TIMEOUT_MS,
    );
    const fewest = Math.min(...acked);
    if (fewest < wanted) {
      const ids = jobs.map((job) => job.id).join(', ');
      throw new NotReplicatedError(
        `Redis took the job (${ids}) but only ${fewest} of the ${wanted} replicas REDIS_MIN_REPLICAS_ACK asks for confirmed it within ${REPLICA_ACK_WAIT_MS} ms; a failover now could lose it. Look it up, or retry with the same Idempotency-Key`,
      );
    }
  }

  /** BullMQ's add for jobs of one queue: one call, or one pipeline for several. */
  private async addJobs(
    queueName: string,
    jobs: readonly PendingJob[],
    createdAt: number,
  ): Promise<Job<JobData>[]> {
    const queue = this.queues.get(queueName) as Queue<JobData>;
    const bullJobs = jobs.map(({ id, request, held }) => ({
      name: request.task,
      // The tenant first: fair-share.ts reads it from the start of the data's JSON.
      data: {
        tenant: request.tenant,
        task: request.task,
        input: request.input,
        timeoutMs: request.timeoutMs,
        ...(request.fingerprint && { fingerprint: request.fingerprint }),
        ...(request.workflow && { workflow: request.workflow }),
        ...(request.results && { results: request.results }),
      } satisfies JobData,
      opts: {
        jobId: id,
        timestamp: createdAt,
        attempts: request.attempts,
        backoff: request.backoff,
        ...(request.priority !== undefined && { priority: request.priority }),
        ...(request.webhook && WEBHOOK_MARK),
        ...(held ? { delay: HELD_DELAY_MS } : request.delayMs ? { delay: request.delayMs } : {}),
      },
    }));
    if (bullJobs.length === 1) {
      const [{ name, data, opts }] = bullJobs as [(typeof bullJobs)[number]];
      return [await queue.add(name, data, opts)];
    }
    return queue.addBulk(bullJobs);
  }

  /**
   * A batch of one tenant's jobs, all or none, each with or without an
   * Idempotency-Key: a key used before with the same request answers that
   * job (`created` false); with another request, the batch fails with
   * IdempotencyConflictError naming the item, and adds nothing. The keys are
   * claimed in one round trip, then the new jobs are added by submitJobs.
   */
  async submitBatch(
    items: readonly {
      request: SubmitRequest;
      idempotency?: { key: string; requestHash: string };
    }[],
  ): Promise<{ view: JobView; created: boolean }[]> {
    const tenant = (items[0] as (typeof items)[number]).request.tenant;
    const ids = await this.ids();
    const jobIds = items.map(() => ids.issue(tenant));
    const keyed = items.flatMap((item, i) =>
      item.idempotency
        ? [{ i, key: item.idempotency.key, requestHash: item.idempotency.requestHash }]
        : [],
    );
    return guardRedis(
      this.redis,
      async () => {
        const earlier = await claimIdempotencyKeys(
          this.redis,
          this.keys,
          tenant,
          keyed.map(({ i, key, requestHash }) => ({
            key,
            record: { jobId: jobIds[i] as string, requestHash },
          })),
        );
        const claimed = keyed.filter((_, k) => earlier[k] === null);
        const releaseClaims = () =>
          Promise.all(
            claimed.map(({ i, key }) =>
              releaseIdempotencyKey(this.redis, this.keys, tenant, key, jobIds[i] as string),
            ),
          ).catch(() => {});
        const results: ({ view: JobView; created: boolean } | undefined)[] = items.map(
          () => undefined,
        );
        try {
          const repeats = keyed.flatMap(({ i, requestHash }, k) => {
            const record = earlier[k];
            if (!record) return [];
            if (record.requestHash !== requestHash) {
              throw new IdempotencyConflictError(
                `jobs.${i}: this idempotencyKey was used with another request`,
              );
            }
            return [{ i, jobId: record.jobId }];
          });
          // The earlier jobs read at once, not one round trip each.
          const earlierViews = await Promise.all(
            repeats.map(({ jobId }) => this.viewOnceCreated(jobId, tenant)),
          );
          for (const [r, { i }] of repeats.entries()) {
            const view = earlierViews[r];
            if (!view) {
              throw new IdempotencyConflictError(
                `jobs.${i}: a request with this idempotencyKey is still in progress`,
              );
            }
            results[i] = { view, created: false };
          }
          const fresh = items.flatMap((item, i) => (results[i] ? [] : [{ i, item }]));
          if (fresh.length > 0) {
            const views = await this.submitJobs(
              fresh.map(({ item }) => item.request),
              fresh.map(({ i }) => jobIds[i]),
            );
            fresh.forEach(({ i }, f) => {
              results[i] = { view: views[f] as JobView, created: true };
            });
          }
        } catch (err) {
          await releaseClaims();
          throw err;
        }
        return results as { view: JobView; created: boolean }[];
      },
      5000,
    );
  }

  /** The job's view once it exists (an earlier request with the same key may still be adding it), or null after IDEMPOTENCY_WAIT_MS. */
  private async viewOnceCreated(id: string, tenant: string): Promise<JobView | null> {
    const deadline = Date.now() + IDEMPOTENCY_WAIT_MS;
    for (;;) {
      const view = await this.getJobView(id, tenant);
      if (view || Date.now() > deadline) return view;
      await new Promise((resolve) => setTimeout(resolve, IDEMPOTENCY_POLL_MS));
    }
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
   * Follows the job: `onUpdate` hears of its view after every change (with
   * `everyChange` false, at least once it finishes; null once it is gone) until
   * `stop`. Every follower of one job in this process shares one read per
   * change (see job-feed.ts). Null when no job of this tenant has that id, and
   * then nothing is followed.
   */
  async watchJob(
    id: string,
    tenant: string,
    onUpdate: (update: JobUpdate) => void,
    { everyChange = true } = {},
  ): Promise<{ view: JobView; subscription: JobSubscription } | null> {
    if (!(await this.mayOwn(id, tenant))) return null;
    const subscription = this.feed.subscribe(id, onUpdate, { everyChange });
    try {
      const view = await subscription.current();
      if (view) return { view, subscription };
    } catch (err) {
      subscription.stop();
      throw err;
    }
    subscription.stop();
    return null;
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

  /** Fresh job ids of a tenant, for jobs added later (a workflow's steps). */
  async issueIds(tenant: string, count: number): Promise<string[]> {
    const ids = await this.ids();
    return Array.from({ length: count }, () => ids.issue(tenant));
  }

  /** Holds a tenant's bytes besides its jobs' (a workflow's record) in its storage quota (see TenantJobs.hold). */
  holdBytes(tenant: string, entry: string, bytes: number, until: number): Promise<void> {
    return guardRedis(this.redis, () => this.tenantJobs.hold(tenant, entry, bytes, until));
  }

  /** Whether this id (of a job or a workflow) was issued to `tenant`: no Redis read. */
  wasIssued(id: string, tenant: string): Promise<boolean> {
    return this.mayOwn(id, tenant);
  }

  /** The job's view, or null when no job of this tenant has that id. */
  async getJobView(
    id: string,
    tenant: string,
    /** `result: false` leaves the result unread (`result` null): a result may be megabytes. */
    options: { result: boolean } = { result: true },
  ): Promise<JobView | null> {
    const found = await this.read(id, tenant, options);
    return found && withResult(found.summary, found.result);
  }

  /**
   * The job's view and, for a completed job whose task returned bytes, where
   * they are in the blob store (null for a JSON result); null when no job of
   * this tenant (`null`: of anyone, for operators) has that id.
   */
  async getJobResult(
    id: string,
    tenant: string | null,
  ): Promise<{ view: JobView; blob: BlobRecord | null } | null> {
    const found = await this.read(id, tenant, { result: true });
    if (!found) return null;
    const view = withResult(found.summary, found.result);
    const queue = found.queue;
    if (view.state !== 'completed' || !queue) return { view, blob: null };
    const blob = await guardRedis(this.redis, () => readBlobRecord(this.redis, queue.toKey(id)));
    return { view, blob };
  }

  /**
   * Long-poll: the view once the job is finished, or after `waitMs`, or when
   * `signal` aborts (the client left), whichever comes first. Woken by the
   * job's feed, whose reads every follower of the job shares. Whether the job
   * is finished already is told by its fields (one HMGET); its state is read
   * only for the answer.
   */
  async waitForJobView(
    id: string,
    tenant: string,
    waitMs: number,
    signal?: AbortSignal,
  ): Promise<JobView | null> {
    if (waitMs <= 0 || !(await this.mayOwn(id, tenant))) return this.getJobView(id, tenant);
    let wake = () => {};
    const woken = new Promise<void>((resolve) => {
      wake = resolve;
    });
    // Followed before the fields are read: a finish between the two still wakes this wait.
    const subscription = this.feed.subscribe(
      id,
      (update) => {
        if ('error' in update || !update.view || isFinal(update.view.state)) wake();
      },
      { everyChange: false },
    );
    const timer = setTimeout(wake, waitMs);
    signal?.addEventListener('abort', wake, { once: true });
    try {
      const found = await guardRedis(this.redis, () => this.findRecord(id));
      // Gone, canceled or finished: answered at once, from a read.
      if (found && !found.record.finishedOn && !found.record.canceled) await woken;
      return await guardRedis(this.redis, () => subscription.current());
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', wake);
      subscription.stop();
    }
  }

  /**
   * Records the cancel, then stops the job wherever it is: a queued or delayed
   * job is removed; a running one is killed by the worker that holds it (told
   * over pub/sub); a job whose worker vanished is failed as canceled by
   * whichever worker picks it up next, without running it.
   */
  async cancelJob(
    id: string,
    tenant: string,
    /** The canceled view's error message: why (its workflow says which step failed). */
    reason = 'Canceled by request',
  ): Promise<CancelOutcome | null> {
    return this.cancel(id, tenant, reason);
  }

  /** cancelJob for operators (the dashboard): a job of any tenant, by the same path. */
  async cancelJobAsAdmin(id: string): Promise<CancelOutcome | null> {
    return this.cancel(id, null, 'Canceled by request');
  }

  /** `tenant` null: whichever tenant owns the job. */
  private async cancel(
    id: string,
    tenant: string | null,
    reason: string,
  ): Promise<CancelOutcome | null> {
    const found = await this.read(id, tenant, { result: true });
    if (!found) return null;
    const view = withResult(found.summary, found.result);
    if (view.state === 'canceled') return { outcome: 'canceled', view };
    if (view.state === 'completed' || view.state === 'failed') return { outcome: 'finished', view };

    const canceledView: JobView = {
      ...view,
      state: 'canceled',
      error: { code: 'canceled', message: reason },
      finishedAt: new Date().toISOString(),
    };
    return guardRedis(this.redis, async () => {
      // The owner's API keeps answering for the job, whoever canceled it.
      const owner = tenant ?? (found.queue ? await this.ownerOf(found.queue, id) : '');
      const record: CanceledRecord = { tenant: owner, view: canceledView };
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
      // Record, mark, then publish: a worker that takes the job after this point sees the record,
      // and a read that finds the mark in the job's fields reads the record.
      if (found.queue) await markJobCanceled(this.redis, found.queue.toKey(id));
      await this.redis.publish(this.keys.cancelChannel, id);
      // A locked (running) job refuses removal; its worker handles it, and its data stays held.
      const removed = found.queue ? (await found.queue.remove(id).catch(() => 0)) === 1 : true;
      if (found.queue && found.record?.held) {
        await this.fairShares
          .get(found.queue.name)
          ?.unhold(owner, id, found.record.timestamp)
          .catch(() => {});
      }
      await settleJob(this.redis, this.keys, record.tenant, id, {
        resultBytes: 0,
        until: Date.now() + this.retention.failedMs,
        ...(removed && { heldBytes: Buffer.byteLength(JSON.stringify(record)) }),
      });
      // A running job's worker wakes it too once it stops the job; the cancel is its end already.
      if (view.webhook) await this.webhooks.wake(id).catch(() => {});
      return { outcome: 'canceled', view: canceledView };
    });
  }

  /**
   * How many workers are alive, why Redis is unsafe for jobs (null when it is
   * safe) and why it refuses writes (maxmemory reached; null while it has
   * room). Throws RedisUnavailableError when Redis does not answer.
   */
  async readiness(): Promise<{
    workers: number;
    redisProblem: string | null;
    outOfMemory: string | null;
  }> {
    return guardRedis(this.redis, async () => {
      const [workers, memory] = await Promise.all([
        countLiveWorkers(this.redis, this.keys),
        memoryState(this.redis, Date.now() - this.refusedForMemoryAt < OUT_OF_MEMORY_REMEMBERED_MS),
      ]);
      this.redisProblem = memory.evictionProblem;
      return { workers, redisProblem: memory.evictionProblem, outOfMemory: memory.outOfMemory };
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

  /**
   * Jobs of each queue by BullMQ state (waiting, active, delayed, completed,
   * failed, …), with the jobs held for fair share counted apart as `held`:
   * BullMQ keeps them as delayed jobs due in HELD_DELAY_MS, past any delay a
   * client may ask for (MAX_DELAY_MS), so they are the delayed set's entries
   * scored beyond that. Two reads per queue, sent at once.
   */
  async countJobs(): Promise<{ queue: string; counts: Record<string, number> }[]> {
    // BullMQ scores a delayed job by its due time × 0x1000 (getDelayedScore.lua).
    const heldFrom = (Date.now() + MAX_DELAY_MS + 1) * 0x1000;
    return guardRedis(this.redis, () =>
      Promise.all(
        [...this.queues].map(async ([queue, q]) => {
          const [counts, held] = await Promise.all([
            q.getJobCounts(),
            this.redis.zcount(this.keys.bullKey(queue, 'delayed'), heldFrom, '+inf'),
          ]);
          return {
            queue,
            counts: { ...counts, delayed: Math.max(0, (counts.delayed ?? 0) - held), held },
          };
        }),
      ),
    );
  }

  /** The BullMQ queues themselves, for the dashboard's queue browser (bull-board). */
  bullQueues(): Queue<JobData>[] {
    return [...this.queues.values()];
  }

  /** Closes every connection; bounded in time, since BullMQ's close waits for a Redis that may be gone. */
  async close(): Promise<void> {
    this.workflows.stop();
    const graceful = Promise.all([
      this.feed.close(),
      this.webhooks.close(),
      ...[...this.queues.values()].map((queue) => queue.close()),
    ]);
    await Promise.race([
      graceful.catch(() => {}),
      new Promise((r) => setTimeout(r, CLOSE_WITHIN_MS)),
    ]);
    this.feed.disconnect();
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

  /** Whether `tenant` was issued this id, so that its job, if any, is the tenant's: no Redis read. */
  private async mayOwn(id: string, tenant: string | null): Promise<boolean> {
    if (!isWellFormedJobId(id)) return false;
    return tenant === null || (await this.ids()).issuedAt(id, tenant) !== null;
  }

  /**
   * The one read of a job: a few fields of its hash (never the input; the
   * result only when asked and completed) and its state. Null when no job of
   * this tenant (`null`: of anyone) has that id. `queue` is unset for a
   * canceled job's record. A queued job costs one HMGET: its fields settle
   * its state (stateFromFields), and its cancel record is read only when its
   * hash is gone or marked canceled.
   */
  private async read(
    id: string,
    tenant: string | null,
    options: { result: boolean },
  ): Promise<{
    summary: JobSummary;
    result: unknown;
    queue?: Queue<JobData>;
    record?: JobRecord;
  } | null> {
    // An id this tenant was never issued (its HMAC tag says so) reads nothing from Redis; one it
    // was issued names a job of that tenant, so the job's own data need not be read to check.
    if (!(await this.mayOwn(id, tenant))) return null;
    return guardRedis(this.redis, async () => {
      const found = await this.findRecord(id);
      const queue = found?.queue;
      // A recorded cancel wins over whatever BullMQ still says: the API already answered "canceled".
      if (!found || found.record.canceled) {
        const canceled = await this.redis.get(this.keys.canceled(id));
        const summary = canceled && canceledSummary(canceled, tenant);
        if (summary) {
          return {
            summary: await this.withWebhook(summary),
            result: null,
            ...(queue && { queue }),
          };
        }
        if (canceled || !found || !queue) return null;
      }
      const bullState = stateFromFields(found.record) ?? (await found.queue.getJobState(id));
      // The fields were read before the state: a job that finished in between would show its
      // final state with the fields of an earlier attempt. Fields read once it had finished are final.
      const finished = bullState === 'completed' || bullState === 'failed';
      const record =
        finished && !found.record.finishedOn ? await this.recordIn(found.queue, id) : found.record;
      if (!record) return null;
      const state = publicState(bullState, record.failedReason, record.held);
      if (!state) return null;
      const result =
        state === 'completed' && options.result
          ? parseResult(await this.redis.hget(found.queue.toKey(id), 'returnvalue'))
          : null;
      return {
        summary: await this.withWebhook(toJobSummary(record, state)),
        result,
        queue: found.queue,
        record,
      };
    });
  }

  /**
   * The view of a job that `finish`, an event of `queueName`, has just
   * finished, exactly as read() gives it, from one HMGET instead of read's
   * three round trips (each queue's HMGET, the state, the result): the event
   * gives the state and the result; the job's summary fields are read, a
   * cancel's mark among them. The fields are still needed: BullMQ's finishedOn is the worker's
   * clock when it sent the finish, which the event does not carry (its stream
   * id is Redis' clock when it was written, a few ms later or, across hosts,
   * anything), and a read started before the job ran holds no startedAt or
   * attempt of the last run. Falls back to read() when the fields are not
   * those of this finish (the job gone, or retried since: no finishedOn) and
   * for a canceled job (its record says what it is).
   */
  private async readFinished(
    id: string,
    queueName: string,
    finish: JobFinish,
  ): Promise<JobView | null> {
    const queue = this.queues.get(queueName);
    const fallback = async () => {
      const found = await this.read(id, null, { result: true });
      return found && withResult(found.summary, found.result);
    };
    if (!queue || !(await this.mayOwn(id, null))) return fallback();
    const record = await guardRedis(this.redis, () => this.recordIn(queue, id));
    // BullMQ sets finishedOn (and a failure's reason) as it writes the event, and clears it on a retry.
    if (!record?.finishedOn || record.canceled) return fallback();
    if (finish.event === 'failed' && record.failedReason !== finish.failedReason) return fallback();
    const state = publicState(finish.event, record.failedReason, record.held);
    if (!state) return fallback();
    return withResult(
      await this.withWebhook(toJobSummary(record, state)),
      state === 'completed' && finish.event === 'completed' ? finish.result : null,
    );
  }

  /** The summary with its webhook's state as its delivery says; one read, for a job with a webhook only. */
  private async withWebhook(summary: JobSummary): Promise<JobSummary> {
    if (!summary.webhook) return summary;
    const delivery = await this.webhooks.read(summary.id);
    return delivery ? { ...summary, webhook: webhookState(delivery) } : summary;
  }

  private async findRecord(
    id: string,
  ): Promise<{ queue: Queue<JobData>; record: JobRecord } | undefined> {
    const found = await Promise.all(
      [...this.queues.values()].map(async (queue) => {
        const record = await this.recordIn(queue, id);
        return record && { queue, record };
      }),
    );
    return found.find((f) => f !== null) ?? undefined;
  }

  private async recordIn(queue: Queue<JobData>, id: string): Promise<JobRecord | null> {
    return recordFromFields(id, await this.redis.hmget(queue.toKey(id), ...SUMMARY_FIELDS));
  }

  /** The tenant a job's data names: read only to record an operator's cancel. */
  private async ownerOf(queue: Queue<JobData>, id: string): Promise<string> {
    const data = await this.redis.hget(queue.toKey(id), 'data');
    return data ? (JSON.parse(data) as JobData).tenant : '';
  }
}

/** A canceled job's summary from its record; null when `tenant` (null: anyone's) does not own it. */
function canceledSummary(text: string, tenant: string | null): JobSummary | null {
  const record = JSON.parse(text) as CanceledRecord;
  if (tenant !== null && record.tenant !== tenant) return null;
  const { result: _, ...summary } = record.view;
  return summary;
}

/** A stored result as BullMQ's own reader parses it: JSON, or the raw text when it is not. */
function parseResult(text: string | null): unknown {
  if (text === null) return null;
  try {
    return JSON.parse(text) ?? null;
  } catch {
    return text;
  }
}

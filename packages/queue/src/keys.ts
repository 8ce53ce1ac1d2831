/**
 * Every Redis key Offload keeps, BullMQ's included, starts with OFFLOAD_PREFIX
 * and carries a Redis Cluster hash tag naming what it belongs to:
 * - a queue, `{q:<queue>}`: BullMQ's keys of that queue (its prefix is
 *   queuePrefix(queue)) and fair share's, which its scripts touch together;
 * - a tenant, `{t:<tenant>}`: its job index, quota, stored bytes and
 *   Idempotency-Keys, which its scripts touch together;
 * - a workflow, `{w:<id>}`: its record and the lock of whoever advances it;
 * - the fleet, the catalog, the history, the workflows due: one tag each, for the few commands
 *   that read several of their keys at once;
 * - the webhook deliveries, `{webhooks}`: BullMQ's keys of their own queue
 *   (webhook-deliveries.ts), one delivery per job or workflow with a webhook;
 * - the schedules, `{sched}`: every schedule of every tenant, so that one
 *   script claims a firing against the due index (see schedules.ts). They are
 *   few (API_MAX_SCHEDULES_PER_TENANT each) and live on one shard.
 * So different queues and tenants spread over a cluster's shards, and no
 * script, transaction or pipeline crosses slots. Keys read or written alone
 * (a rate-limit window, a canceled job's record, a workflow step's pointer,
 * the id secret) carry none.
 * On one Redis the tags change nothing.
 */
export interface OffloadKeys {
  prefix: string;
  /** BullMQ's prefix for one queue: its keys are `<queuePrefix>:<queue>:…`, all in the queue's slot. */
  queuePrefix(queue: string): string;
  /** One of BullMQ's keys of a queue: `events`, `completed`, a job id (its hash), `<id>:logs`… */
  bullKey(queue: string, name: string): string;
  /** String: the JobView of a canceled job, kept for the failed-job retention window. */
  canceled(jobId: string): string;
  /** Pub/sub channel: job ids to cancel; every worker listens. */
  cancelChannel: string;
  /** Sorted set: worker id → heartbeat expiry (ms since epoch). */
  fleet: string;
  /** String: one worker's latest heartbeat, JSON, expiring with it. */
  heartbeat(workerId: string): string;
  /** Sorted set: a tenant's job ids by creation time (ms), for listing; an entry leaves when its job's retention ends. */
  tenantJobs(tenant: string): string;
  /** Sorted set: a tenant's job ids not yet known to be finished, for the queued-jobs quota. */
  tenantOpenJobs(tenant: string): string;
  /**
   * Hash: job id → bytes of its input and result held in Redis; field `total`
   * their sum, `limit` the tenant's budget as the API last set it, `expires`
   * the expiry set on the tenant's keys (0 while persistent), `released` when
   * ended entries were last released (see tenant-jobs.ts).
   */
  tenantStored(tenant: string): string;
  /**
   * Sorted set: finished job id → when its retention ends (ms since epoch); a
   * held entry (a workflow's record) → the same, +inf while it is running.
   */
  tenantHeldUntil(tenant: string): string;
  /** String: the job an Idempotency-Key of a tenant stands for (key given as its sha256, hex). */
  idempotency(tenant: string, keyHash: string): string;
  /** Prefix of the strings counting one API key's (its sha256 prefix) requests, one per rate-limit window (`:<window number>`). */
  rateLimit(identity: string): string;
  /** Hash: throughput and latency of one minute (minutes since epoch), see history.ts. */
  history(minute: number): string;
  /** Hash: one field per published task version (`name fingerprint`) → its catalog entry, JSON. */
  catalog: string;
  /** String: a counter bumped whenever a new task version is published. */
  catalogVersion: string;
  /** String: the secret that signs job ids (see job-ids.ts), created once per deployment. */
  idSecret: string;
  /** Sorted set: every schedule's id → its next firing (ms since epoch). */
  scheduleDue: string;
  /** Sorted set: `<scheduleId> <firedAt>` of firings claimed whose job is not yet known to exist → when claimed (ms). */
  schedulePending: string;
  /** Hash: one schedule (tenant, task, input, options, timing, createdAt, lastError). */
  schedule(id: string): string;
  /** Sorted set: job ids a schedule made → the firing each stands for (ms), latest kept. */
  scheduleJobs(id: string): string;
  /** Sorted set: a tenant's schedule ids → when created (ms), for listing and its limit. */
  tenantSchedules(tenant: string): string;
  /** BullMQ's prefix of the webhook deliveries queue: its keys are `<webhooksPrefix>:deliveries:…`. */
  webhooksPrefix: string;
  /** Hash: a queue's fair-share state: `lane` (the tenant whose jobs go straight to the wait list), `cap` and `capUntil` (MAX_RUNNING_PER_TENANT as live workers publish it), `sequence`, `reconciled` (see fair-share.ts). */
  fairState(queue: string): string;
  /** Sorted set: a tenant's held jobs of a queue (`createdAt:jobId`), by priority then arrival. */
  heldJobs(queue: string, tenant: string): string;
  /** Set: tenants with held jobs on a queue. */
  heldTenants(queue: string): string;
  /**
   * Hash: a workflow's record: `tenant`, `createdAt` (ms), `onStepFailure`,
   * `plan` (JSON: each step's job id, needs and job request), `step:<id>` per
   * step started or ended without running, `done:<id>` per step whose job was
   * seen finished (its view without the result), `cancel`, `state`, `finishedAt`
   * (see workflows.ts).
   */
  workflow(id: string): string;
  /** String: the token of the process advancing a workflow, expiring (see workflows.ts). */
  workflowLock(id: string): string;
  /** Sorted set: unfinished workflow ids → when to advance them next (ms since epoch). */
  workflowsDue: string;
  /** Pub/sub channel: ids of workflows a step of which has just ended; every API process listens. */
  workflowsNudgeChannel: string;
  /** String: the workflow a step's job id belongs to, for a step that has no job yet (blocked). */
  workflowStep(jobId: string): string;
  /** Sorted set: `jobId:tenant` of jobs dispatched or running on a queue → when they were counted (ms). */
  runningJobs(queue: string): string;
  /** Hash: tenant → how many of its jobs runningJobs holds. */
  runningCounts(queue: string): string;
}

export function offloadKeys(prefix: string): OffloadKeys {
  const queue = (name: string) => `${prefix}:{q:${name}}`;
  const tenant = (name: string) => `${prefix}:{t:${name}}`;
  return {
    prefix,
    queuePrefix: queue,
    bullKey: (name, key) => `${queue(name)}:${name}:${key}`,
    canceled: (jobId) => `${prefix}:canceled:${jobId}`,
    cancelChannel: `${prefix}:cancel`,
    fleet: `${prefix}:{fleet}`,
    heartbeat: (workerId) => `${prefix}:{fleet}:${workerId}`,
    tenantJobs: (name) => `${tenant(name)}:jobs`,
    tenantOpenJobs: (name) => `${tenant(name)}:open`,
    tenantStored: (name) => `${tenant(name)}:stored`,
    tenantHeldUntil: (name) => `${tenant(name)}:held-until`,
    idempotency: (name, keyHash) => `${tenant(name)}:idempotency:${keyHash}`,
    rateLimit: (identity) => `${prefix}:rate:${identity}`,
    history: (minute) => `${prefix}:{history}:${minute}`,
    catalog: `${prefix}:{catalog}`,
    catalogVersion: `${prefix}:{catalog}:version`,
    idSecret: `${prefix}:id-secret`,
    scheduleDue: `${prefix}:{sched}:due`,
    schedulePending: `${prefix}:{sched}:pending`,
    schedule: (id) => `${prefix}:{sched}:s:${id}`,
    scheduleJobs: (id) => `${prefix}:{sched}:s:${id}:jobs`,
    tenantSchedules: (name) => `${prefix}:{sched}:tenant:${name}`,
    webhooksPrefix: `${prefix}:{webhooks}`,
    fairState: (name) => `${queue(name)}:fair`,
    heldJobs: (name, tenantName) => `${queue(name)}:fair:held:${tenantName}`,
    heldTenants: (name) => `${queue(name)}:fair:tenants`,
    workflow: (id) => `${prefix}:{w:${id}}`,
    workflowLock: (id) => `${prefix}:{w:${id}}:lock`,
    workflowsDue: `${prefix}:{workflows}:due`,
    workflowsNudgeChannel: `${prefix}:workflows:nudge`,
    workflowStep: (jobId) => `${prefix}:step:${jobId}`,
    runningJobs: (name) => `${queue(name)}:fair:running`,
    runningCounts: (name) => `${queue(name)}:fair:counts`,
  };
}

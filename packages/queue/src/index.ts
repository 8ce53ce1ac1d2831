export { type BinaryOutput, type BlobRecord, blobResponse } from './binary-results.ts';
export {
  type BlobStore,
  blobExpiry,
  blobKey,
  DEFAULT_BLOB_DIR,
  FileBlobStore,
} from './blob-store.ts';
export { CancelListener } from './cancel-listener.ts';
export {
  type CatalogSnapshot,
  liveVersions,
  type PublishedEntry,
  publishCatalog,
  taskInfos,
  versionKey,
} from './catalog.ts';
export {
  createRedis,
  isCluster,
  isRedisOutOfMemory,
  isRedisUnavailable,
  NotReplicatedError,
  type RedisClient,
  type RedisRole,
  type RedisTarget,
} from './connection.ts';
export { parseEnv, redisTargetFrom, retentionFrom, sharedEnvShape } from './env-shape.ts';
export { JobFailure } from './failure.ts';
export {
  HEARTBEAT_EVERY_MS,
  HEARTBEAT_TTL_MS,
  readFleet,
  removeHeartbeat,
  type WorkerHeartbeat,
  writeHeartbeat,
} from './fleet.ts';
export {
  type AttemptOutcome,
  type FinishedAttempt,
  HISTORY_TTL_MS,
  type History,
  type HistoryPoint,
  HistoryRecorder,
  type HistorySeries,
  LATENCY_BOUNDS_MS,
} from './history.ts';
export { IdempotencyConflictError } from './idempotency.ts';
export type { JobSubscription, JobUpdate } from './job-feed.ts';
export { DEFAULT_RETENTION, type Retention } from './job-options.ts';
export {
  type CancelOutcome,
  JobQueues,
  type JobQueuesConfig,
  type SubmitRequest,
} from './job-queues.ts';
export type { JobData } from './job-view.ts';
export { type OffloadKeys, offloadKeys } from './keys.ts';
export { LOG_REDACT } from './log-redact.ts';
export {
  HandBack,
  type JobResult,
  type JobRunner,
  type QueueWorker,
  type RunningJob,
  startQueueWorker,
} from './queue-worker.ts';
export type { RateLimit, RateLimitDecision } from './rate-limit.ts';
export { evictionProblem, RedisMisconfiguredError } from './redis-config.ts';
export {
  firstFiring,
  nextFiring,
  type ScheduleTiming,
  timingErrors,
} from './schedule-timing.ts';
export { FIRING_TICK_MS, firingKey, PENDING_RETRY_MS, Scheduler } from './scheduler.ts';
export {
  type Firing,
  RECENT_JOBS_KEPT,
  ScheduleQuotaExceededError,
  type ScheduleRecord,
  Schedules,
  type StoredSchedule,
  toScheduleView,
} from './schedules.ts';
export {
  InvalidCursorError,
  type ListQuery,
  QueueQuotaExceededError,
  StorageQuotaExceededError,
} from './tenant-jobs.ts';
export { nonPublicRange, RefusedAddressError, webhookUrlProblem } from './webhook-address.ts';
export {
  DELIVERIES_QUEUE,
  type DeliveryAttempt,
  type DeliveryRecord,
  WebhookDeliveries,
} from './webhook-deliveries.ts';
export { webhookEnvShape } from './webhook-env.ts';
export { type DeliveryOutcome, startWebhookSender } from './webhook-sender.ts';
export {
  type RunningWorkflow,
  WORKFLOW_RECHECK_MS,
  type WorkflowDetail,
  type WorkflowRequest,
  type WorkflowStep,
  Workflows,
} from './workflows.ts';

import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import {
  createRedis,
  FileBlobStore,
  isRedisUnavailable,
  JobQueues,
  offloadKeys,
  publishCatalog,
  type RedisTarget,
  type Retention,
} from '@offload/queue';
import { catalogEntryOf, type TaskRegistry } from '@offload/tasks';
import { pino } from 'pino';
import { type AppDeps, createApp } from '../../apps/api/src/app.ts';
import { loadApiEnv } from '../../apps/api/src/env.ts';
import { startScheduler } from '../../apps/api/src/schedule-firing.ts';
import { TaskCatalog } from '../../apps/api/src/task-catalog.ts';
import { webhookPolicyFrom } from '../../apps/api/src/webhook-requests.ts';

const defaults = loadApiEnv({});
const STREAM_DEFAULTS: AppDeps['streams'] = {
  perTenant: defaults.API_MAX_STREAMS_PER_TENANT,
  total: defaults.API_MAX_STREAMS,
  maxLifetimeMs: defaults.API_STREAM_MAX_S * 1000,
};

const SCHEDULE_DEFAULTS: AppDeps['schedules'] = {
  maxPerTenant: defaults.API_MAX_SCHEDULES_PER_TENANT,
  minIntervalMs: defaults.API_SCHEDULE_MIN_INTERVAL_MS,
};

export interface TestApi {
  url: string;
  jobs: JobQueues;
  app: ReturnType<typeof createApp>;
  close(): Promise<void>;
}

/**
 * Publishes a registry's tasks to the catalog, as a worker running them does
 * at start: for API tests that need tasks but no worker.
 */
export async function publishTasks(target: RedisTarget, prefix: string, registry: TaskRegistry) {
  const redis = createRedis(target, 'worker');
  try {
    await publishCatalog(redis, offloadKeys(prefix), registry.list().map(catalogEntryOf));
  } finally {
    redis.disconnect();
  }
}

/**
 * The API on a real HTTP port, built the way apps/api/src/index.ts builds it:
 * with no task code, reading the catalog from Redis. `registry`: tasks to
 * publish first, as if workers running them had started.
 */
export async function startApi(options: {
  redis: RedisTarget;
  prefix: string;
  registry?: TaskRegistry;
  listen?: boolean;
  /** API_KEYS; unset: open development mode (tenant `dev`). */
  apiKeys?: AppDeps['apiKeys'];
  /** Default: no rate limit. */
  rateLimit?: AppDeps['rateLimit'];
  maxJsonDepth?: number;
  /** Default: no quota. */
  maxOpenJobsPerTenant?: number;
  /** REDIS_MIN_REPLICAS_ACK; default 0. */
  minReplicasAck?: number;
  /** Default: no storage quota. */
  maxStoredBytesPerTenant?: number;
  /** Default: 64 KiB, API_MAX_INPUT_BYTES' default. */
  maxInputBytes?: number;
  /** Default: 64 KiB. */
  maxBodyBytes?: number;
  /** Default: a silent logger. */
  logger?: AppDeps['logger'];
  retention?: Retention;
  /** BLOB_DIR; default its default (.data/blobs from the repository root, as worker processes find it). */
  blobDir?: string;
  /** Default: API_MAX_STREAMS_PER_TENANT, API_MAX_STREAMS and API_STREAM_MAX_S's defaults. */
  streams?: Partial<AppDeps['streams']>;
  /** Advance workflows, as apps/api/src/index.ts does; default false (its polling would count in other tests' Redis commands). */
  workflows?: boolean;
  /** Default: API_MAX_SCHEDULES_PER_TENANT and API_SCHEDULE_MIN_INTERVAL_MS's defaults. */
  schedules?: Partial<AppDeps['schedules']>;
  /** Run the firing loop, as every API process does; default false. */
  fireSchedules?: boolean;
  /** WEBHOOK_SECRETS and WEBHOOK_ALLOW_PRIVATE, as the API's environment gives them; default: no tenant may ask for webhooks. */
  webhookEnv?: Record<string, string>;
}): Promise<TestApi> {
  if (options.registry) await publishTasks(options.redis, options.prefix, options.registry);
  const jobs = JobQueues.create({
    redis: options.redis,
    prefix: options.prefix,
    maxOpenJobsPerTenant: options.maxOpenJobsPerTenant ?? 0,
    minReplicasAck: options.minReplicasAck ?? 0,
    maxStoredBytesPerTenant: options.maxStoredBytesPerTenant ?? 0,
    ...(options.retention && { retention: options.retention }),
    ...(options.blobDir && { blobs: new FileBlobStore(options.blobDir) }),
  });
  const catalog = new TaskCatalog(jobs, pino({ level: 'silent' })).start();
  if (options.workflows) {
    jobs.workflows.start((err) => {
      if (!isRedisUnavailable(err)) throw err;
    });
  }
  // As a running API has after its first refresh: the published tasks and their queues known.
  await catalog.list().catch(() => {});
  const app = createApp({
    jobs,
    catalog,
    logger: options.logger ?? pino({ level: 'silent' }),
    maxBodyBytes: options.maxBodyBytes ?? 64 * 1024,
    maxInputBytes: options.maxInputBytes ?? 64 * 1024,
    apiKeys: options.apiKeys ?? null,
    maxJsonDepth: options.maxJsonDepth ?? 32,
    rateLimit: options.rateLimit ?? { limit: 0, windowMs: 60_000 },
    streams: { ...STREAM_DEFAULTS, ...options.streams },
    schedules: { ...SCHEDULE_DEFAULTS, ...options.schedules },
    ...(options.webhookEnv && { webhooks: webhookPolicyFrom(loadApiEnv(options.webhookEnv)) }),
  });
  const scheduler = options.fireSchedules
    ? startScheduler({
        jobs,
        catalog,
        logger: pino({ level: 'silent' }),
        maxInputBytes: options.maxInputBytes ?? 64 * 1024,
      })
    : null;
  if (options.listen === false) {
    return {
      url: '',
      jobs,
      app,
      close: async () => {
        await scheduler?.close();
        catalog.close();
        await jobs.close();
      },
    };
  }
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const s = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, () => resolve(s));
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    jobs,
    app,
    close: async () => {
      (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
      await new Promise((resolve) => server.close(resolve));
      await scheduler?.close();
      catalog.close();
      await jobs.close();
    },
  };
}

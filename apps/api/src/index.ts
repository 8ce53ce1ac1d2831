import { serve } from '@hono/node-server';
import {
  FileBlobStore,
  isRedisUnavailable,
  JobQueues,
  LOG_REDACT,
  redisTargetFrom,
  retentionFrom,
} from '@offload/queue';
import { pino } from 'pino';
import { createApp } from './app.ts';
import { loadApiEnv } from './env.ts';
import { startScheduler } from './schedule-firing.ts';
import { TaskCatalog } from './task-catalog.ts';
import { webhookPolicyFrom } from './webhook-requests.ts';

const env = loadApiEnv();
const logger = pino({ name: 'api', level: env.LOG_LEVEL, redact: LOG_REDACT });
const jobs = JobQueues.create({
  redis: redisTargetFrom(env),
  prefix: env.OFFLOAD_PREFIX,
  maxOpenJobsPerTenant: env.API_MAX_QUEUED_PER_TENANT,
  minReplicasAck: env.REDIS_MIN_REPLICAS_ACK,
  maxStoredBytesPerTenant: env.API_MAX_STORED_BYTES_PER_TENANT,
  retention: retentionFrom(env),
  blobs: new FileBlobStore(env.BLOB_DIR),
  onRedisProblem: (problem) =>
    logger.error(`${problem} Until then /readyz answers 503 and submits are refused.`),
});
const catalog = new TaskCatalog(jobs, logger).start();
// Every API process advances workflows; a lock per workflow keeps it to one at a time.
jobs.workflows.start((err) => {
  if (!isRedisUnavailable(err)) logger.error({ err }, 'advancing workflows failed');
});
const app = createApp({
  jobs,
  catalog,
  logger,
  apiKeys: env.API_KEYS ?? null,
  maxBodyBytes: env.API_MAX_BODY_BYTES,
  maxInputBytes: env.API_MAX_INPUT_BYTES,
  maxJsonDepth: env.API_MAX_JSON_DEPTH,
  rateLimit: { limit: env.API_RATE_LIMIT, windowMs: env.API_RATE_WINDOW_MS },
  streams: {
    perTenant: env.API_MAX_STREAMS_PER_TENANT,
    total: env.API_MAX_STREAMS,
    maxLifetimeMs: env.API_STREAM_MAX_S * 1000,
  },
  schedules: {
    maxPerTenant: env.API_MAX_SCHEDULES_PER_TENANT,
    minIntervalMs: env.API_SCHEDULE_MIN_INTERVAL_MS,
  },
  webhooks: webhookPolicyFrom(env),
});
const scheduler = startScheduler({
  jobs,
  catalog,
  logger,
  maxInputBytes: env.API_MAX_INPUT_BYTES,
});
if (!env.API_KEYS) {
  logger.warn(
    'API_KEYS is unset: open development mode, every request is served without a key as tenant "dev". Set API_KEYS=tenant:key,… before exposing this API.',
  );
}

const server = serve(
  {
    fetch: app.fetch,
    hostname: env.HOST,
    port: env.PORT,
    serverOptions: {
      headersTimeout: env.API_HEADERS_TIMEOUT_MS,
      requestTimeout: env.API_REQUEST_TIMEOUT_MS,
      keepAliveTimeout: env.API_KEEP_ALIVE_TIMEOUT_MS,
      // Node enforces the two timeouts above only when it sweeps its connections, every
      // 30 s by default: a slow client would be held up to 30 s past its deadline.
      connectionsCheckingInterval: Math.min(1000, Math.ceil(env.API_HEADERS_TIMEOUT_MS / 4)),
    },
  },
  (info) => {
    logger.info({ url: `http://${env.HOST}:${info.port}` }, 'api listening');
  },
);
// Past the cap, Node closes each new connection as it arrives; open ones are still served.
if (env.API_MAX_CONNECTIONS > 0) server.maxConnections = env.API_MAX_CONNECTIONS;

let stopping = false;
const stop = (signal: NodeJS.Signals) => {
  if (stopping) return;
  stopping = true;
  logger.info({ signal }, 'stopping');
  catalog.close();
  server.close(() => {
    scheduler
      .close()
      .then(() => jobs.close())
      .finally(() => process.exit(0));
  });
  // Long-polls hold connections open for up to a minute; do not wait for them.
  setTimeout(() => process.exit(0), 2000).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

import { serve } from '@hono/node-server';
import {
  FileBlobStore,
  JobQueues,
  LOG_REDACT,
  redisTargetFrom,
  retentionFrom,
} from '@offload/queue';
import { pino } from 'pino';
import { createDashboard } from './app.ts';
import { loadDashboardEnv } from './env.ts';

const env = (() => {
  try {
    return loadDashboardEnv();
  } catch (err) {
    // The variable and what is wrong with it, without a stack trace around them.
    console.error((err as Error).message);
    process.exit(1);
  }
})();
const logger = pino({ name: 'dashboard', level: env.LOG_LEVEL, redact: LOG_REDACT });
const admin =
  env.ADMIN_USER && env.ADMIN_PASSWORD
    ? { user: env.ADMIN_USER, password: env.ADMIN_PASSWORD }
    : null;
if (!admin) {
  logger.warn(
    'ADMIN_USER and ADMIN_PASSWORD are not set: the dashboard is OPEN to anyone who reaches its port, ' +
      'and can cancel and remove jobs. Set both before exposing it (they are required when NODE_ENV=production).',
  );
}
const jobs = JobQueues.create({
  redis: redisTargetFrom(env),
  prefix: env.OFFLOAD_PREFIX,
  retention: retentionFrom(env),
  blobs: new FileBlobStore(env.BLOB_DIR),
});
const app = createDashboard({
  jobs,
  logger,
  admin,
  loginThrottle: {
    maxFailures: env.DASHBOARD_LOGIN_MAX_FAILURES,
    windowS: env.DASHBOARD_LOGIN_WINDOW_S,
  },
});

const server = serve({ fetch: app.fetch, hostname: env.HOST, port: env.DASHBOARD_PORT }, (info) => {
  logger.info({ url: `http://${env.HOST}:${info.port}` }, 'dashboard listening');
});

let stopping = false;
const stop = (signal: NodeJS.Signals) => {
  if (stopping) return;
  stopping = true;
  logger.info({ signal }, 'stopping');
  server.close(() => {
    jobs.close().finally(() => process.exit(0));
  });
  setTimeout(() => process.exit(0), 2000).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

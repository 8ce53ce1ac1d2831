import { join } from 'node:path';
import { concurrently } from 'concurrently';
import { chooseRedis, NoRedisError } from './choose-redis.ts';

/**
 * `npm start`: the API, one worker and the dashboard on this machine, their logs prefixed,
 * Ctrl-C stopping all. With REDIS_URL unset and no Redis on 127.0.0.1:6379, a
 * private redis-server is started with its data under .data/redis.
 */
const root = join(import.meta.dirname, '..');

/** A Redis Cluster named by REDIS_CLUSTER_NODES is used as it is: every process reads that variable. */
const clusterNodes = process.env.REDIS_CLUSTER_NODES;
let redis: Awaited<ReturnType<typeof chooseRedis>> | null = null;
if (clusterNodes) {
  console.log(`[start] using the Redis Cluster at ${clusterNodes}`);
} else {
  try {
    redis = await chooseRedis({
      redisUrl: process.env.REDIS_URL,
      port: 6379,
      dataDir: join(root, '.data'),
    });
  } catch (err) {
    if (!(err instanceof NoRedisError)) throw err;
    console.error(`[start] ${err.message}`);
    process.exit(1);
  }
  if (redis.owned) {
    console.log(`[start] started a private Redis at ${redis.url} (data and log in .data/redis)`);
  } else {
    const shown = new URL(redis.url);
    if (shown.password) shown.password = '***';
    console.log(`[start] using the Redis at ${shown.href}`);
  }
}

const env = { ...process.env, ...(redis && { REDIS_URL: redis.url }) };
const node = `"${process.execPath}" --import tsx`;
const { result } = concurrently(
  [
    { name: 'api', command: `${node} apps/api/src/index.ts`, env, cwd: root },
    { name: 'worker', command: `${node} apps/worker/src/index.ts`, env, cwd: root },
    { name: 'dashboard', command: `${node} apps/dashboard/src/index.ts`, env, cwd: root },
  ],
  { prefix: '[{name}]', killOthersOn: ['failure'], handleInput: false },
);

// Ctrl-C reaches every process; concurrently waits for them, then the private Redis stops last.
const code = await result.then(
  () => 0,
  () => 1,
);
await redis?.owned?.stop();
process.exit(code);

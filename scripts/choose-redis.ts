import { join } from 'node:path';
import {
  hasRedisServer,
  type PrivateRedis,
  redisAnswers,
  startRedisServer,
} from './redis-server.ts';

export const NO_REDIS_MESSAGE =
  'No Redis answers on 127.0.0.1:6379 and redis-server is not installed: ' +
  'install it (Debian/Ubuntu: sudo apt-get install redis-server; macOS: brew install redis), ' +
  'or run `COMPOSE_FILE=docker-compose.yml:docker-compose.dev.yml docker compose up -d redis` ' +
  'and set REDIS_URL=redis://:offload@127.0.0.1:6379.';

export class NoRedisError extends Error {}

/**
 * The Redis `npm start` uses: REDIS_URL when set; else the one on
 * 127.0.0.1:`port` when it answers; else a private redis-server on that port,
 * AOF on, data under `dataDir`. Throws NoRedisError when none can be had.
 */
export async function chooseRedis(options: {
  redisUrl: string | undefined;
  port: number;
  dataDir: string;
}): Promise<{ url: string; owned?: PrivateRedis }> {
  if (options.redisUrl) return { url: options.redisUrl };
  if (await redisAnswers('127.0.0.1', options.port)) {
    return { url: `redis://127.0.0.1:${options.port}` };
  }
  if (!hasRedisServer()) throw new NoRedisError(NO_REDIS_MESSAGE);
  const owned = await startRedisServer({
    dir: join(options.dataDir, 'redis'),
    port: options.port,
    appendOnly: true,
    logFile: 'redis.log',
  });
  return { url: owned.url, owned };
}

import type { RedisTarget } from '@offload/queue';
import { inject } from 'vitest';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The Redis of this test run: one server, or a Redis Cluster (see global-redis.ts, global-cluster.ts). */
    redisTarget: RedisTarget;
  }
}

/** The Redis of this test run, as every Offload process takes it. */
export function testRedis(): RedisTarget {
  return inject('redisTarget');
}

/** For the few tests that need one server by URL (they do not run against a cluster). */
export function testRedisUrl(): string {
  const target = testRedis();
  if (!('url' in target)) throw new Error('this test needs a single Redis server, not a cluster');
  return target.url;
}

/** The environment that points an Offload process at `target` (DESIGN.md §7). */
export function redisEnv(target: RedisTarget = testRedis()): Record<string, string> {
  if ('url' in target) return { REDIS_URL: target.url };
  return {
    REDIS_CLUSTER_NODES: target.clusterNodes.map(({ host, port }) => `${host}:${port}`).join(','),
    ...(target.password && { REDIS_PASSWORD: target.password }),
  };
}

import type { Redis } from 'ioredis';

/**
 * Offload keeps every accepted job in Redis, so a Redis that may evict keys
 * under memory pressure can silently drop jobs (BullMQ only prints a warning).
 * Read through INFO, which managed Redis services allow even when CONFIG is
 * disabled. Answers a one-line explanation, or null when the policy is safe.
 */
export async function evictionProblem(redis: Redis): Promise<string | null> {
  const info = await redis.info('memory');
  const policy = /^maxmemory_policy:(\S+)/m.exec(info)?.[1];
  if (policy === undefined || policy === 'noeviction') return null;
  return (
    `Redis maxmemory-policy is "${policy}": under memory pressure it would silently drop jobs. ` +
    'Set it to "noeviction" (redis-cli CONFIG SET maxmemory-policy noeviction, and in redis.conf).'
  );
}

/** Raised instead of accepting a job that an evicting Redis might lose. */
export class RedisMisconfiguredError extends Error {
  override readonly name = 'RedisMisconfiguredError';
}

import type { RedisClient } from './connection.ts';

/**
 * Offload keeps every accepted job in Redis, so a Redis that may evict keys
 * under memory pressure can silently drop jobs (BullMQ only prints a warning).
 * Read through INFO, which managed Redis services allow even when CONFIG is
 * disabled. Answers a one-line explanation, or null when the policy is safe.
 */
export async function evictionProblem(redis: RedisClient): Promise<string | null> {
  return (await memoryState(redis)).evictionProblem;
}

export interface MemoryState {
  /** Why the eviction policy is unsafe for jobs; null when it is `noeviction`. */
  evictionProblem: string | null;
  /** Why Redis refuses writes (maxmemory reached); null while it has room. */
  outOfMemory: string | null;
}

/**
 * Share of maxmemory past which a Redis that refused a write moments ago still
 * counts as full: a submit's own request (up to API_MAX_BODY_BYTES, held in
 * Redis' query buffer) can be what takes it over, so between requests it may
 * read just under its limit while every submit is refused.
 */
const NEARLY_FULL = 0.9;

/**
 * The eviction policy and the memory use against maxmemory, from one INFO
 * read. `refusedRecently`: a write was refused for memory moments ago.
 */
export async function memoryState(
  redis: RedisClient,
  refusedRecently = false,
): Promise<MemoryState> {
  const info = await redis.info('memory');
  const used = Number(/^used_memory:(\d+)/m.exec(info)?.[1] ?? 0);
  const max = Number(/^maxmemory:(\d+)/m.exec(info)?.[1] ?? 0);
  const full = max > 0 && (used >= max || (refusedRecently && used >= NEARLY_FULL * max));
  return {
    evictionProblem: evictionProblemIn(info),
    outOfMemory: full
      ? `Redis is out of memory: ${used} of maxmemory ${max} bytes used; it refuses new jobs until finished ones expire or maxmemory is raised`
      : null,
  };
}

function evictionProblemIn(info: string): string | null {
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

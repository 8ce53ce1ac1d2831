import type { RedisClient } from './connection.ts';
import type { OffloadKeys } from './keys.ts';

export interface RateLimit {
  /** Requests allowed per window. */
  limit: number;
  /** Length of a window, ms. */
  windowMs: number;
}

export interface RateLimitDecision {
  allowed: boolean;
  /** Requests left in the current window. */
  remaining: number;
  /** Until the current window ends, ms. */
  resetMs: number;
}

/**
 * How long a window's counter outlives the window, ms: API processes whose
 * clocks differ by less than this still count a late request of theirs in
 * a counter that has not expired under it.
 */
const COUNTER_GRACE_MS = 5_000;

/**
 * A fixed window per identity, counted in Redis so every API process agrees.
 * Windows are aligned to the clock (window n covers [n × windowMs, (n + 1) ×
 * windowMs)) and each has its own counter, so a request costs Redis one INCR:
 * no script, no TTL read (the window's end is known). The window's first
 * request gives its counter an expiry; should a process die between the two
 * commands, the counter merely outlives its window, which no later request reads.
 */
export async function takeRateLimit(
  redis: RedisClient,
  keys: OffloadKeys,
  identity: string,
  { limit, windowMs }: RateLimit,
  now = Date.now(),
): Promise<RateLimitDecision> {
  const window = Math.floor(now / windowMs);
  const key = `${keys.rateLimit(identity)}:${window}`;
  const resetMs = (window + 1) * windowMs - now;
  const count = await redis.incr(key);
  if (count === 1) await redis.pexpire(key, resetMs + COUNTER_GRACE_MS);
  return { allowed: count <= limit, remaining: Math.max(0, limit - count), resetMs };
}

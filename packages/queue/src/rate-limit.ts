import type { RedisClient } from './connection.ts';
import type { OffloadKeys } from './keys.ts';
import { luaScript } from './lua-script.ts';

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
 * A fixed window per identity, counted in Redis so every API process agrees.
 * The window opens with the identity's first request and lasts `windowMs`; one
 * script keeps count and expiry together (a crash between INCR and PEXPIRE
 * would otherwise leave a counter that never resets).
 */
const TAKE = `
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
`;

const take = luaScript('take_rate', 1, TAKE);

/** Counts one request of `identity` and says whether it fits the limit. */
export async function takeRateLimit(
  redis: RedisClient,
  keys: OffloadKeys,
  identity: string,
  { limit, windowMs }: RateLimit,
): Promise<RateLimitDecision> {
  const [count, ttl] = (await take(redis, [keys.rateLimit(identity)], [windowMs])) as [
    number,
    number,
  ];
  return { allowed: count <= limit, remaining: Math.max(0, limit - count), resetMs: ttl };
}

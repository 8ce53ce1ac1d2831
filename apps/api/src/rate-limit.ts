import { ApiError } from '@offload/problem';
import type { JobQueues, RateLimit } from '@offload/queue';
import type { MiddlewareHandler } from 'hono';
import type { Caller } from './auth.ts';

/**
 * Per-key request rate limit, counted in Redis so that every API process
 * shares one count. Answers 429 `rate_limited` with `Retry-After` (seconds)
 * once a key has used its window; every answer carries `RateLimit-Limit`,
 * `RateLimit-Remaining` and `RateLimit-Reset` (seconds). Callers without a key
 * (open development mode) are not limited.
 */
export function rateLimit(
  jobs: JobQueues,
  limit: RateLimit,
): MiddlewareHandler<{ Variables: { caller: Caller } }> {
  return async function limitRate(c, next) {
    const { keyId } = c.get('caller');
    if (keyId === null || limit.limit === 0) return next();
    const decision = await jobs.takeRateLimit(keyId, limit);
    const headers = {
      'ratelimit-limit': String(limit.limit),
      'ratelimit-remaining': String(decision.remaining),
      'ratelimit-reset': String(Math.ceil(decision.resetMs / 1000)),
    };
    if (!decision.allowed) {
      throw new ApiError(
        'rate_limited',
        `At most ${limit.limit} requests per ${limit.windowMs / 1000} s per API key`,
        undefined,
        { ...headers, 'retry-after': String(Math.max(1, Math.ceil(decision.resetMs / 1000))) },
      );
    }
    await next();
    for (const [name, value] of Object.entries(headers)) c.res.headers.set(name, value);
  };
}

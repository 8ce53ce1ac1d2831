import { afterAll, describe, expect, it } from 'vitest';
import { testPrefix } from '../../../tests/support/processes.ts';
import { testRedis } from '../../../tests/support/redis-url.ts';
import { createRedis } from '../src/connection.ts';
import { offloadKeys } from '../src/keys.ts';
import { takeRateLimit } from '../src/rate-limit.ts';

const redis = createRedis(testRedis(), 'worker');
afterAll(() => redis.quit());

describe('rate limit', () => {
  const limit = { limit: 3, windowMs: 60_000 };
  const windowStart = Date.UTC(2026, 0, 1, 12, 0, 0);

  it('allows `limit` requests per clock-aligned window and says when the window ends', async () => {
    const keys = offloadKeys(testPrefix());
    const take = (now: number) => takeRateLimit(redis, keys, 'key-a', limit, now);
    expect(await take(windowStart + 20_000)).toEqual({
      allowed: true,
      remaining: 2,
      resetMs: 40_000,
    });
    await take(windowStart + 30_000);
    expect(await take(windowStart + 59_000)).toEqual({
      allowed: true,
      remaining: 0,
      resetMs: 1000,
    });
    expect(await take(windowStart + 59_999)).toEqual({ allowed: false, remaining: 0, resetMs: 1 });
    // The next window starts from nothing, whoever counted the last one.
    expect(await take(windowStart + 60_000)).toEqual({
      allowed: true,
      remaining: 2,
      resetMs: 60_000,
    });
    // Another key has its own count.
    expect((await takeRateLimit(redis, keys, 'key-b', limit, windowStart + 59_999)).remaining).toBe(
      2,
    );
  });

  it("gives each window's counter an expiry: no counter outlives its window by more than seconds", async () => {
    const keys = offloadKeys(testPrefix());
    const now = Date.now();
    await takeRateLimit(redis, keys, 'key-a', limit, now);
    await takeRateLimit(redis, keys, 'key-a', limit, now);
    const window = Math.floor(now / limit.windowMs);
    const ttl = await redis.pttl(`${keys.rateLimit('key-a')}:${window}`);
    const windowEnd = (window + 1) * limit.windowMs;
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(windowEnd - now + 5_000);
  });
});

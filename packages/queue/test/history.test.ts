import { afterAll, describe, expect, it } from 'vitest';
import { testPrefix } from '../../../tests/support/processes.ts';
import { testRedis } from '../../../tests/support/redis-url.ts';
import { createRedis } from '../src/connection.ts';
import { HISTORY_TTL_MS, HistoryRecorder, percentile, readHistory } from '../src/history.ts';
import { offloadKeys } from '../src/keys.ts';

const redis = createRedis(testRedis(), 'worker');
afterAll(() => redis.quit());

describe('throughput and latency history', () => {
  it('counts outcomes per minute and reads wait and run percentiles back per task and per queue', async () => {
    const keys = offloadKeys(testPrefix());
    const recorder = new HistoryRecorder(redis, keys);
    const now = Date.UTC(2026, 0, 1, 12, 30, 30);
    const minuteAgo = now - 60_000;
    const attempts = [
      ...Array.from({ length: 19 }, () => ({
        outcome: 'completed' as const,
        waitMs: 8,
        runMs: 90,
      })),
      { outcome: 'completed' as const, waitMs: 4000, runMs: 2000 },
    ];
    for (const attempt of attempts) {
      recorder.add({
        queue: 'default',
        task: 'primes.count',
        finishedAt: now,
        ...attempt,
      });
    }
    recorder.add({
      queue: 'default',
      task: 'cpu.burn',
      outcome: 'failed',
      runMs: 300,
      finishedAt: minuteAgo,
    });
    await recorder.close();

    const history = await readHistory(redis, keys, 1, now);
    expect(history.stepMinutes).toBe(1);
    expect(history.series.map((s) => `${s.queue}/${s.task}`)).toEqual([
      'default/null',
      'default/cpu.burn',
      'default/primes.count',
    ]);
    const [queue, burn, primes] = history.series.map((s) => s.points);
    expect(primes).toHaveLength(60);
    const last = primes?.at(-1);
    expect(last?.at).toBe(Date.UTC(2026, 0, 1, 12, 30));
    expect(last?.completedPerMinute).toBe(20);
    // 19 of 20 runs took 90 ms (bucket 50–100 ms); the slowest one sits in the 95th percentile's reach.
    expect(last?.runP50Ms).toBeGreaterThan(50);
    expect(last?.runP50Ms).toBeLessThanOrEqual(100);
    expect(last?.waitP50Ms).toBeLessThanOrEqual(10);
    expect(last?.waitP95Ms).toBeLessThanOrEqual(10);
    expect(burn?.at(-2)).toMatchObject({ failedPerMinute: 1, runP50Ms: expect.any(Number) });
    // A failed retry has no wait time measured.
    expect(burn?.at(-2)?.waitP50Ms).toBeNull();
    expect(queue?.at(-1)?.completedPerMinute).toBe(20);
    expect(queue?.at(-2)?.failedPerMinute).toBe(1);
    expect(queue?.at(0)?.runP95Ms).toBeNull();

    const ttl = await redis.pttl(keys.history(Math.floor(now / 60_000)));
    expect(ttl).toBeGreaterThan(HISTORY_TTL_MS - 10_000);
    expect(ttl).toBeLessThanOrEqual(HISTORY_TTL_MS);
  });

  it('groups minutes into steps over longer spans, as rates per minute', async () => {
    const keys = offloadKeys(testPrefix());
    const recorder = new HistoryRecorder(redis, keys);
    const now = Date.UTC(2026, 0, 1, 12, 0, 0);
    for (const offset of [0, 1, 2]) {
      recorder.add({
        queue: 'q',
        task: 't',
        outcome: 'completed',
        runMs: 1,
        waitMs: 1,
        finishedAt: now - offset * 60_000,
      });
    }
    await recorder.close();
    const history = await readHistory(redis, keys, 6, now);
    expect(history.stepMinutes).toBe(6);
    const points = history.series[0]?.points ?? [];
    expect(points).toHaveLength(60);
    expect(points.at(-1)?.completedPerMinute).toBeCloseTo(3 / 6);
  });

  it('estimates percentiles inside histogram buckets', () => {
    expect(percentile([0, 0, 0], 0.5)).toBeNull();
    // all ten samples in the 5–10 ms bucket: the median is halfway through it
    expect(percentile([0, 10], 0.5)).toBe(7.5);
  });
});

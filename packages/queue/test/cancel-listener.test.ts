import { afterAll, describe, expect, it } from 'vitest';
import { testPrefix } from '../../../tests/support/processes.ts';
import { testRedis } from '../../../tests/support/redis-url.ts';
import { CancelListener } from '../src/cancel-listener.ts';
import { createRedis } from '../src/connection.ts';
import { isMarkedCanceled, markJobCanceled } from '../src/job-view.ts';
import { offloadKeys } from '../src/keys.ts';

const redis = createRedis(testRedis(), 'worker');
afterAll(() => redis.quit());

describe('cancels reach workers without a check per job', () => {
  it('remembers an announced cancel, so a job that reaches its runner after the announcement is not run', async () => {
    const keys = offloadKeys(testPrefix());
    const heard: string[] = [];
    const listener = await CancelListener.start(redis, keys, (id) => heard.push(id));
    try {
      await redis.publish(keys.cancelChannel, 'job-1');
      await expect.poll(() => heard).toEqual(['job-1']);
      expect(listener.wasAnnounced('job-1')).toBe(true);
      expect(listener.wasAnnounced('job-2')).toBe(false);
    } finally {
      listener.close();
    }
  });

  it("marks an existing job's hash with the reason BullMQ hands its next worker, and creates no hash for a job gone", async () => {
    const keys = offloadKeys(testPrefix());
    const jobKey = keys.bullKey('default', 'job-1');
    await redis.hset(jobKey, 'name', 'cpu.burn', 'failedReason', 'task_error: an earlier attempt');
    expect(
      isMarkedCanceled({ failedReason: (await redis.hget(jobKey, 'failedReason')) ?? '' }),
    ).toBe(false);
    await markJobCanceled(redis, jobKey);
    expect(
      isMarkedCanceled({ failedReason: (await redis.hget(jobKey, 'failedReason')) ?? '' }),
    ).toBe(true);
    const gone = keys.bullKey('default', 'job-2');
    await markJobCanceled(redis, gone);
    expect(await redis.exists(gone)).toBe(0);
    await redis.del(jobKey);
  });
});

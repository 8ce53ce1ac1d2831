import type { JobState, JobSummary } from '@offload/contract';
import { afterAll, describe, expect, it } from 'vitest';
import { testPrefix } from '../../../tests/support/processes.ts';
import { testRedis } from '../../../tests/support/redis-url.ts';
import { createRedis } from '../src/connection.ts';
import { DEFAULT_RETENTION } from '../src/job-options.ts';
import { offloadKeys } from '../src/keys.ts';
import {
  JOB_OVERHEAD_BYTES,
  QueueQuotaExceededError,
  RESULT_ALLOWANCE_BYTES,
  StorageQuotaExceededError,
  settleJob,
  TenantJobs,
} from '../src/tenant-jobs.ts';

const redis = createRedis(testRedis(), 'worker');
afterAll(() => redis.disconnect());

/** Jobs as the index's reader sees them; `state` decides what the quota counts. */
function jobsOf(states: Map<string, JobState>) {
  return (id: string): Promise<JobSummary | null> => {
    const state = states.get(id);
    return Promise.resolve(
      state ? ({ id, task: 'cpu.burn', state, progress: 0 } as JobSummary) : null,
    );
  };
}

describe('the per-tenant job index', () => {
  it('pages through jobs created in the same millisecond without losing or repeating one', async () => {
    const states = new Map<string, JobState>();
    const index = new TenantJobs(redis, offloadKeys(testPrefix()), {
      maxOpenJobs: 0,
      maxStoredBytes: 0,
      failedRetentionMs: DEFAULT_RETENTION.failedMs,
      summaryOf: jobsOf(states),
    });
    const now = Date.now();
    for (let i = 0; i < 30; i++) {
      const id = `job${String(i).padStart(2, '0')}`;
      states.set(id, 'queued');
      // Ten jobs per millisecond.
      await index.reserve('t', [{ id, inputBytes: 10 }], now + Math.floor(i / 10));
    }
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await index.list('t', { limit: 7, ...(cursor && { cursor }) });
      seen.push(...page.jobs.map((j) => j.id));
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    expect(seen).toHaveLength(30);
    expect(new Set(seen).size).toBe(30);
    // Newest first.
    expect(seen[0]).toMatch(/^job2/);
    expect(seen.at(-1)).toMatch(/^job0/);
  });

  it('keeps a job listed and counted however old, until its retention after it finishes ends', async () => {
    const states = new Map<string, JobState>([
      ['delayed', 'delayed'],
      ['new', 'queued'],
    ]);
    const keys = offloadKeys(testPrefix());
    const index = new TenantJobs(redis, keys, {
      maxOpenJobs: 2,
      maxStoredBytes: 0,
      failedRetentionMs: DEFAULT_RETENTION.failedMs,
      summaryOf: jobsOf(states),
    });
    const now = Date.now();
    // Submitted 8 days ago with a 30-day delay: older than any retention window, still to run.
    await index.reserve('t', [{ id: 'delayed', inputBytes: 10 }], now - 8 * 24 * 3600 * 1000);
    await index.reserve('t', [{ id: 'new', inputBytes: 10 }], now);
    expect((await index.list('t', { limit: 10 })).jobs.map((j) => j.id)).toEqual([
      'new',
      'delayed',
    ]);
    await expect(index.reserve('t', [{ id: 'third', inputBytes: 10 }], now)).rejects.toBeInstanceOf(
      QueueQuotaExceededError,
    );
    // Finished, and its retention over: gone from the index with the next submit.
    states.set('delayed', 'completed');
    await settleJob(redis, keys, 't', 'delayed', { resultBytes: 5, until: now - 1 });
    await index.reserve('t', [{ id: 'third', inputBytes: 10 }], now);
    expect(await redis.zscore(keys.tenantJobs('t'), 'delayed')).toBeNull();
    expect(await redis.hget(keys.tenantStored('t'), 'total')).toBe(
      String(2 * (10 + JOB_OVERHEAD_BYTES)),
    );
  });

  it('holds a tenant to its storage quota: inputs at submit, results at finish, released when retention ends', async () => {
    const keys = offloadKeys(testPrefix());
    const job = JOB_OVERHEAD_BYTES;
    const index = new TenantJobs(redis, keys, {
      maxOpenJobs: 0,
      maxStoredBytes: 1000 + 2 * job,
      failedRetentionMs: DEFAULT_RETENTION.failedMs,
      summaryOf: jobsOf(new Map()),
    });
    const total = async () => Number(await redis.hget(keys.tenantStored('t'), 'total'));
    const now = Date.now();
    await index.reserve('t', [{ id: 'a', inputBytes: 600 }], now);
    await expect(index.reserve('t', [{ id: 'b', inputBytes: 500 }], now)).rejects.toBeInstanceOf(
      StorageQuotaExceededError,
    );
    // Quotas are per tenant.
    await index.reserve('other', [{ id: 'b', inputBytes: 500 }], now);
    await index.reserve('t', [{ id: 'b', inputBytes: 100 }], now);
    // A result that would pass the budget is refused, recording nothing; its first
    // RESULT_ALLOWANCE_BYTES are paid for by the job's overhead.
    const result = (bytes: number) =>
      settleJob(redis, keys, 't', 'a', {
        resultBytes: RESULT_ALLOWANCE_BYTES + bytes,
        until: now + 60_000,
      });
    expect(await result(301)).toBe(false);
    expect(await result(300)).toBe(true);
    expect(await total()).toBe(1000 + 2 * job);
    // Once the retention of a ends, its bytes are free again.
    await settleJob(redis, keys, 't', 'a', { resultBytes: 0, until: now - 1 });
    await index.reserve('t', [{ id: 'c', inputBytes: 900 }], now);
    expect(await total()).toBe(1000 + 2 * job);
  });

  it("keeps a tenant's keys while it has unfinished jobs, then as long as its longest-kept job, no longer than an hour past it", async () => {
    const keys = offloadKeys(testPrefix());
    const index = new TenantJobs(redis, keys, {
      maxOpenJobs: 0,
      maxStoredBytes: 0,
      failedRetentionMs: DEFAULT_RETENTION.failedMs,
      summaryOf: jobsOf(new Map()),
    });
    const tenantKeys = [keys.tenantStored('t'), keys.tenantHeldUntil('t'), keys.tenantJobs('t')];
    const expiries = () => Promise.all(tenantKeys.map((key) => redis.pexpiretime(key)));
    const hour = 60 * 60 * 1000;
    const now = Date.now();
    await index.reserve('t', [{ id: 'a', inputBytes: 10 }], now);
    await index.reserve('t', [{ id: 'b', inputBytes: 10 }], now);
    await settleJob(redis, keys, 't', 'a', { resultBytes: 0, until: now + 2 * hour });
    // b is unfinished: nothing expires.
    expect(await expiries()).toEqual([-1, -1, -1]);
    await settleJob(redis, keys, 't', 'b', { resultBytes: 0, until: now + hour });
    for (const expiry of await expiries()) {
      expect(expiry).toBeGreaterThanOrEqual(now + 2 * hour);
      expect(expiry).toBeLessThanOrEqual(now + 3 * hour);
    }
    // A new job: persistent again until it finishes; finishing later than the expiry moves it.
    await index.reserve('t', [{ id: 'c', inputBytes: 10 }], now);
    expect(await expiries()).toEqual([-1, expect.any(Number), -1]);
    await settleJob(redis, keys, 't', 'c', { resultBytes: 0, until: now + 5 * hour });
    for (const expiry of await expiries()) {
      expect(expiry).toBeGreaterThanOrEqual(now + 5 * hour);
      expect(expiry).toBeLessThanOrEqual(now + 6 * hour);
    }
  });

  it('holds a tenant to its quota of unfinished jobs, counting again once some finish', async () => {
    const states = new Map<string, JobState>();
    const keys = offloadKeys(testPrefix());
    const index = new TenantJobs(redis, keys, {
      maxOpenJobs: 2,
      maxStoredBytes: 0,
      failedRetentionMs: DEFAULT_RETENTION.failedMs,
      summaryOf: jobsOf(states),
    });
    for (const id of ['a', 'b']) {
      states.set(id, 'running');
      await index.reserve('t', [{ id, inputBytes: 10 }]);
    }
    await expect(index.reserve('t', [{ id: 'c', inputBytes: 10 }])).rejects.toBeInstanceOf(
      QueueQuotaExceededError,
    );
    // Quotas are per tenant.
    await index.reserve('other', [{ id: 'x', inputBytes: 10 }]);
    // A job that finished without its worker saying so is found by the next prune (once a second).
    states.set('a', 'completed');
    await index.reserve('t', [{ id: 'c', inputBytes: 10 }], Date.now() + 1500);
    await expect(index.reserve('t', [{ id: 'd', inputBytes: 10 }])).rejects.toBeInstanceOf(
      QueueQuotaExceededError,
    );
    // A worker that finishes a job frees its place at once.
    states.set('b', 'completed');
    await settleJob(redis, keys, 't', 'b', { resultBytes: 0, until: Date.now() + 60_000 });
    await index.reserve('t', [{ id: 'd', inputBytes: 10 }]);
  });

  it('reserves a batch whole or not at all', async () => {
    const keys = offloadKeys(testPrefix());
    const index = new TenantJobs(redis, keys, {
      maxOpenJobs: 3,
      maxStoredBytes: 3 * (100 + JOB_OVERHEAD_BYTES),
      failedRetentionMs: DEFAULT_RETENTION.failedMs,
      summaryOf: jobsOf(new Map()),
    });
    const batch = (ids: string[], inputBytes = 100) => ids.map((id) => ({ id, inputBytes }));
    await index.reserve('t', batch(['a', 'b']));
    // One place left: a batch of two takes none.
    await expect(index.reserve('t', batch(['c', 'd']))).rejects.toBeInstanceOf(
      QueueQuotaExceededError,
    );
    expect(await redis.zrange(keys.tenantOpenJobs('t'), 0, -1)).toEqual(['a', 'b']);
    // One place, but not the bytes of a 101-byte input: none either.
    await expect(index.reserve('t', batch(['c'], 101))).rejects.toBeInstanceOf(
      StorageQuotaExceededError,
    );
    await index.reserve('t', batch(['c']));
    expect(await redis.zcard(keys.tenantJobs('t'))).toBe(3);
    expect(Number(await redis.hget(keys.tenantStored('t'), 'total'))).toBe(
      3 * (100 + JOB_OVERHEAD_BYTES),
    );
  });
});

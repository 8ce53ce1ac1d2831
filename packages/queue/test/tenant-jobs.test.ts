import type { JobState, JobSummary } from '@offload/contract';
import { afterAll, describe, expect, it } from 'vitest';
import { testPrefix } from '../../../tests/support/processes.ts';
import { testRedisUrl } from '../../../tests/support/redis-url.ts';
import { createRedis } from '../src/connection.ts';
import { DEFAULT_RETENTION } from '../src/job-options.ts';
import { offloadKeys } from '../src/keys.ts';
import { forgetOpenJob, QueueQuotaExceededError, TenantJobs } from '../src/tenant-jobs.ts';

const redis = createRedis(testRedisUrl(), 'worker');
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
      indexRetentionMs: DEFAULT_RETENTION.failedMs,
      summaryOf: jobsOf(states),
    });
    const now = Date.now();
    for (let i = 0; i < 30; i++) {
      const id = `job${String(i).padStart(2, '0')}`;
      states.set(id, 'queued');
      // Ten jobs per millisecond.
      await index.reserve('t', id, now + Math.floor(i / 10));
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

  it('forgets entries older than the retention window as new jobs arrive', async () => {
    const states = new Map<string, JobState>([
      ['old', 'failed'],
      ['new', 'queued'],
    ]);
    const index = new TenantJobs(redis, offloadKeys(testPrefix()), {
      maxOpenJobs: 0,
      indexRetentionMs: DEFAULT_RETENTION.failedMs,
      summaryOf: jobsOf(states),
    });
    const now = Date.now();
    await index.reserve('t', 'old', now - DEFAULT_RETENTION.failedMs - 1000);
    await index.reserve('t', 'new', now);
    expect((await index.list('t', { limit: 10 })).jobs.map((j) => j.id)).toEqual(['new']);
  });

  it('holds a tenant to its quota of unfinished jobs, counting again once some finish', async () => {
    const states = new Map<string, JobState>();
    const keys = offloadKeys(testPrefix());
    const index = new TenantJobs(redis, keys, {
      maxOpenJobs: 2,
      indexRetentionMs: DEFAULT_RETENTION.failedMs,
      summaryOf: jobsOf(states),
    });
    for (const id of ['a', 'b']) {
      states.set(id, 'running');
      await index.reserve('t', id);
    }
    await expect(index.reserve('t', 'c')).rejects.toBeInstanceOf(QueueQuotaExceededError);
    // Quotas are per tenant.
    await index.reserve('other', 'x');
    // A job that finished without its worker saying so is found by the next prune (once a second).
    states.set('a', 'completed');
    await index.reserve('t', 'c', Date.now() + 1500);
    await expect(index.reserve('t', 'd')).rejects.toBeInstanceOf(QueueQuotaExceededError);
    // A worker that finishes a job frees its place at once.
    states.set('b', 'completed');
    await forgetOpenJob(redis, keys, 't', 'b');
    await index.reserve('t', 'd');
  });
});

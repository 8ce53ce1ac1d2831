import { isFinal, type JobPage, type JobState, type JobSummary } from '@offload/contract';
import type { Redis } from 'ioredis';
import type { OffloadKeys } from './keys.ts';
import { luaScript } from './lua-script.ts';

/**
 * Per-tenant bookkeeping beside BullMQ: an index of each tenant's jobs by
 * creation time (for listing, newest first) and the set of its jobs not yet
 * known to be finished (for the queued-jobs quota). BullMQ keeps neither: its
 * lists are per queue and state, shared by every tenant.
 */

/** A tenant has as many unfinished jobs as its quota allows. */
export class QueueQuotaExceededError extends Error {
  override readonly name = 'QueueQuotaExceededError';
  constructor(readonly limit: number) {
    super(`At most ${limit} unfinished jobs per tenant`);
  }
}

/** The list cursor could not have been issued. */
export class InvalidCursorError extends Error {
  override readonly name = 'InvalidCursorError';
}

/** A reserved id whose job cannot be found is only dropped once it is this old, ms: its submit may still be under way. */
const SUBMIT_GRACE_MS = 10_000;

/**
 * Adds the job to the tenant's index and open set unless the open set is full.
 * KEYS: open, index. ARGV: job id, now (ms), quota (0 = none), index retention (ms).
 */
const RESERVE = `
local quota = tonumber(ARGV[3])
if quota > 0 and redis.call('ZCARD', KEYS[1]) >= quota then return 0 end
local now = tonumber(ARGV[2])
local keep = tonumber(ARGV[4])
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZADD', KEYS[2], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - keep)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - keep)
redis.call('PEXPIRE', KEYS[1], keep)
redis.call('PEXPIRE', KEYS[2], keep)
return 1
`;
const reserve = luaScript('reserve', 2, RESERVE);

/** Takes a finished (or canceled) job out of its tenant's open set: it no longer counts against the quota. */
export async function forgetOpenJob(
  redis: Redis,
  keys: OffloadKeys,
  tenant: string,
  jobId: string,
): Promise<void> {
  await redis.zrem(keys.tenantOpenJobs(tenant), jobId);
}

export interface TenantJobsOptions {
  /** Most unfinished (queued, delayed or running) jobs one tenant may have; 0 = no limit. */
  maxOpenJobs: number;
  /**
   * How long index entries live, ms: as long as the longest-kept job (failed and
   * canceled ones); entries of completed jobs removed earlier are skipped on reading.
   */
  indexRetentionMs: number;
  /** The job's summary in this tenant (never its result), or null when it is gone (removed past retention). */
  summaryOf(id: string, tenant: string): Promise<JobSummary | null>;
}

export interface ListQuery {
  state?: JobState;
  task?: string;
  /** Page size, 1 … 100. */
  limit: number;
  cursor?: string;
}

/** Most index entries one list call reads, so a filter matching nothing cannot scan a tenant's whole history. */
const MAX_SCANNED_PER_PAGE = 500;

/** Open-set entries one prune looks at, oldest first. */
const PRUNE_BATCH = 200;
/** Least time between two prunes of one tenant's open set in one process, ms. */
const PRUNE_EVERY_MS = 1000;

export class TenantJobs {
  private readonly prunedAt = new Map<string, number>();
  constructor(
    private readonly redis: Redis,
    private readonly keys: OffloadKeys,
    private readonly options: TenantJobsOptions,
  ) {}

  /** Records a job about to be added; throws QueueQuotaExceededError when the tenant is at its quota. */
  async reserve(tenant: string, jobId: string, now = Date.now()): Promise<void> {
    if (await this.tryReserve(tenant, jobId, now)) return;
    // At the quota by the count: drop jobs finished since, then count again.
    await this.pruneFinished(tenant, now);
    if (await this.tryReserve(tenant, jobId, now)) return;
    throw new QueueQuotaExceededError(this.options.maxOpenJobs);
  }

  /** Undoes `reserve` for a job that could not be added. */
  async release(tenant: string, jobId: string): Promise<void> {
    await this.redis
      .multi()
      .zrem(this.keys.tenantOpenJobs(tenant), jobId)
      .zrem(this.keys.tenantJobs(tenant), jobId)
      .exec();
  }

  /**
   * A page of the tenant's jobs, newest first. A filtered page may hold fewer
   * than `limit` jobs (at most MAX_SCANNED_PER_PAGE entries are read per call)
   * while `nextCursor` still leads on.
   */
  async list(tenant: string, query: ListQuery): Promise<JobPage> {
    let after = query.cursor === undefined ? null : decodeCursor(query.cursor);
    const jobs: JobSummary[] = [];
    let scanned = 0;
    for (;;) {
      const batch = await this.entriesAfter(tenant, after, query.limit);
      if (batch.length === 0) return { jobs, nextCursor: null };
      const views = await Promise.all(batch.map((e) => this.options.summaryOf(e.id, tenant)));
      for (const [i, entry] of batch.entries()) {
        scanned++;
        after = entry;
        const view = views[i];
        if (!view) continue;
        if (query.state && view.state !== query.state) continue;
        if (query.task && view.task !== query.task) continue;
        jobs.push(view);
        if (jobs.length === query.limit) return { jobs, nextCursor: encodeCursor(entry) };
      }
      if (scanned >= MAX_SCANNED_PER_PAGE && after)
        return { jobs, nextCursor: encodeCursor(after) };
    }
  }

  private async tryReserve(tenant: string, jobId: string, now: number): Promise<boolean> {
    const reserved = await reserve(
      this.redis,
      [this.keys.tenantOpenJobs(tenant), this.keys.tenantJobs(tenant)],
      [jobId, now, this.options.maxOpenJobs, this.options.indexRetentionMs],
    );
    return reserved === 1;
  }

  /**
   * Workers take finished jobs out of the open set (queue-worker.ts) and cancels
   * do too; this catches the rest (a job removed from the dashboard, a worker
   * that died between finishing and telling). It looks at the oldest
   * PRUNE_BATCH entries only, at most once per PRUNE_EVERY_MS per tenant and
   * process: a tenant at its quota costs a bounded amount of work per submit.
   */
  private async pruneFinished(tenant: string, now: number): Promise<void> {
    if (now - (this.prunedAt.get(tenant) ?? 0) < PRUNE_EVERY_MS) return;
    this.prunedAt.set(tenant, now);
    const key = this.keys.tenantOpenJobs(tenant);
    const entries = await this.redis.zrange(key, 0, PRUNE_BATCH - 1, 'WITHSCORES');
    const done: string[] = [];
    await Promise.all(
      pairs(entries).map(async ({ id, createdAt }) => {
        const view = await this.options.summaryOf(id, tenant);
        if (view ? isFinal(view.state) : createdAt < now - SUBMIT_GRACE_MS) done.push(id);
      }),
    );
    if (done.length > 0) await this.redis.zrem(key, ...done);
  }

  /** Index entries older than `after` (or the newest ones), newest first. */
  private async entriesAfter(tenant: string, after: Entry | null, count: number): Promise<Entry[]> {
    const key = this.keys.tenantJobs(tenant);
    if (!after) {
      return pairs(
        await this.redis.zrevrangebyscore(key, '+inf', '-inf', 'WITHSCORES', 'LIMIT', 0, count),
      );
    }
    // Entries of the same millisecond come in reverse id order: skip those at or above the cursor's id.
    const sameMs = pairs(
      await this.redis.zrevrangebyscore(key, after.createdAt, after.createdAt, 'WITHSCORES'),
    );
    const rest = sameMs.filter((e) => e.id < after.id);
    if (rest.length >= count) return rest.slice(0, count);
    const older = pairs(
      await this.redis.zrevrangebyscore(
        key,
        `(${after.createdAt}`,
        '-inf',
        'WITHSCORES',
        'LIMIT',
        0,
        count - rest.length,
      ),
    );
    return [...rest, ...older];
  }
}

interface Entry {
  id: string;
  /** ms since epoch */
  createdAt: number;
}

function pairs(flat: string[]): Entry[] {
  const entries: Entry[] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) {
    entries.push({ id: flat[i] as string, createdAt: Number(flat[i + 1]) });
  }
  return entries;
}

// A cursor is the last index entry a page read, opaque to clients.
function encodeCursor(entry: Entry): string {
  return Buffer.from(`${entry.createdAt}:${entry.id}`).toString('base64url');
}

const CURSOR = /^(\d{1,16}):([A-Za-z0-9_-]{1,64})$/;
function decodeCursor(cursor: string): Entry {
  const match = CURSOR.exec(Buffer.from(cursor, 'base64url').toString());
  if (!match) throw new InvalidCursorError('The cursor was not issued by this API');
  return { createdAt: Number(match[1]), id: match[2] as string };
}

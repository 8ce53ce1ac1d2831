import { isFinal, type JobPage, type JobState, type JobSummary } from '@offload/contract';
import type { RedisClient } from './connection.ts';
import type { OffloadKeys } from './keys.ts';
import { luaScript } from './lua-script.ts';

/**
 * Per-tenant bookkeeping beside BullMQ: an index of each tenant's jobs by
 * creation time (for listing, newest first), the set of its jobs not yet
 * known to be finished (for the queued-jobs quota), and a ledger of the bytes
 * its jobs hold in Redis (inputs and results, until each job's retention
 * ends; for the storage quota). BullMQ keeps none of these: its lists are per
 * queue and state, shared by every tenant.
 */

/** A tenant has as many unfinished jobs as its quota allows. */
export class QueueQuotaExceededError extends Error {
  override readonly name = 'QueueQuotaExceededError';
  constructor(readonly limit: number) {
    super(`At most ${limit} unfinished jobs per tenant`);
  }
}

/** A tenant's jobs hold as many bytes as its storage quota allows. */
export class StorageQuotaExceededError extends Error {
  override readonly name = 'StorageQuotaExceededError';
  constructor(
    readonly limit: number,
    readonly held: number,
  ) {
    super(`Your tenant's jobs hold ${held} of at most ${limit} bytes of inputs and results`);
  }
}

/** The list cursor could not have been issued. */
export class InvalidCursorError extends Error {
  override readonly name = 'InvalidCursorError';
}

/** A reserved id whose job cannot be found is only dropped once it is this old, ms: its submit may still be under way. */
const SUBMIT_GRACE_MS = 10_000;

/**
 * Bytes each job counts in its tenant's storage quota besides its input and
 * result: BullMQ's job hash (name, options, timestamps) and Offload's entries
 * for it take 1–2 KiB, so a flood of tiny jobs is bounded as well.
 */
export const JOB_OVERHEAD_BYTES = 2048;

/**
 * The first bytes of a result that JOB_OVERHEAD_BYTES already pays for: a
 * result this small never takes its tenant past the storage quota, so its
 * worker need not wait for the ledger before finishing the job (queue-worker.ts).
 */
export const RESULT_ALLOWANCE_BYTES = 512;

/** Ledger entries whose retention has ended that one call releases at most. */
const RELEASE_BATCH = 1000;

/**
 * Least time between two looks for a tenant's ledger entries whose retention
 * has ended, ms: a look costs a command on each submit and finish. Released
 * bytes matter only to the quota checks, which look anyway before they
 * refuse; nothing was ever released sooner than the tenant's next call.
 */
const RELEASE_EVERY_MS = 1000;

/**
 * How long the ledger and the index outlive the longest-kept entry once no job
 * of the tenant is unfinished, ms: their expiry then moves only when an entry
 * outlives it, not on each entry written meanwhile (the worker's settle of a
 * job canceled while it ran).
 */
const EXPIRY_SLACK_MS = 60 * 60 * 1000;

/**
 * What the scripts share. KEYS: stored, held-until, index, open. Besides
 * each entry's bytes, `total` and `limit` (keys.ts), the stored hash keeps
 * `released` (the last look for ended entries, ms) and `expires` (when the
 * tenant's keys expire, ms; 0 while they are persistent). A script collects
 * its writes to that hash in `writes` and makes them with one HSET (`flush`).
 */
const LEDGER = `
local writes = {}
local function flush(answer)
  local args = {}
  for field, value in pairs(writes) do
    args[#args + 1] = field
    args[#args + 1] = value
  end
  if #args > 0 then redis.call('HSET', KEYS[1], unpack(args)) end
  return answer
end

local function fits(total, add, budget)
  return budget <= 0 or add <= 0 or total + add <= budget
end

-- Releases the entries whose retention has ended (their jobs are gone: out of the index too),
-- unless the last look (\`last\`) was less than ${RELEASE_EVERY_MS} ms ago and no quota check
-- \`needs\` it; a look stamped ahead by another host's clock does not put off the next. Answers
-- the total left and the set of entries released.
local function releaseEnded(now, last, total, needs)
  last = tonumber(last)
  if not needs and last and math.abs(now - last) < ${RELEASE_EVERY_MS} then return total, {} end
  writes.released = now
  local ended = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, ${RELEASE_BATCH})
  local gone = {}
  if #ended == 0 then return total, gone end
  for i, bytes in ipairs(redis.call('HMGET', KEYS[1], unpack(ended))) do
    total = total - (tonumber(bytes) or 0)
    gone[ended[i]] = true
  end
  redis.call('HDEL', KEYS[1], unpack(ended))
  redis.call('ZREM', KEYS[2], unpack(ended))
  redis.call('ZREM', KEYS[3], unpack(ended))
  writes.total = total
  return total, gone
end

-- The tenant has an unfinished job (or an entry held until +inf) again: its keys last until it
-- has none (see expireWhenDone). \`expires\` missing from a ledger that exists: one written before
-- the field, whose keys may expire.
local function persist(exists, expires)
  if expires == '0' then return end
  if exists then
    for i = 1, 3 do redis.call('PERSIST', KEYS[i]) end
  end
  writes.expires = 0
end

-- With no unfinished job and no entry held until +inf left, the ledger and the index live as
-- long as the longest-kept entry, then EXPIRY_SLACK_MS. Once they expire (and until reserve or
-- hold(+inf) clears \`expires\`, no job is unfinished), that moves only when the entry just
-- written (held until \`ends\`) outlives it; a new entry may have made held-until anew (emptied
-- by releases), without the expiry.
local function expireWhenDone(ends, expires, added)
  local at = tonumber(expires) or 0
  if at > 0 then
    if ends <= at then
      if added == 1 then redis.call('PEXPIREAT', KEYS[2], at) end
      return
    end
  else
    if redis.call('ZCARD', KEYS[4]) > 0 then return end
    local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')[2]
    if last == 'inf' then return end
    ends = tonumber(last)
  end
  at = ends + ${EXPIRY_SLACK_MS}
  for i = 1, 3 do redis.call('PEXPIREAT', KEYS[i], at) end
  writes.expires = at
end
`;

/**
 * Adds the jobs to the tenant's index, open set and ledger unless the open
 * set or the ledger would overflow: all of them or none. An unfinished job
 * has no held-until entry: settle gives it one. KEYS: stored, held-until,
 * index, open. ARGV: now (ms), quota (0 = none), byte budget (0 = none), then
 * each job's id and bytes. Answers 1, 0 (open set full) or -1 (ledger full).
 * One ZADD per key and one HSET for the whole batch: Lua's unpack bounds it
 * to some 3990 jobs.
 */
const RESERVE = `${LEDGER}
local now = tonumber(ARGV[1])
local quota, budget = tonumber(ARGV[2]), tonumber(ARGV[3])
local count = (#ARGV - 3) / 2
if quota > 0 and redis.call('ZCARD', KEYS[4]) + count > quota then return 0 end
local bytes = 0
for i = 5, #ARGV, 2 do bytes = bytes + tonumber(ARGV[i]) end
local ledger = redis.call('HMGET', KEYS[1], 'total', 'limit', 'released', 'expires')
local total = tonumber(ledger[1]) or 0
total = releaseEnded(now, ledger[3], total, not fits(total, bytes, budget))
if not fits(total, bytes, budget) then return flush(-1) end
local created = {}
for i = 4, #ARGV, 2 do
  created[#created + 1] = now
  created[#created + 1] = ARGV[i]
  writes[ARGV[i]] = ARGV[i + 1]
end
redis.call('ZADD', KEYS[4], unpack(created))
redis.call('ZADD', KEYS[3], unpack(created))
writes.total = total + bytes
-- settle reads the budget from here: the workers do not know the API's.
if tonumber(ledger[2]) ~= budget then writes.limit = budget end
persist(ledger[1], ledger[4])
return flush(1)
`;
const reserve = luaScript('reserve', 4, RESERVE);

/**
 * A job is finished (or canceled): out of the open set; its result's bytes
 * beyond RESULT_ALLOWANCE_BYTES join its ledger entry, which is released at
 * `until`. A result that would take the tenant past its budget is not
 * recorded and answers 0; one within the allowance is never refused.
 * KEYS: stored, held-until, index, open. ARGV: now (ms), job id, result
 * bytes, until (ms), held bytes to set instead of adding (-1: add).
 */
const SETTLE = `${LEDGER}
local now, id = tonumber(ARGV[1]), ARGV[2]
redis.call('ZREM', KEYS[4], id)
local ledger = redis.call('HMGET', KEYS[1], id, 'limit', 'total', 'released', 'expires')
local held = tonumber(ledger[1])
if not held then return 1 end
local limit = tonumber(ledger[2] or '0')
local set = tonumber(ARGV[5])
local add = set >= 0 and set - held or math.max(0, tonumber(ARGV[3]) - ${RESULT_ALLOWANCE_BYTES})
local total, gone = tonumber(ledger[3] or '0'), nil
total, gone = releaseEnded(now, ledger[4], total, not fits(total, add, limit))
-- Released just now, its retention over: a late second settle, which finds nothing to do.
if gone[id] then return flush(1) end
if not fits(total, add, limit) then return flush(0) end
if add ~= 0 then
  writes[id] = held + add
  writes.total = total + add
end
local added = redis.call('ZADD', KEYS[2], ARGV[4], id)
expireWhenDone(tonumber(ARGV[4]), ledger[5], added)
return flush(1)
`;
const settle = luaScript('settle', 4, SETTLE);

/**
 * Holds bytes a tenant keeps in Redis besides its jobs (a workflow's record)
 * under a ledger entry of their own, until `until`: set to `bytes` (0
 * releases them), unless that takes the tenant past its budget. KEYS:
 * stored, held-until, index, open. ARGV: now (ms), entry, bytes, until (ms,
 * or +inf), byte budget (0 = none). Answers 1, or 0 (ledger full).
 */
const HOLD = `${LEDGER}
local now = tonumber(ARGV[1])
local entry, bytes, budget = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[5])
local ledger = redis.call('HMGET', KEYS[1], 'total', entry, 'released', 'expires')
local had = tonumber(ledger[2]) or 0
local total, gone = tonumber(ledger[1] or '0'), nil
total, gone = releaseEnded(now, ledger[3], total, not fits(total, bytes - had, budget))
if gone[entry] then had = 0 end
local add = bytes - had
if not fits(total, add, budget) then return flush(0) end
writes[entry] = bytes
writes.total = total + add
local added = redis.call('ZADD', KEYS[2], ARGV[4], entry)
if ARGV[4] == '+inf' then
  persist(ledger[1], ledger[4])
else
  expireWhenDone(tonumber(ARGV[4]), ledger[4], added)
end
return flush(1)
`;
const hold = luaScript('hold', 4, HOLD);

function tenantKeys(keys: OffloadKeys, tenant: string): string[] {
  return [
    keys.tenantStored(tenant),
    keys.tenantHeldUntil(tenant),
    keys.tenantJobs(tenant),
    keys.tenantOpenJobs(tenant),
  ];
}

export interface SettleOptions {
  /** Bytes of the result's JSON to add to what the job holds; 0 for a failure. */
  resultBytes: number;
  /** When the job's retention ends, ms since epoch. */
  until: number;
  /** Replace what the job holds by this many bytes (a canceled job whose data is gone). */
  heldBytes?: number;
}

/**
 * Records a finished (or canceled) job: it no longer counts against its
 * tenant's open-jobs quota, and its bytes are held until its retention ends.
 * Answers false, recording nothing more, when its result would not fit the
 * tenant's storage budget: the caller fails the job instead.
 */
export async function settleJob(
  redis: RedisClient,
  keys: OffloadKeys,
  tenant: string,
  jobId: string,
  options: SettleOptions,
): Promise<boolean> {
  const settled = await settle(redis, tenantKeys(keys, tenant), [
    Date.now(),
    jobId,
    options.resultBytes,
    options.until,
    options.heldBytes ?? -1,
  ]);
  return settled === 1;
}

export interface TenantJobsOptions {
  /** Most unfinished (queued, delayed or running) jobs one tenant may have; 0 = no limit. */
  maxOpenJobs: number;
  /** Most bytes of inputs and results one tenant's jobs may hold; 0 = no limit. */
  maxStoredBytes: number;
  /** How long failed and canceled jobs are kept, ms: a job pruned as finished is held this long. */
  failedRetentionMs: number;
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
    private readonly redis: RedisClient,
    private readonly keys: OffloadKeys,
    private readonly options: TenantJobsOptions,
  ) {}

  /**
   * Records jobs about to be added, each holding its input's bytes and
   * JOB_OVERHEAD_BYTES: all of them, or none and QueueQuotaExceededError or
   * StorageQuotaExceededError when they would take the tenant past a quota.
   */
  async reserve(
    tenant: string,
    jobs: readonly { id: string; inputBytes: number }[],
    now = Date.now(),
  ): Promise<void> {
    // The script's ZADDs take one job at least.
    if (jobs.length === 0) return;
    let answer = await this.tryReserve(tenant, jobs, now);
    if (answer === 1) return;
    if (answer === 0) {
      // At the quota by the count: drop jobs finished since, then count again.
      await this.pruneFinished(tenant, now);
      answer = await this.tryReserve(tenant, jobs, now);
      if (answer === 1) return;
      if (answer === 0) throw new QueueQuotaExceededError(this.options.maxOpenJobs);
    }
    const held = Number(await this.redis.hget(this.keys.tenantStored(tenant), 'total'));
    throw new StorageQuotaExceededError(this.options.maxStoredBytes, held);
  }

  /**
   * Holds `bytes` under the tenant's ledger entry `entry` (not a job: the
   * open-jobs quota does not count it) until `until` (ms since epoch, or
   * Infinity), replacing what it held; 0 bytes releases it. Throws
   * StorageQuotaExceededError when more would take the tenant past its budget.
   */
  async hold(tenant: string, entry: string, bytes: number, until: number): Promise<void> {
    const answer = await hold(this.redis, tenantKeys(this.keys, tenant), [
      Date.now(),
      entry,
      bytes,
      until === Number.POSITIVE_INFINITY ? '+inf' : until,
      this.options.maxStoredBytes,
    ]);
    if (Number(answer) === 1) return;
    const held = Number(await this.redis.hget(this.keys.tenantStored(tenant), 'total'));
    throw new StorageQuotaExceededError(this.options.maxStoredBytes, held);
  }

  /** Undoes `reserve` for jobs that could not be added. */
  async release(tenant: string, jobIds: readonly string[]): Promise<void> {
    await Promise.all(
      jobIds.map((jobId) =>
        settleJob(this.redis, this.keys, tenant, jobId, {
          resultBytes: 0,
          until: Date.now(),
          heldBytes: 0,
        }),
      ),
    );
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

  /** 1: reserved; 0: the open set is full; -1: the ledger is. */
  private async tryReserve(
    tenant: string,
    jobs: readonly { id: string; inputBytes: number }[],
    now: number,
  ): Promise<number> {
    return Number(
      await reserve(this.redis, tenantKeys(this.keys, tenant), [
        now,
        this.options.maxOpenJobs,
        this.options.maxStoredBytes,
        ...jobs.flatMap((job) => [job.id, job.inputBytes + JOB_OVERHEAD_BYTES]),
      ]),
    );
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
    await Promise.all(
      pairs(entries).map(async ({ id, createdAt }) => {
        const view = await this.options.summaryOf(id, tenant);
        if (view && !isFinal(view.state)) return;
        if (!view && createdAt >= now - SUBMIT_GRACE_MS) return;
        // A finished job is held as long as the longest retention; a job gone holds nothing.
        await settleJob(this.redis, this.keys, tenant, id, {
          resultBytes: 0,
          until: view ? now + this.options.failedRetentionMs : now,
          ...(!view && { heldBytes: 0 }),
        });
      }),
    );
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

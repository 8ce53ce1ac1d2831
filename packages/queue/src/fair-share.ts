import { QueueKeys } from 'bullmq';
import type { Redis } from 'ioredis';
import type { OffloadKeys } from './keys.ts';
import { luaScript } from './lua-script.ts';

/**
 * Fair share across tenants (DESIGN.md §4) on open-source BullMQ, which serves
 * a queue in arrival (or priority) order only. A submitted job is added to
 * BullMQ as a delayed job due HELD_DELAY_MS from now ("held"): BullMQ keeps its
 * record, so reading, listing and canceling it work as for any job, but no
 * worker takes it. Its id also goes into its tenant's held set. The dispatcher
 * (DISPATCH, one atomic script per queue) moves held jobs into BullMQ's wait
 * list while the queue's live executors outnumber its dispatched and running
 * jobs, each time taking the oldest held job of the tenant with the fewest
 * running (ties: the tenant whose next job is oldest). It runs at submit, when
 * a job ends (its executor is free), and on every worker's registration beat.
 *
 * User-delayed jobs (`delayMs`), retries after backoff, jobs handed back and
 * jobs of a dead worker go straight to BullMQ's wait list: they were dispatched
 * or chosen by the user's own delay, and they count as running once started.
 */

/**
 * How far in the future a held job is due, ms (10 years): far enough never to
 * come due, near enough that BullMQ's delayed score (ms × 4096) stays an exact
 * double. A job's `delay` equal to it marks the job as held.
 */
export const HELD_DELAY_MS = 10 * 365 * 24 * 60 * 60 * 1000;

/**
 * How long a dispatched or started job counts as running without a lock, ms:
 * long enough for a worker to take a dispatched job from the wait list. Past
 * it, a job whose BullMQ lock is gone (its worker was killed) stops counting.
 */
const UNLOCKED_GRACE_MS = 5_000;
/** A held id whose job does not exist yet is only dropped once it is this old, ms: its submit may be under way. */
const SUBMIT_GRACE_MS = 10_000;

/** True for a job added held and not dispatched yet (its public state is `queued`). */
export function isHeld(job: { delay: number | string | undefined }): boolean {
  return Number(job.delay) === HELD_DELAY_MS;
}

/**
 * Appends a job to its tenant's held set. Done before BullMQ adds the job: a
 * crash in between leaves an id without a job, which the dispatcher drops.
 * KEYS: held set, held tenants, sequence. ARGV: member, priority (0 = none), tenant.
 */
const HOLD = `
local sequence = redis.call('INCR', KEYS[3])
redis.call('ZADD', KEYS[1], tonumber(ARGV[2]) * 0x100000000 + sequence % 0x100000000, ARGV[1])
redis.call('SADD', KEYS[2], ARGV[3])
return 1
`;
const hold = luaScript('fair_hold', 3, HOLD);

/**
 * Registers the caller's executors (when given), forgets a job that ended
 * (when given), then dispatches held jobs while executors are free. The
 * promotion of one job repeats BullMQ's own (promote-9.lua, BullMQ 6):
 * out of the delayed set, into wait (or prioritized), the marker that wakes
 * workers, the `waiting` event, `delay` 0.
 *
 * KEYS: held tenants, running, executors, and BullMQ's delayed, wait, meta,
 * prioritized, active, pc, events, marker.
 * ARGV: held-set key prefix, BullMQ job key prefix, ended member ('' none),
 * worker id ('' none), `executors:maxRunningPerTenant`, registration ttl (ms),
 * unlocked grace (ms), submit grace (ms).
 * Returns the number of jobs dispatched.
 */
const DISPATCH = `
local rcall = redis.call
local time = rcall('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local heldPrefix, jobPrefix = ARGV[1], ARGV[2]
local tenantsKey, runningKey, executorsKey = KEYS[1], KEYS[2], KEYS[3]
if ARGV[3] ~= '' then rcall('ZREM', runningKey, ARGV[3]) end
if ARGV[4] ~= '' then rcall('HSET', executorsKey, ARGV[4], ARGV[5] .. ':' .. (now + tonumber(ARGV[6]))) end

local capacity, cap = 0, 0
local registered = rcall('HGETALL', executorsKey)
for i = 1, #registered, 2 do
  local n, c, expires = string.match(registered[i + 1], '^(%d+):(%d+):(%d+)$')
  if n == nil or tonumber(expires) < now then
    rcall('HDEL', executorsKey, registered[i])
  else
    capacity = capacity + tonumber(n)
    c = tonumber(c)
    if c > 0 and (cap == 0 or c < cap) then cap = c end
  end
end

local running, total = {}, 0
local entries = rcall('ZRANGE', runningKey, 0, -1, 'WITHSCORES')
local unlockedSince = now - tonumber(ARGV[7])
for i = 1, #entries, 2 do
  local id, tenant = string.match(entries[i], '^([^:]+):(.*)$')
  if id == nil or (tonumber(entries[i + 1]) < unlockedSince and rcall('EXISTS', jobPrefix .. id .. ':lock') == 0) then
    rcall('ZREM', runningKey, entries[i])
  else
    running[tenant] = (running[tenant] or 0) + 1
    total = total + 1
  end
end

local free = capacity - total
if free <= 0 then return 0 end

local submitSince = now - tonumber(ARGV[8])
-- The tenant's next held job: { member, createdAt, id }, false when none is ready.
local function headOf(tenant)
  local key = heldPrefix .. tenant
  while true do
    local head = rcall('ZRANGE', key, 0, 0)[1]
    if head == nil then
      rcall('SREM', tenantsKey, tenant)
      return false
    end
    local createdAt, id = string.match(head, '^(%d+):(.+)$')
    if id and rcall('ZSCORE', KEYS[4], id) then return { head, tonumber(createdAt), id } end
    if id and rcall('EXISTS', jobPrefix .. id) == 0 and tonumber(createdAt) >= submitSince then
      return false
    end
    -- Canceled, removed, promoted by hand, or never added: nothing to dispatch.
    rcall('ZREM', key, head)
  end
end

local meta = rcall('HMGET', KEYS[6], 'paused', 'concurrency')
local pausedOrMaxed = meta[1] or (meta[2] and rcall('LLEN', KEYS[8]) >= tonumber(meta[2]))
local heads = {}
local tenants = rcall('SMEMBERS', tenantsKey)
for _, tenant in ipairs(tenants) do heads[tenant] = headOf(tenant) end

local dispatched = 0
while free > 0 do
  local best, bestRunning, bestAt
  for _, tenant in ipairs(tenants) do
    local head = heads[tenant]
    local count = running[tenant] or 0
    if head and (cap == 0 or count < cap) and
        (best == nil or count < bestRunning or (count == bestRunning and head[2] < bestAt)) then
      best, bestRunning, bestAt = tenant, count, head[2]
    end
  end
  if best == nil then break end
  local head = heads[best]
  local id, jobKey = head[3], jobPrefix .. head[3]
  rcall('ZREM', heldPrefix .. best, head[1])
  rcall('ZREM', KEYS[4], id)
  local priority = tonumber(rcall('HGET', jobKey, 'priority')) or 0
  if priority == 0 then
    rcall('LPUSH', KEYS[5], id)
  else
    local counter = rcall('INCR', KEYS[9])
    rcall('ZADD', KEYS[7], priority * 0x100000000 + counter % 0x100000000, id)
  end
  if not pausedOrMaxed then rcall('ZADD', KEYS[11], 0, '0') end
  rcall('XADD', KEYS[10], '*', 'event', 'waiting', 'jobId', id, 'prev', 'delayed')
  rcall('HSET', jobKey, 'delay', 0)
  rcall('ZADD', runningKey, now, id .. ':' .. best)
  running[best] = bestRunning + 1
  heads[best] = headOf(best)
  free = free - 1
  dispatched = dispatched + 1
end
return dispatched
`;
const dispatchScript = luaScript('fair_dispatch', 11, DISPATCH);

/** A worker's executors for one queue, as the dispatcher counts them. */
export interface ExecutorRegistration {
  workerId: string;
  executors: number;
  /** MAX_RUNNING_PER_TENANT of that worker; 0 = none. The smallest among live workers applies. */
  maxRunningPerTenant: number;
  /** How long the registration lasts unless renewed, ms. */
  ttlMs: number;
}

/** The fair-share bookkeeping of one queue. */
export class FairShare {
  private readonly bullKeys: Record<string, string>;
  constructor(
    private readonly redis: Redis,
    private readonly keys: OffloadKeys,
    readonly queue: string,
  ) {
    this.bullKeys = new QueueKeys(keys.prefix).getKeys(queue);
  }

  /** Puts a job about to be added held into its tenant's held set. */
  async hold(tenant: string, jobId: string, createdAt: number, priority = 0): Promise<void> {
    await hold(
      this.redis,
      [
        this.keys.heldJobs(this.queue, tenant),
        this.keys.heldTenants(this.queue),
        this.keys.heldSequence(this.queue),
      ],
      [member(createdAt, jobId), priority, tenant],
    );
  }

  /** Takes a job out of its tenant's held set (canceled, or never added). */
  async unhold(tenant: string, jobId: string, createdAt: number): Promise<void> {
    await this.redis.zrem(this.keys.heldJobs(this.queue, tenant), member(createdAt, jobId));
  }

  /** Counts a job as running for its tenant from now (a worker took it). */
  async started(tenant: string, jobId: string): Promise<void> {
    await this.redis.zadd(this.keys.runningJobs(this.queue), Date.now(), `${jobId}:${tenant}`);
  }

  /**
   * Dispatches held jobs to free executors; `ended` first stops counting a job
   * whose attempt is over, `registration` first (re)registers a worker's executors.
   * Resolves with the number of jobs dispatched.
   */
  async dispatch(
    options: {
      ended?: { tenant: string; jobId: string };
      registration?: ExecutorRegistration;
    } = {},
  ): Promise<number> {
    const { ended, registration } = options;
    const k = this.bullKeys;
    return (await dispatchScript(
      this.redis,
      [
        this.keys.heldTenants(this.queue),
        this.keys.runningJobs(this.queue),
        this.keys.queueExecutors(this.queue),
        k.delayed as string,
        k.wait as string,
        k.meta as string,
        k.prioritized as string,
        k.active as string,
        k.pc as string,
        k.events as string,
        k.marker as string,
      ],
      [
        this.keys.heldJobs(this.queue, ''),
        k[''] as string,
        ended ? `${ended.jobId}:${ended.tenant}` : '',
        registration?.workerId ?? '',
        registration ? `${registration.executors}:${registration.maxRunningPerTenant}` : '',
        registration?.ttlMs ?? 0,
        UNLOCKED_GRACE_MS,
        SUBMIT_GRACE_MS,
      ],
    )) as number;
  }

  /** A worker stops serving the queue: its executors no longer count. */
  async unregister(workerId: string): Promise<void> {
    await this.redis.hdel(this.keys.queueExecutors(this.queue), workerId);
  }
}

function member(createdAt: number, jobId: string): string {
  return `${createdAt}:${jobId}`;
}

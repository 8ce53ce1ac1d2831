import { QueueKeys } from 'bullmq';
import type { RedisClient } from './connection.ts';
import type { OffloadKeys } from './keys.ts';
import { luaScript } from './lua-script.ts';

/**
 * Fair share across tenants (DESIGN.md §4) on open-source BullMQ, which serves
 * a queue in arrival (or priority) order only and has no groups. Written here
 * because no library does it on BullMQ's own keys.
 *
 * BullMQ's wait list is the queue's **lane**. While one tenant alone has jobs
 * in it and no job is held, that tenant's jobs go straight into it, as with
 * plain BullMQ: a tenant alone gets every executor at BullMQ's own cost.
 *
 * A job submitted while another tenant's jobs wait in the lane (or jobs are
 * held already, or a per-tenant cap is set) is **held**: added to BullMQ as a
 * delayed job due in ten years, so BullMQ keeps its one record and reading,
 * listing and canceling work as for any job, and its id goes into its
 * tenant's held set. Held jobs are **dispatched** one at a time to the front
 * of the lane (the next job a worker takes):
 *
 * - when an attempt ends, before BullMQ fetches that worker's next job: the
 *   oldest held job of the tenant with the fewest running, unless the job at
 *   the front of the lane belongs to a tenant with fewer (ties: the job that
 *   waited longest);
 * - when a job starts, or a held job is submitted, or a worker beats, if the
 *   lane is empty: so idle executors fill one after another, and exactly one
 *   job waits in the lane while every executor is busy.
 *
 * Running counts are kept per tenant from the jobs workers start (and the
 * jobs dispatched, so a cap holds before they start); a job that never comes
 * back to its worker (its worker was lost too often, it was removed) stops
 * counting at the next reconcile, at most every RECONCILE_EVERY_MS.
 */

/**
 * How far in the future a held job is due, ms (10 years): far enough never to
 * come due, near enough that BullMQ's delayed score (ms × 4096) stays an exact
 * double. A job whose `delay` equals it is held.
 */
export const HELD_DELAY_MS = 10 * 365 * 24 * 60 * 60 * 1000;

/** A held id whose job does not exist yet is only dropped once it is this old, ms: its submit may be under way. */
const SUBMIT_GRACE_MS = 10_000;
/** How often, at most, one worker of the fleet drops counted jobs that are finished or gone, ms. */
const RECONCILE_EVERY_MS = 5_000;
/** Counted jobs one reconcile looks at, oldest first. */
const RECONCILE_BATCH = 1000;

/** True for a job added held and not dispatched yet (its public state is `queued`). */
export function isHeld(job: { delay: number | string | undefined }): boolean {
  return Number(job.delay) === HELD_DELAY_MS;
}

/**
 * One script, five entry points (ARGV[1]):
 * - `admit` (submit): for each job, 1 when it must be held (its id is now in
 *   its tenant's held set), 0 when it goes straight to the lane.
 * - `start` / `end` (worker): the job counts as running / no longer does,
 *   then dispatches as described above.
 * - `refill` (after a held submit): dispatches if the lane is empty.
 * - `beat` (every worker, every few seconds): publishes its cap, reconciles
 *   (gated fleet-wide), refills.
 *
 * A dispatch repeats BullMQ's own promotion (promote-9.lua, BullMQ 6): out of
 * the delayed set, into the wait list (at the front: RPUSH, as BullMQ's LIFO
 * add), the marker that wakes workers, the `waiting` event, `delay` 0.
 *
 * KEYS: state, held tenants, running, counts, then BullMQ's delayed, wait,
 * meta, prioritized, active, events, marker.
 * ARGV: mode, now (ms, the caller's clock), held-set key prefix, BullMQ job key prefix, then
 * admit: tenant, then each job's id, created at (ms) and priority;
 * start, end: tenant, job id;
 * beat: cap (0 = none), cap ttl (ms).
 */
const FAIR = `
local rcall = redis.call
local mode, now, heldPrefix, jobPrefix = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local stateKey, tenantsKey, runningKey, countsKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local delayedKey, waitKey, metaKey, prioritizedKey = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local activeKey, eventsKey, markerKey = KEYS[9], KEYS[10], KEYS[11]

-- The job a worker takes next: BullMQ takes from the wait list's right end, then by priority.
local function laneHead()
  return rcall('LINDEX', waitKey, -1) or rcall('ZRANGE', prioritizedKey, 0, 0)[1]
end

-- MAX_RUNNING_PER_TENANT as live workers published it; 0 = none.
local function capOf(fields)
  if fields[1] and tonumber(fields[2]) >= now then return tonumber(fields[1]) end
  return 0
end

local function runningOf(tenant)
  return tonumber(rcall('HGET', countsKey, tenant) or '0')
end

local function count(tenant, id)
  if rcall('ZADD', runningKey, now, id .. ':' .. tenant) == 1 then
    rcall('HINCRBY', countsKey, tenant, 1)
  end
end

local function uncount(member, tenant)
  if rcall('ZREM', runningKey, member) == 1 and rcall('HINCRBY', countsKey, tenant, -1) <= 0 then
    rcall('HDEL', countsKey, tenant)
  end
end

-- A tenant's next held job: { member, createdAt, id }, or false when none is ready.
local function headOf(tenant)
  local key = heldPrefix .. tenant
  while true do
    local head = rcall('ZRANGE', key, 0, 0)[1]
    if head == nil then
      rcall('SREM', tenantsKey, tenant)
      return false
    end
    local createdAt, id = string.match(head, '^(%d+):(.+)$')
    if id and rcall('ZSCORE', delayedKey, id) then return { head, tonumber(createdAt), id } end
    if id and rcall('EXISTS', jobPrefix .. id) == 0 and tonumber(createdAt) >= now - ${SUBMIT_GRACE_MS} then
      return false
    end
    -- Canceled, removed, promoted by hand, or never added: nothing to dispatch.
    rcall('ZREM', key, head)
  end
end

-- Moves the fairest held job to the front of the lane. With compare, only if
-- its tenant has fewer running than the owner of the job at the front already
-- (ties: the one that waited longer). Answers 1 when a job moved.
local function dispatchOne(compare)
  local cap = capOf(rcall('HMGET', stateKey, 'cap', 'capUntil'))
  local best, bestRunning, bestHead
  for _, tenant in ipairs(rcall('SMEMBERS', tenantsKey)) do
    local head = headOf(tenant)
    if head then
      local n = runningOf(tenant)
      if (cap == 0 or n < cap) and
          (best == nil or n < bestRunning or (n == bestRunning and head[2] < bestHead[2])) then
        best, bestRunning, bestHead = tenant, n, head
      end
    end
  end
  if best == nil then return 0 end
  if compare then
    local front = laneHead()
    if front then
      local fields = rcall('HMGET', jobPrefix .. front, 'data', 'timestamp')
      -- Offload writes the tenant first in a job's data (job-queues.ts).
      local owner = fields[1] and string.match(fields[1], '^{"tenant":"([^"]+)"')
      if owner then
        local n = runningOf(owner)
        if n < bestRunning or (n == bestRunning and (tonumber(fields[2]) or 0) <= bestHead[2]) then
          return 0
        end
      end
    end
  end
  local id = bestHead[3]
  local jobKey = jobPrefix .. id
  rcall('ZREM', heldPrefix .. best, bestHead[1])
  if rcall('ZCARD', heldPrefix .. best) == 0 then rcall('SREM', tenantsKey, best) end
  rcall('ZREM', delayedKey, id)
  rcall('RPUSH', waitKey, id)
  local meta = rcall('HMGET', metaKey, 'paused', 'concurrency')
  if not (meta[1] or (meta[2] and rcall('LLEN', activeKey) >= tonumber(meta[2]))) then
    rcall('ZADD', markerKey, 0, '0')
  end
  rcall('XADD', eventsKey, '*', 'event', 'waiting', 'jobId', id, 'prev', 'delayed')
  rcall('HSET', jobKey, 'delay', 0)
  count(best, id)
  return 1
end

local function refill()
  if rcall('SCARD', tenantsKey) > 0 and not laneHead() then return dispatchOne(false) end
  return 0
end

if mode == 'admit' then
  local tenant = ARGV[5]
  local state = rcall('HMGET', stateKey, 'cap', 'capUntil', 'lane')
  local capped, lane = capOf(state) > 0, state[3]
  local held = {}
  for i = 6, #ARGV, 3 do
    local hold = capped or rcall('SCARD', tenantsKey) > 0
    if not hold and lane ~= tenant then
      if laneHead() then
        hold = true
      else
        lane = tenant
        rcall('HSET', stateKey, 'lane', tenant)
      end
    end
    if hold then
      local sequence = rcall('HINCRBY', stateKey, 'sequence', 1)
      rcall('ZADD', heldPrefix .. tenant, tonumber(ARGV[i + 2]) * 0x100000000 + sequence % 0x100000000,
        ARGV[i + 1] .. ':' .. ARGV[i])
      rcall('SADD', tenantsKey, tenant)
    end
    held[#held + 1] = hold and 1 or 0
  end
  return held
elseif mode == 'start' then
  count(ARGV[5], ARGV[6])
  return refill()
elseif mode == 'end' then
  uncount(ARGV[6] .. ':' .. ARGV[5], ARGV[5])
  if rcall('SCARD', tenantsKey) > 0 then return dispatchOne(true) end
  return 0
elseif mode == 'refill' then
  return refill()
elseif mode == 'beat' then
  local cap, ttl = tonumber(ARGV[5]), tonumber(ARGV[6])
  if cap > 0 then
    local current = capOf(rcall('HMGET', stateKey, 'cap', 'capUntil'))
    if current == 0 or cap <= current then rcall('HSET', stateKey, 'cap', cap, 'capUntil', now + ttl) end
  end
  if now - tonumber(rcall('HGET', stateKey, 'reconciled') or '0') >= ${RECONCILE_EVERY_MS} then
    rcall('HSET', stateKey, 'reconciled', now)
    for _, member in ipairs(rcall('ZRANGE', runningKey, 0, ${RECONCILE_BATCH - 1})) do
      local id, tenant = string.match(member, '^([^:]+):(.*)$')
      local jobKey = jobPrefix .. (id or '')
      if id == nil or rcall('EXISTS', jobKey) == 0 or rcall('HEXISTS', jobKey, 'finishedOn') == 1 then
        uncount(member, tenant or '')
      end
    end
  end
  return refill()
end
return redis.error_reply('unknown mode ' .. tostring(mode))
`;
const fair = luaScript('fair', 11, FAIR);

/** The fair-share bookkeeping of one queue (see above). */
export class FairShare {
  private readonly keyList: string[];
  private readonly heldPrefix: string;
  private readonly jobPrefix: string;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: OffloadKeys,
    readonly queue: string,
  ) {
    const bull = new QueueKeys(keys.queuePrefix(queue)).getKeys(queue);
    this.keyList = [
      keys.fairState(queue),
      keys.heldTenants(queue),
      keys.runningJobs(queue),
      keys.runningCounts(queue),
      ...(['delayed', 'wait', 'meta', 'prioritized', 'active', 'events', 'marker'] as const).map(
        (name) => bull[name] as string,
      ),
    ];
    this.heldPrefix = keys.heldJobs(queue, '');
    this.jobPrefix = bull[''] as string;
  }

  private run(mode: string, ...args: (string | number)[]): Promise<unknown> {
    return fair(this.redis, this.keyList, [
      mode,
      Date.now(),
      this.heldPrefix,
      this.jobPrefix,
      ...args,
    ]);
  }

  /**
   * Decides, before the jobs are added, whether each goes straight to BullMQ's
   * wait list (false) or is held (true: add it with HELD_DELAY_MS, then refill).
   */
  async admit(
    tenant: string,
    jobs: readonly { id: string; createdAt: number; priority?: number | undefined }[],
  ): Promise<boolean[]> {
    const held = (await this.run(
      'admit',
      tenant,
      ...jobs.flatMap((job) => [job.id, job.createdAt, job.priority ?? 0]),
    )) as unknown as number[];
    return held.map((flag) => flag === 1);
  }

  /** Takes a job out of its tenant's held set (canceled, or never added). */
  async unhold(tenant: string, jobId: string, createdAt: number): Promise<void> {
    await this.redis.zrem(this.keys.heldJobs(this.queue, tenant), `${createdAt}:${jobId}`);
  }

  /** A held job was added: it moves to the lane at once if the lane is empty. */
  async refill(): Promise<void> {
    await this.run('refill');
  }

  /** A worker started the job: it counts for its tenant, and an empty lane gets the next held job. */
  async started(tenant: string, jobId: string): Promise<void> {
    await this.run('start', tenant, jobId);
  }

  /** The job's attempt ended: the executor it frees takes the fairest job next. */
  async ended(tenant: string, jobId: string): Promise<void> {
    await this.run('end', tenant, jobId);
  }

  /** A worker's periodic call: its cap (MAX_RUNNING_PER_TENANT, 0 = none) lasts `ttlMs`. */
  async beat(maxRunningPerTenant: number, ttlMs: number): Promise<void> {
    await this.run('beat', maxRunningPerTenant, ttlMs);
  }
}

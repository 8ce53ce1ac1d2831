import { randomBytes } from 'node:crypto';
import type { JobOptions, ScheduleView } from '@offload/contract';
import { guardRedis, type RedisClient } from './connection.ts';
import type { OffloadKeys } from './keys.ts';
import { luaScript } from './lua-script.ts';
import type { ScheduleTiming } from './schedule-timing.ts';

/**
 * Schedules in Redis: one hash per schedule, a per-tenant index, and one due
 * index (id → next firing, ms) that every firing loop reads (see
 * scheduler.ts). All under the `{sched}` hash tag, so each script below runs
 * on one shard. A firing is claimed by moving its schedule's score from the
 * firing time to the next one, compare-and-set: of all the processes that saw
 * it due, exactly one moves it, and only that one submits its job.
 */

/** Job ids a schedule remembers, latest first (GET /v1/schedules/{id} `recentJobs`). */
export const RECENT_JOBS_KEPT = 20;

/** A schedule as stored. */
export interface ScheduleRecord {
  id: string;
  tenant: string;
  task: string;
  input: unknown;
  options?: JobOptions;
  timing: ScheduleTiming;
  /** ms since epoch */
  createdAt: number;
  /** Why its latest firing made no job, if it did not. */
  lastError: string | null;
}

/** A firing one process has claimed and must submit: its schedule, and when it was due (ms). */
export interface Firing {
  scheduleId: string;
  firedAt: number;
}

/** The tenant already has its API_MAX_SCHEDULES_PER_TENANT schedules. */
export class ScheduleQuotaExceededError extends Error {
  override readonly name = 'ScheduleQuotaExceededError';
  constructor(readonly limit: number) {
    super(`Your tenant already has ${limit} schedules; delete one first`);
  }
}

/** KEYS: tenant index, record, due index. ARGV: id, limit (0: none), createdAt, nextRunAt, field, value, … */
const CREATE = `
local limit = tonumber(ARGV[2])
if limit > 0 and redis.call('ZCARD', KEYS[1]) >= limit then return 0 end
redis.call('HSET', KEYS[2], unpack(ARGV, 5))
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
return 1
`;
/** KEYS: tenant index, record, due index, recent jobs. ARGV: id, tenant. */
const DELETE = `
if redis.call('HGET', KEYS[2], 'tenant') ~= ARGV[2] then return 0 end
redis.call('DEL', KEYS[2], KEYS[4])
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
return 1
`;
/**
 * The claim. KEYS: due index, pending firings. ARGV: id, firedAt, next, now.
 * Wins only while the schedule is still due at `firedAt`: whoever moved it
 * first took this firing, and a deleted schedule has no score.
 */
const CLAIM = `
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) ~= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1] .. ' ' .. ARGV[2])
return 1
`;
/** Takes over a pending firing claimed at ARGV[2], unless another process did. KEYS: pending. ARGV: member, claimedAt, now. */
const RETAKE = `
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) ~= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
return 1
`;
/**
 * Settles a firing. KEYS: pending, record, recent jobs. ARGV: member,
 * firedAt, job id ('' for none), error ('' for none), jobs kept. A schedule
 * deleted meanwhile keeps nothing.
 */
const SETTLE = `
redis.call('ZREM', KEYS[1], ARGV[1])
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
if ARGV[3] ~= '' then
  redis.call('ZADD', KEYS[3], ARGV[2], ARGV[3])
  redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -tonumber(ARGV[5]) - 1)
end
if ARGV[4] ~= '' then redis.call('HSET', KEYS[2], 'lastError', ARGV[4])
else redis.call('HDEL', KEYS[2], 'lastError') end
return 1
`;
const create = luaScript('schedule_create', 3, CREATE);
const remove = luaScript('schedule_delete', 4, DELETE);
const claim = luaScript('schedule_claim', 2, CLAIM);
const retake = luaScript('schedule_retake', 1, RETAKE);
const settle = luaScript('schedule_settle', 3, SETTLE);

/** The hash fields of a record. */
function fieldsOf(record: ScheduleRecord): string[] {
  const { timing } = record;
  return [
    'tenant',
    record.tenant,
    'task',
    record.task,
    'input',
    JSON.stringify(record.input),
    'createdAt',
    String(record.createdAt),
    ...(record.options ? ['options', JSON.stringify(record.options)] : []),
    ...('everyMs' in timing
      ? ['everyMs', String(timing.everyMs)]
      : ['cron', timing.cron, 'timezone', timing.timezone]),
  ];
}

function recordOf(id: string, fields: Record<string, string>): ScheduleRecord | null {
  if (!fields.tenant || !fields.task || !fields.input || !fields.createdAt) return null;
  return {
    id,
    tenant: fields.tenant,
    task: fields.task,
    input: JSON.parse(fields.input) as unknown,
    ...(fields.options && { options: JSON.parse(fields.options) as JobOptions }),
    timing: fields.everyMs
      ? { everyMs: Number(fields.everyMs) }
      : { cron: fields.cron ?? '', timezone: fields.timezone ?? 'UTC' },
    createdAt: Number(fields.createdAt),
    lastError: fields.lastError ?? null,
  };
}

/** The schedule as its owner sees it. */
export function toScheduleView(
  record: ScheduleRecord,
  nextRunAt: number,
  recentJobs?: string[],
): ScheduleView {
  const { timing } = record;
  return {
    id: record.id,
    task: record.task,
    input: record.input,
    ...(record.options && { options: record.options }),
    ...('everyMs' in timing
      ? { everyMs: timing.everyMs, timezone: 'UTC' }
      : { cron: timing.cron, timezone: timing.timezone }),
    nextRunAt: new Date(nextRunAt).toISOString(),
    createdAt: new Date(record.createdAt).toISOString(),
    lastError: record.lastError,
    ...(recentJobs && { recentJobs }),
  };
}

/** A schedule with its next firing (ms), and its latest jobs when asked for. */
export interface StoredSchedule {
  record: ScheduleRecord;
  nextRunAt: number;
  recentJobs: string[];
}

export class Schedules {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: OffloadKeys,
  ) {}

  /** Stores a new schedule due at `nextRunAt`; throws ScheduleQuotaExceededError past `limit` (0: none). */
  async create(
    schedule: Omit<ScheduleRecord, 'id' | 'lastError'>,
    nextRunAt: number,
    limit: number,
  ): Promise<ScheduleRecord> {
    const record: ScheduleRecord = {
      ...schedule,
      id: randomBytes(12).toString('base64url'),
      lastError: null,
    };
    const { keys } = this;
    const created = await guardRedis(this.redis, () =>
      create(
        this.redis,
        [keys.tenantSchedules(record.tenant), keys.schedule(record.id), keys.scheduleDue],
        [record.id, limit, record.createdAt, nextRunAt, ...fieldsOf(record)],
      ),
    );
    if (created === 0) throw new ScheduleQuotaExceededError(limit);
    return record;
  }

  /** The tenant's schedule (any tenant's with null), or null. */
  async get(id: string, tenant: string | null): Promise<StoredSchedule | null> {
    const [found] = await guardRedis(this.redis, () => this.read([id], true));
    return found && (tenant === null || found.record.tenant === tenant) ? found : null;
  }

  /** The tenant's schedules, oldest first. */
  async list(tenant: string): Promise<StoredSchedule[]> {
    return guardRedis(this.redis, async () => {
      const ids = await this.redis.zrange(this.keys.tenantSchedules(tenant), 0, -1);
      return (await this.read(ids, false)).filter((found) => found !== null);
    });
  }

  /** Every tenant's schedules by next firing, the first `limit` with their latest jobs, and how many there are (the dashboard). */
  async listAll(limit: number): Promise<{ schedules: StoredSchedule[]; total: number }> {
    return guardRedis(this.redis, async () => {
      const [ids, total] = await Promise.all([
        this.redis.zrange(this.keys.scheduleDue, 0, limit - 1),
        this.redis.zcard(this.keys.scheduleDue),
      ]);
      const schedules = (await this.read(ids, true)).filter((found) => found !== null);
      return { schedules, total };
    });
  }

  /** Deletes the tenant's schedule (any tenant's with null); false when it has none by that id. */
  async delete(id: string, tenant: string | null): Promise<boolean> {
    const owner = tenant ?? (await this.get(id, null))?.record.tenant;
    if (owner === undefined) return false;
    const { keys } = this;
    const deleted = await guardRedis(this.redis, () =>
      remove(
        this.redis,
        [keys.tenantSchedules(owner), keys.schedule(id), keys.scheduleDue, keys.scheduleJobs(id)],
        [id, owner],
      ),
    );
    return deleted === 1;
  }

  /** Schedules due at `now` (at most `limit`), with the firing each is due for. */
  async due(now: number, limit: number): Promise<{ record: ScheduleRecord; firedAt: number }[]> {
    const flat = await this.redis.zrangebyscore(
      this.keys.scheduleDue,
      '-inf',
      now,
      'WITHSCORES',
      'LIMIT',
      0,
      limit,
    );
    const due: { id: string; firedAt: number }[] = [];
    for (let i = 0; i < flat.length; i += 2) {
      due.push({ id: flat[i] as string, firedAt: Number(flat[i + 1]) });
    }
    const records = await this.records(due.map((d) => d.id));
    return due.flatMap(({ firedAt }, i) => {
      const record = records[i];
      return record ? [{ record, firedAt }] : [];
    });
  }

  /** Claims the firing at `firedAt`, moving the schedule on to `next`: true for exactly one caller. */
  async claim({ scheduleId, firedAt }: Firing, next: number, now: number): Promise<boolean> {
    const { keys } = this;
    const won = await claim(
      this.redis,
      [keys.scheduleDue, keys.schedulePending],
      [scheduleId, firedAt, next, now],
    );
    return won === 1;
  }

  /**
   * Firings claimed before `claimedBefore` (ms) and not settled: their
   * claimer died, or failed to reach Redis, between claim and settle. Each is
   * retaken by exactly one caller, which submits it again.
   */
  async retakeStale(claimedBefore: number, now: number, limit: number): Promise<Firing[]> {
    const { keys } = this;
    const flat = await this.redis.zrangebyscore(
      keys.schedulePending,
      '-inf',
      claimedBefore,
      'WITHSCORES',
      'LIMIT',
      0,
      limit,
    );
    const taken: Firing[] = [];
    for (let i = 0; i < flat.length; i += 2) {
      const member = flat[i] as string;
      const won = await retake(
        this.redis,
        [keys.schedulePending],
        [member, flat[i + 1] as string, now],
      );
      const [scheduleId, firedAt] = member.split(' ');
      if (won === 1 && scheduleId && firedAt) taken.push({ scheduleId, firedAt: Number(firedAt) });
    }
    return taken;
  }

  /** The schedule of a claimed firing; null once deleted. */
  async record(id: string): Promise<ScheduleRecord | null> {
    return (await this.records([id]))[0] ?? null;
  }

  /** Ends a claimed firing: with the job it made, or with why it made none. */
  async settle(firing: Firing, outcome: { jobId: string } | { error: string }): Promise<void> {
    const { keys } = this;
    await settle(
      this.redis,
      [
        keys.schedulePending,
        keys.schedule(firing.scheduleId),
        keys.scheduleJobs(firing.scheduleId),
      ],
      [
        `${firing.scheduleId} ${firing.firedAt}`,
        firing.firedAt,
        'jobId' in outcome ? outcome.jobId : '',
        'error' in outcome ? outcome.error : '',
        RECENT_JOBS_KEPT,
      ],
    );
  }

  private async records(ids: readonly string[]): Promise<(ScheduleRecord | null)[]> {
    if (ids.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.hgetall(this.keys.schedule(id));
    const answers = (await pipeline.exec()) ?? [];
    return ids.map((id, i) => {
      const [err, fields] = answers[i] ?? [];
      if (err) throw err;
      return recordOf(id, fields as Record<string, string>);
    });
  }

  /** Records, next firings and (with `withJobs`) latest jobs, in one round trip. */
  private async read(
    ids: readonly string[],
    withJobs: boolean,
  ): Promise<(StoredSchedule | null)[]> {
    if (ids.length === 0) return [];
    const { keys } = this;
    const pipeline = this.redis.pipeline();
    for (const id of ids) {
      pipeline.hgetall(keys.schedule(id)).zscore(keys.scheduleDue, id);
      if (withJobs) pipeline.zrevrange(keys.scheduleJobs(id), 0, RECENT_JOBS_KEPT - 1);
    }
    const answers = (await pipeline.exec()) ?? [];
    for (const [err] of answers) if (err) throw err;
    const per = withJobs ? 3 : 2;
    return ids.map((id, i) => {
      const [, fields] = answers[per * i] ?? [];
      const [, score] = answers[per * i + 1] ?? [];
      const [, jobs] = answers[per * i + 2] ?? [];
      const record = recordOf(id, fields as Record<string, string>);
      if (!record || score === null || score === undefined) return null;
      return {
        record,
        nextRunAt: Number(score),
        recentJobs: withJobs ? (jobs as string[]) : [],
      };
    });
  }
}

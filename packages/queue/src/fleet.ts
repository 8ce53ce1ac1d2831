import type { RedisClient } from './connection.ts';
import type { OffloadKeys } from './keys.ts';

/** What each worker process publishes about itself, every HEARTBEAT_EVERY_MS. */
export interface WorkerHeartbeat {
  id: string;
  host: string;
  pid: number;
  queues: string[];
  /** Task versions this worker runs, as `name fingerprint` (see catalog.ts). Absent from workers older than the catalog. */
  tasks?: string[];
  concurrency: number;
  running: { jobId: string; task: string; startedAt: string }[];
  jobsDone: number;
  startedAt: string;
  lastSeenAt: string;
}

export const HEARTBEAT_EVERY_MS = 5000;
/** A worker silent for this long is gone, ms: three missed beats. */
export const HEARTBEAT_TTL_MS = 3 * HEARTBEAT_EVERY_MS;

export async function writeHeartbeat(
  redis: RedisClient,
  keys: OffloadKeys,
  beat: WorkerHeartbeat,
): Promise<void> {
  const now = Date.now();
  await redis
    .multi()
    .set(keys.heartbeat(beat.id), JSON.stringify(beat), 'PX', HEARTBEAT_TTL_MS)
    .zadd(keys.fleet, now + HEARTBEAT_TTL_MS, beat.id)
    .zremrangebyscore(keys.fleet, '-inf', now)
    .exec();
}

export async function removeHeartbeat(
  redis: RedisClient,
  keys: OffloadKeys,
  id: string,
): Promise<void> {
  await redis.multi().del(keys.heartbeat(id)).zrem(keys.fleet, id).exec();
}

export async function countLiveWorkers(redis: RedisClient, keys: OffloadKeys): Promise<number> {
  return redis.zcount(keys.fleet, Date.now(), '+inf');
}

export async function readFleet(redis: RedisClient, keys: OffloadKeys): Promise<WorkerHeartbeat[]> {
  const ids = await redis.zrangebyscore(keys.fleet, Date.now(), '+inf');
  if (ids.length === 0) return [];
  const beats = await redis.mget(ids.map((id) => keys.heartbeat(id)));
  return beats.flatMap((beat) => (beat ? [JSON.parse(beat) as WorkerHeartbeat] : []));
}

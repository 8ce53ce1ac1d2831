import { randomUUID } from 'node:crypto';
import { guardRedis, type RedisClient } from './connection.ts';
import type { OffloadKeys } from './keys.ts';
import { luaScript } from './lua-script.ts';

/**
 * One process at a time per workflow: whoever advances or cancels it holds
 * keys.workflowLock(id), a key under the workflow's own hash tag that expires,
 * so a process that dies holding it holds it no longer than LOCK_MS.
 */

/** How long one process may hold a workflow to advance it, ms; one that dies holding it frees it then. */
const LOCK_MS = 10_000;
/** How long a cancel waits for another process advancing the workflow to let go, ms. */
const LOCK_WAIT_MS = 2000;

/** Frees the lock only if it is still this process's: one held past LOCK_MS may be another's now. */
const releaseLock = luaScript(
  'workflow_unlock',
  1,
  `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`,
);

/** Runs `work` holding the workflow's lock, unless another process holds it: false then. */
export async function withWorkflowLock(
  redis: RedisClient,
  keys: OffloadKeys,
  id: string,
  work: () => Promise<void>,
): Promise<boolean> {
  const lock = keys.workflowLock(id);
  const token = randomUUID();
  const got = await guardRedis(redis, () => redis.set(lock, token, 'PX', LOCK_MS, 'NX'));
  if (got === null) return false;
  try {
    await work();
  } finally {
    await guardRedis(redis, () => releaseLock(redis, [lock], [token])).catch(() => {});
  }
  return true;
}

/** withWorkflowLock, waiting up to LOCK_WAIT_MS for another process to let go: false if it never did. */
export async function waitForWorkflowLock(
  redis: RedisClient,
  keys: OffloadKeys,
  id: string,
  work: () => Promise<void>,
): Promise<boolean> {
  const until = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    if (await withWorkflowLock(redis, keys, id, work)) return true;
    if (Date.now() >= until) return false;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

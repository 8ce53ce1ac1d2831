import { createHash } from 'node:crypto';
import type { JobView } from '@offload/contract';
import type { RedisClient } from './connection.ts';
import type { OffloadKeys } from './keys.ts';
import { luaScript } from './lua-script.ts';

/** How long an Idempotency-Key keeps standing for its job, ms: a day, as Stripe does. */
export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;

/** What an Idempotency-Key stands for: the job (or workflow) it created and a hash of the request that created it. */
export interface IdempotencyRecord {
  /** The id of the job, or of the workflow, the key created. */
  jobId: string;
  /** sha256 of the request (task, input, options), hex: the same key with another request is a conflict. */
  requestHash: string;
}

/** The Idempotency-Key was used before with another request (or its first request never settled). */
export class IdempotencyConflictError extends Error {
  override readonly name = 'IdempotencyConflictError';
}

/** How long a repeated request waits for the first one to create its job, ms (creating takes a few ms). */
export const IDEMPOTENCY_WAIT_MS = 2000;
export const IDEMPOTENCY_POLL_MS = 20;
/** Claims tried before giving up; a claim is only retried after a first request failed or its job expired. */
const MAX_CLAIMS = 5;

/** What an Idempotency-Key creates once: a job (JobView) or a workflow (WorkflowView). */
export interface IdempotentSubmit<View> {
  redis: RedisClient;
  keys: OffloadKeys;
  tenant: string;
  key: string;
  requestHash: string;
  /** A fresh id for this tenant. */
  newJobId(): Promise<string>;
  /** Creates the job (or workflow) with this id (the claim's winner only). */
  create(jobId: string): Promise<View>;
  /** Its view, null until it exists. */
  viewOf(jobId: string): Promise<View | null>;
}

/**
 * Creates the job once per key, however many identical requests arrive at
 * once: the one that claims the key creates it, the others wait for it and
 * answer it (`created: false`). A request that differs from the first one
 * throws IdempotencyConflictError. A first request that failed frees the key,
 * so a retry is not stuck with an error.
 */
export async function submitIdempotently<View = JobView>(
  submit: IdempotentSubmit<View>,
): Promise<{ view: View; created: boolean }> {
  const { redis, keys, tenant, key, requestHash } = submit;
  for (let claim = 0; claim < MAX_CLAIMS; claim++) {
    const jobId = await submit.newJobId();
    const earlier = await claimIdempotencyKey(redis, keys, tenant, key, { jobId, requestHash });
    if (!earlier) {
      try {
        return { view: await submit.create(jobId), created: true };
      } catch (err) {
        await releaseIdempotencyKey(redis, keys, tenant, key, jobId).catch(() => {});
        throw err;
      }
    }
    if (earlier.requestHash !== requestHash) {
      throw new IdempotencyConflictError('This Idempotency-Key was used with another request');
    }
    const deadline = Date.now() + IDEMPOTENCY_WAIT_MS;
    for (;;) {
      const view = await submit.viewOf(earlier.jobId);
      if (view) return { view, created: false };
      const current = await readIdempotencyKey(redis, keys, tenant, key);
      if (current?.jobId !== earlier.jobId) break; // the first request failed and let go
      if (Date.now() > deadline) {
        // Its job never appeared (the first request died) or expired: free the key.
        await releaseIdempotencyKey(redis, keys, tenant, key, earlier.jobId);
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, IDEMPOTENCY_POLL_MS));
    }
  }
  throw new IdempotencyConflictError('A request with this Idempotency-Key is still in progress');
}

// Keys are client-chosen text of any length: hash them so the Redis key stays short and safe.
const keyOf = (keys: OffloadKeys, tenant: string, key: string) =>
  keys.idempotency(tenant, createHash('sha256').update(key).digest('hex'));

/**
 * Claims `key` for `record` atomically (SET NX): null when this caller won and
 * must create the job, else the record of whoever claimed it first.
 */
export async function claimIdempotencyKey(
  redis: RedisClient,
  keys: OffloadKeys,
  tenant: string,
  key: string,
  record: IdempotencyRecord,
): Promise<IdempotencyRecord | null> {
  const redisKey = keyOf(keys, tenant, key);
  const set = await redis.set(redisKey, JSON.stringify(record), 'PX', IDEMPOTENCY_TTL_MS, 'NX');
  if (set === 'OK') return null;
  const earlier = await redis.get(redisKey);
  // Expired between the two commands: try once more rather than report a record that is gone.
  if (earlier === null) return claimIdempotencyKey(redis, keys, tenant, key, record);
  return JSON.parse(earlier) as IdempotencyRecord;
}

/**
 * Claims many keys in one round trip: for each, null when this caller won it,
 * else the record of whoever claimed it first (see claimIdempotencyKey).
 */
export async function claimIdempotencyKeys(
  redis: RedisClient,
  keys: OffloadKeys,
  tenant: string,
  claims: readonly { key: string; record: IdempotencyRecord }[],
): Promise<(IdempotencyRecord | null)[]> {
  const pipeline = redis.pipeline();
  for (const { key, record } of claims) {
    const redisKey = keyOf(keys, tenant, key);
    pipeline.set(redisKey, JSON.stringify(record), 'PX', IDEMPOTENCY_TTL_MS, 'NX').get(redisKey);
  }
  const answers = (await pipeline.exec()) ?? [];
  return Promise.all(
    claims.map(async (claim, i) => {
      const [setError, set] = answers[2 * i] ?? [];
      const [getError, value] = answers[2 * i + 1] ?? [];
      if (setError) throw setError;
      if (set === 'OK') return null;
      if (getError) throw getError;
      // Expired between the two commands: claim it alone.
      if (value === null) return claimIdempotencyKey(redis, keys, tenant, claim.key, claim.record);
      return JSON.parse(value as string) as IdempotencyRecord;
    }),
  );
}

export async function readIdempotencyKey(
  redis: RedisClient,
  keys: OffloadKeys,
  tenant: string,
  key: string,
): Promise<IdempotencyRecord | null> {
  const value = await redis.get(keyOf(keys, tenant, key));
  return value === null ? null : (JSON.parse(value) as IdempotencyRecord);
}

/** Deletes the key when it still stands for `jobId` (its job could not be created, or is gone). */
const RELEASE = `
local value = redis.call('GET', KEYS[1])
if value and cjson.decode(value).jobId == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;
const release = luaScript('release_idempotency_key', 1, RELEASE);

export async function releaseIdempotencyKey(
  redis: RedisClient,
  keys: OffloadKeys,
  tenant: string,
  key: string,
  jobId: string,
): Promise<void> {
  await release(redis, [keyOf(keys, tenant, key)], [jobId]);
}

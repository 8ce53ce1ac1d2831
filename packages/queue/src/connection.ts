import type { Socket } from 'node:net';
import { Cluster, type ClusterOptions, Redis, type RedisOptions } from 'ioredis';

/**
 * Where Redis is: one server (REDIS_URL), or a Redis Cluster reached through
 * seed nodes (REDIS_CLUSTER_NODES, with REDIS_PASSWORD). Every process builds
 * its connections from one of these, never from a URL alone.
 */
export type RedisTarget =
  | { url: string }
  | { clusterNodes: readonly { host: string; port: number }[]; password?: string };

/** A connection to either kind of target: ioredis' Cluster speaks the same commands, routed by key slot. */
export type RedisClient = Redis | Cluster;

/**
 * How a process talks to Redis.
 * - `api`: fail fast. With Redis down or paused a request must answer 503 at
 *   once, never wait in ioredis' offline queue or retry loop.
 * - `worker`: wait forever. BullMQ's blocking commands need
 *   `maxRetriesPerRequest: null`, and a worker should ride out a Redis restart
 *   on its own instead of crashing.
 */
export type RedisRole = 'api' | 'worker';

/** Longest a single command may take in the API before it counts as Redis being unavailable, ms. */
export const API_COMMAND_TIMEOUT_MS = 1000;
/** How long a worker's command waits for a cluster failover to end before it fails, ms. */
const FAILOVER_RIDE_OUT_MS = 60_000;
/** Delay between reconnection attempts, ms; bounds how soon after Redis returns the processes notice. */
const RECONNECT_EVERY_MS = 250;

export function redisOptions(role: RedisRole): RedisOptions {
  const common: RedisOptions = {
    connectTimeout: 2000,
    retryStrategy: () => RECONNECT_EVERY_MS,
  };
  if (role === 'api') {
    return {
      ...common,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: API_COMMAND_TIMEOUT_MS,
    };
  }
  return { ...common, maxRetriesPerRequest: null, enableOfflineQueue: true };
}

/**
 * Cluster-level settings. The per-node options of `role` apply to each node's
 * connection; the offline queue and retries are also the cluster's own, so the
 * API fails fast there too. During a failover a node answers CLUSTERDOWN or
 * is unreachable until its replica is promoted: ioredis then refreshes the
 * slot map and, for the patient worker role, sends the command again.
 */
function clusterOptions(role: RedisRole, password: string | undefined): ClusterOptions {
  const node = { ...redisOptions(role), ...(password && { password }) };
  return {
    // Each retry of a command during a failover (node gone, CLUSTERDOWN, TRYAGAIN) spends one
    // redirection. The API's requests give up at guardRedis' deadline anyway; a worker's
    // calls ride out FAILOVER_RIDE_OUT_MS instead of failing the job they belong to.
    maxRedirections: role === 'worker' ? Math.ceil(FAILOVER_RIDE_OUT_MS / RECONNECT_EVERY_MS) : 16,
    redisOptions: node,
    enableOfflineQueue: node.enableOfflineQueue ?? true,
    clusterRetryStrategy: () => RECONNECT_EVERY_MS,
    retryDelayOnFailover: RECONNECT_EVERY_MS,
    retryDelayOnClusterDown: RECONNECT_EVERY_MS,
    retryDelayOnTryAgain: RECONNECT_EVERY_MS,
    slotsRefreshTimeout: 2000,
    // A node that disappears is noticed on the next command; the map is also refreshed every 5 s.
    slotsRefreshInterval: 5000,
  };
}

/**
 * Sends what one turn of the event loop writes to a connection in one system
 * call: the socket is corked at the turn's first command and uncorked once
 * the turn's promise callbacks have run (process.nextTick), so a job's calls
 * made together (its end in fair share, the ledger and BullMQ's finish; a
 * submit's quota and fair-share calls) reach Redis as one packet, which Redis reads
 * and answers once. Redis' CPU per job falls by about a fifth (bench
 * redis-cost). Unlike ioredis' auto-pipelining, which holds a batch back
 * until the one before it is answered, nothing waits for a reply: a job's
 * latency is unchanged.
 */
function coalesceWrites(redis: Redis): void {
  redis.on('connect', () => {
    const socket = (redis as unknown as { stream: Socket }).stream;
    const write = socket.write.bind(socket) as (...args: unknown[]) => boolean;
    let corked = false;
    const uncork = () => {
      corked = false;
      socket.uncork();
    };
    socket.write = ((...args: unknown[]) => {
      if (!corked) {
        corked = true;
        socket.cork();
        process.nextTick(uncork);
      }
      return write(...args);
    }) as Socket['write'];
  });
}

export function createRedis(target: RedisTarget, role: RedisRole): RedisClient {
  const redis =
    'url' in target
      ? new Redis(target.url, redisOptions(role))
      : new Cluster([...target.clusterNodes], clusterOptions(role, target.password));
  // Without a listener ioredis prints every failed reconnect; the owner logs state changes instead.
  redis.on('error', () => {});
  if (redis instanceof Cluster) redis.on('+node', (node: Redis) => coalesceWrites(node));
  else coalesceWrites(redis);
  return redis;
}

/** Whether the target is a Redis Cluster. */
export function isCluster(redis: RedisClient): redis is Cluster {
  return redis instanceof Cluster;
}

/**
 * Waits until `replicas` replicas hold every write made so far on the node
 * serving `slotKey` (Redis WAIT), at most `timeoutMs`; answers how many did.
 * On a cluster WAIT must reach that key's primary: it rides in a pipeline
 * with a read of the key, which ioredis routes by the key's slot.
 */
export async function waitForReplicas(
  redis: RedisClient,
  slotKey: string,
  replicas: number,
  timeoutMs: number,
): Promise<number> {
  const answers = await redis.pipeline().exists(slotKey).wait(replicas, timeoutMs).exec();
  const [err, acked] = answers?.[1] ?? [new Error('WAIT got no answer'), 0];
  // The writes were acknowledged; the connection closing during WAIT (the primary killed, say)
  // leaves their replication unconfirmed, which is what 0 says.
  if (err && isRedisUnavailable(err)) return 0;
  if (err) throw err;
  return Number(acked);
}

/**
 * With REDIS_MIN_REPLICAS_ACK: the primary took the jobs but fewer replicas
 * than asked confirmed them in time, so a failover now could lose them. The
 * jobs stay (they may run); the client is told to check or retry under the
 * same Idempotency-Key.
 */
export class NotReplicatedError extends Error {
  override readonly name = 'NotReplicatedError';
}

/** Raised in place of connection errors so the API can answer 503 instead of 500. */
export class RedisUnavailableError extends Error {
  override readonly name = 'RedisUnavailableError';
}

/**
 * Raised in place of Redis' OOM error (maxmemory reached under `noeviction`):
 * Redis answers but refuses to store more, so the API answers 503
 * `redis_out_of_memory`, not `redis_unavailable`. Carries no part of the
 * refused command: ioredis' errors name its arguments, which hold job data.
 */
export class RedisOutOfMemoryError extends Error {
  override readonly name = 'RedisOutOfMemoryError';
}

const UNAVAILABLE =
  /Connection is closed|Command aborted due to connection close|enableOfflineQueue|Stream isn't writeable|Command timed out|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|MaxRetriesPerRequest|LOADING|CLUSTERDOWN|READONLY|MISCONF|TRYAGAIN|Too many Cluster redirections|refresh slots cache|None of startup nodes|Cluster isn't ready|MASTERDOWN|NOREPLICAS/;
/** Redis' answer to a write past maxmemory, also when a Lua script (BullMQ's) hits it. */
const OUT_OF_MEMORY = /OOM command not allowed/;

export function isRedisUnavailable(err: unknown): boolean {
  if (err instanceof RedisUnavailableError) return true;
  if (!(err instanceof Error)) return false;
  return err.name === 'MaxRetriesPerRequestError' || UNAVAILABLE.test(err.message);
}

export function isRedisOutOfMemory(err: unknown): boolean {
  if (err instanceof RedisOutOfMemoryError) return true;
  return err instanceof Error && OUT_OF_MEMORY.test(err.message);
}

/** Resolves when a connection being opened is ready; rejects as soon as that attempt fails. */
function connected(redis: RedisClient): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (err?: Error) => {
      redis.off('ready', onReady);
      redis.off('close', onClose);
      if (err) reject(err);
      else resolve();
    };
    const onReady = () => done();
    const onClose = () =>
      done(new RedisUnavailableError('Redis is unavailable (connection refused)'));
    redis.once('ready', onReady);
    redis.once('close', onClose);
  });
}

/** Connection states in which nothing can be sent; a connection still being opened is waited for. */
const DOWN = new Set(['reconnecting', 'close', 'end']);

/**
 * Runs a Redis operation for the API, turning a connection failure into
 * RedisUnavailableError, at once when the connection is known to be down and
 * after `timeoutMs` at the latest: BullMQ waits for a connection to be ready
 * before it sends anything, which with Redis down would be forever.
 */
export async function guardRedis<T>(
  redis: RedisClient,
  operation: () => Promise<T>,
  timeoutMs = 2 * API_COMMAND_TIMEOUT_MS,
): Promise<T> {
  if (DOWN.has(redis.status)) {
    throw new RedisUnavailableError(`Redis is unavailable (connection ${redis.status})`);
  }
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new RedisUnavailableError(`Redis did not answer within ${timeoutMs} ms`)),
      timeoutMs,
    );
  });
  try {
    if (redis.status !== 'ready') await Promise.race([connected(redis), deadline]);
    return await Promise.race([operation(), deadline]);
  } catch (err) {
    // New errors without the original as cause: ioredis' message and fields carry the command's arguments.
    if (isRedisOutOfMemory(err) && !(err instanceof RedisOutOfMemoryError)) {
      throw new RedisOutOfMemoryError('Redis is out of memory (maxmemory reached)');
    }
    if (isRedisUnavailable(err) && !(err instanceof RedisUnavailableError)) {
      throw new RedisUnavailableError(`Redis is unavailable: ${firstLine((err as Error).message)}`);
    }
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/** The head of a Redis error message, before ioredis' ". [command args…]" detail or a script's trace. */
function firstLine(message: string): string {
  return message.split(/\n|\. \[|Command: /)[0] ?? message;
}

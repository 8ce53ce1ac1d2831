import type { RedisClient } from './connection.ts';

/** Runs the script on `redis` with these keys and arguments. */
type LuaScript = (
  redis: RedisClient,
  keys: readonly string[],
  args: readonly (string | number)[],
) => Promise<unknown>;

type Command = (...keysThenArgs: (string | number)[]) => Promise<unknown>;

/** Every script luaScript made: module-level constants, so all of them exist before a connection does. */
const scripts = new Map<string, { numberOfKeys: number; lua: string }>();

/**
 * Defines every one of Offload's scripts on a new connection (createRedis).
 * With auto-pipelining, ioredis batches a turn's commands into a pipeline
 * that knows only the commands defined when it was made; a script defined
 * later could not ride in a batch made before it (and one may wait behind
 * another batch still in flight): so they are all defined up front.
 */
export function defineScripts(redis: RedisClient): void {
  for (const [command, { numberOfKeys, lua }] of scripts) {
    if (!(command in redis)) redis.defineCommand(command, { numberOfKeys, lua });
  }
}

/**
 * One of Offload's own Lua scripts. ioredis sends it by its SHA (EVALSHA) and
 * in full only when Redis does not know it yet; a script sent whole on every
 * call (EVAL) costs its text on the wire and a hash in Redis each time, on the
 * API's submit path. The connection must come from createRedis (see defineScripts).
 */
export function luaScript(name: string, numberOfKeys: number, lua: string): LuaScript {
  const command = `offload_${name}`;
  scripts.set(command, { numberOfKeys, lua });
  return (redis, keys, args) => {
    const run = (redis as unknown as Record<string, Command | undefined>)[command];
    if (!run)
      throw new Error(
        `Redis connection without Offload's scripts (${command}): make it with createRedis`,
      );
    return run.call(redis, ...keys, ...args);
  };
}

import type { RedisClient } from './connection.ts';

/** Runs the script on `redis` with these keys and arguments. */
type LuaScript = (
  redis: RedisClient,
  keys: readonly string[],
  args: readonly (string | number)[],
) => Promise<unknown>;

type Command = (...keysThenArgs: (string | number)[]) => Promise<unknown>;

/**
 * One of Offload's own Lua scripts. ioredis sends it by its SHA (EVALSHA) and
 * in full only when Redis does not know it yet; a script sent whole on every
 * call (EVAL) costs its text on the wire and a hash in Redis each time, on the
 * API's submit path.
 */
export function luaScript(name: string, numberOfKeys: number, lua: string): LuaScript {
  const command = `offload_${name}`;
  return (redis, keys, args) => {
    if (!(command in redis)) redis.defineCommand(command, { numberOfKeys, lua });
    const run = (redis as unknown as Record<string, Command>)[command] as Command;
    return run.call(redis, ...keys, ...args);
  };
}

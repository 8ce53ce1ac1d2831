import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRedis, type RedisClient } from '@offload/queue';
import { type PrivateRedis, startRedisServer } from '../../scripts/redis-server.ts';

/**
 * A redis-server of the test's own, on a free port and a temp dir, for faults
 * that would disturb everybody else: killing Redis, pausing it, changing its
 * configuration. The shared test Redis is never touched.
 */
export interface KillableRedis {
  readonly url: string;
  /** A plain client for setup and inspection (reconnects on its own). */
  readonly admin: RedisClient;
  /** SIGKILL: no shutdown, no final fsync; only what the AOF already holds survives. */
  kill(): Promise<void>;
  /** Starts redis-server again on the same port and data directory. */
  restart(): Promise<void>;
  close(): Promise<void>;
}

export async function startKillableRedis({ appendOnly = true } = {}): Promise<KillableRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'offload-fault-redis-'));
  let server: PrivateRedis = await startRedisServer({ dir, appendOnly });
  const { port, url } = server;
  const admin = createRedis({ url }, 'worker');
  const kill = () =>
    new Promise<void>((resolve) => {
      const child = server.process;
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });
  return {
    url,
    admin,
    kill,
    async restart() {
      server = await startRedisServer({ dir, port, appendOnly });
    },
    async close() {
      admin.disconnect();
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

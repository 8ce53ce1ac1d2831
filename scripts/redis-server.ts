import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { join } from 'node:path';

/** A redis-server this project started itself (for `npm start` without Redis, and for tests). */
export interface PrivateRedis {
  url: string;
  port: number;
  process: ChildProcess;
  stop(): Promise<void>;
}

export interface PrivateRedisOptions {
  /** Data directory; created if missing. */
  dir: string;
  /** 0 picks a free port. */
  port?: number;
  /** Keep an append-only file (fsync every second), as production should. */
  appendOnly?: boolean;
  /** Log to this file inside `dir`; unset keeps the log in memory for start-up errors only. */
  logFile?: string;
  /** More redis-server flags, e.g. cluster mode's (tests/support/redis-cluster.ts). */
  extraArgs?: readonly string[];
}

export function hasRedisServer(): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
}

/** Resolves true when something at host:port answers PING with PONG within `timeoutMs`. */
export function redisAnswers(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('error', () => done(false));
    socket.once('data', (data) => done(data.toString().startsWith('+PONG')));
    socket.connect(port, host, () => socket.write('PING\r\n'));
  });
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/**
 * Longest hash value Redis still stores in a compact listpack, bytes (Redis'
 * default: 64). A job's hash holds longer values (its data and options), so at
 * the default every job hash becomes a hashtable of about 1 KB; docker-compose.yml
 * sets the same value. bench/RESULTS.md (memory) has the measured saving.
 */
export const HASH_MAX_LISTPACK_VALUE = 1024;

/**
 * Starts redis-server bound to 127.0.0.1 with the settings a job queue needs:
 * `maxmemory-policy noeviction` (an evicting Redis silently loses jobs), compact
 * job hashes (HASH_MAX_LISTPACK_VALUE) and, when asked, AOF with fsync every second.
 */
export async function startRedisServer(options: PrivateRedisOptions): Promise<PrivateRedis> {
  mkdirSync(options.dir, { recursive: true });
  const port = options.port || (await freePort());
  // biome-ignore format: flag and value pairs read best one pair a line
  const args = [
    '--port', String(port),
    '--bind', '127.0.0.1',
    '--dir', options.dir,
    '--maxmemory-policy', 'noeviction',
    '--hash-max-listpack-value', String(HASH_MAX_LISTPACK_VALUE),
    '--save', '',
    '--appendonly', options.appendOnly ? 'yes' : 'no',
    '--appendfsync', 'everysec',
    ...(options.logFile ? ['--logfile', join(options.dir, options.logFile)] : []),
    ...(options.extraArgs ?? []),
  ];
  const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout?.on('data', (chunk) => {
    log = (log + chunk).slice(-4000);
  });
  child.stderr?.on('data', (chunk) => {
    log = (log + chunk).slice(-4000);
  });
  const deadline = Date.now() + 10_000;
  while (!(await redisAnswers('127.0.0.1', port, 200))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`redis-server did not start on port ${port}:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    process: child,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRedis, offloadKeys, type RedisClient, readFleet } from '@offload/queue';
import { Redis } from 'ioredis';
import { freePort, type PrivateRedis, startRedisServer } from '../../scripts/redis-server.ts';
import { type RunningProcess, startNodeProcess } from '../../tests/support/processes.ts';
import { BENCH_TASK_MODULES } from '../fixtures/bench-tasks.ts';
import { HttpClient, until } from './http-client.ts';
import { sleep } from './stats.ts';

/** A process the bench started, and how to reach it. */
export interface BenchProcess {
  pid: number;
  process: RunningProcess;
  stop(): Promise<void>;
}

export interface ApiProcess extends BenchProcess {
  url: string;
  http: HttpClient;
}

export interface ApiOptions {
  prefix: string;
  /**
   * `bundle`: the production bundle (apps/api/dist, plain node), as deployed.
   * `bench-tasks`: the same app under tsx with the bench's extra tasks (bench/fixtures/bench-tasks.ts).
   */
  flavour?: 'bundle' | 'bench-tasks';
  /** Extra environment (API_KEYS, API_MAX_STREAMS_PER_TENANT…). */
  env?: Record<string, string>;
}

export interface WorkerOptions {
  prefix: string;
  /** WORKER_CONCURRENCY: executor threads. */
  concurrency: number;
  flavour?: 'bundle' | 'bench-tasks';
  /** Extra environment (WORKER_NICE…). */
  env?: Record<string, string>;
}

/** Linux's USER_HZ, the unit of /proc/<pid>/stat's CPU times (100 on every mainstream kernel). */
const CLOCK_TICKS_PER_SECOND = 100;

/** Longest a process gets to stop on SIGTERM before it is killed, ms. */
const STOP_WITHIN_MS = 10_000;

/**
 * Everything a benchmark needs from the outside world: one Redis for the
 * whole run, a fresh key prefix per setup, and the real processes (API,
 * workers, baselines), each stopped when its benchmark is done and all of
 * them when the run ends, however it ends.
 */
export class BenchStack {
  readonly runPrefix = `bench-${randomBytes(4).toString('hex')}`;
  private readonly live = new Set<BenchProcess>();
  private prefixes = 0;

  private constructor(
    readonly redisUrl: string,
    /** Where the Redis comes from, for the report. */
    readonly redisKind: 'private' | 'given',
    readonly redis: RedisClient,
    private readonly owned: { server: PrivateRedis; dir: string } | undefined,
  ) {}

  /**
   * A private redis-server on a free port (no persistence), so other
   * people's traffic on a shared Redis does not skew the figures; or the
   * Redis at BENCH_REDIS_URL when given.
   */
  static async start(givenUrl: string | undefined): Promise<BenchStack> {
    if (givenUrl)
      return new BenchStack(givenUrl, 'given', createRedis({ url: givenUrl }, 'worker'), undefined);
    const dir = mkdtempSync(join(tmpdir(), 'offload-bench-redis-'));
    const server = await startRedisServer({ dir });
    return new BenchStack(server.url, 'private', createRedis({ url: server.url }, 'worker'), {
      server,
      dir,
    });
  }

  /** A key prefix no other setup of this run uses. */
  prefix(name: string): string {
    this.prefixes++;
    return `${this.runPrefix}-${name}${this.prefixes}`;
  }

  /**
   * A connection for a raw BullMQ baseline: ioredis with BullMQ's documented
   * options and nothing of Offload's (no auto-pipelining), as a BullMQ user
   * would open it, like bench/fixtures/raw-bullmq-worker.ts.
   */
  rawConnection(): Redis {
    return new Redis(this.redisUrl, { maxRetriesPerRequest: null });
  }

  async redisVersion(): Promise<string> {
    const info = await this.redis.info('server');
    return /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown';
  }

  async startApi(options: ApiOptions): Promise<ApiProcess> {
    // The load submits thousands of jobs delayed by an hour, all of tenant `dev`: no quota, no rate limit.
    const env = {
      ...this.baseEnv(options.prefix),
      API_MAX_QUEUED_PER_TENANT: '0',
      API_RATE_LIMIT: '0',
      ...options.env,
    };
    let url: string;
    let child: RunningProcess;
    if (options.flavour === 'bench-tasks') {
      child = startNodeProcess('bench/fixtures/bench-api.ts', env);
      const line = await child.waitForLine(/bench api listening/, 60_000);
      url = line.split(' ').at(-1)?.trim() ?? '';
    } else {
      const port = await freePort();
      child = startNodeProcess(
        'apps/api/dist/index.js',
        { ...env, PORT: String(port) },
        { tsx: false },
      );
      url = `http://127.0.0.1:${port}`;
    }
    const tracked = this.track(child);
    const http = new HttpClient(url);
    const api: ApiProcess = {
      ...tracked,
      url,
      http,
      stop: async () => {
        http.close();
        await tracked.stop();
      },
    };
    await until(
      `the API on ${url}`,
      () =>
        http.send('GET', '/healthz').then(
          (a) => a.status === 200,
          () => false,
        ),
      30_000,
      50,
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n${child.output()}`);
    });
    return api;
  }

  /** Starts a worker process and resolves once its heartbeat is in Redis (it takes jobs). */
  async startWorker(options: WorkerOptions): Promise<BenchProcess> {
    const env = {
      ...this.baseEnv(options.prefix),
      WORKER_CONCURRENCY: String(options.concurrency),
      WORKER_SHUTDOWN_GRACE_MS: '1000',
      ...options.env,
    };
    const child =
      options.flavour === 'bench-tasks'
        ? startNodeProcess('apps/worker/src/index.ts', {
            ...env,
            OFFLOAD_TASKS: BENCH_TASK_MODULES,
          })
        : startNodeProcess('apps/worker/dist/index.js', env, { tsx: false });
    const worker = this.track(child);
    const keys = offloadKeys(options.prefix);
    await until(
      `worker ${worker.pid}'s heartbeat`,
      async () => (await readFleet(this.redis, keys)).some((beat) => beat.pid === worker.pid),
      60_000,
      50,
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n${child.output()}`);
    });
    return worker;
  }

  /** Starts a bench fixture (under tsx) and resolves once it prints a line matching `ready`. */
  async startFixture(
    entry: string,
    env: Record<string, string>,
    ready: RegExp,
  ): Promise<BenchProcess & { readyLine: string }> {
    const child = startNodeProcess(entry, { REDIS_URL: this.redisUrl, ...env });
    const fixture = this.track(child);
    const readyLine = await child.waitForLine(ready, 60_000);
    return { ...fixture, readyLine };
  }

  /** CPU time a process has used so far, all its threads, user + system, seconds (Linux /proc). */
  cpuSeconds(pid: number): number {
    // Fields after the command name: state is the 3rd of stat, utime and stime its 14th and 15th.
    const fields = (readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1] ?? '').split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
  }

  /** CPU time the Redis server has used so far, every thread, seconds (INFO cpu). */
  async redisCpuSeconds(): Promise<number> {
    const info = await this.redis.info('cpu');
    const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1]);
    return field('used_cpu_user') + field('used_cpu_sys');
  }

  /** Resident set size of a process, bytes (Linux /proc). */
  rssBytes(pid: number): number {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = /VmRSS:\s+(\d+) kB/.exec(status)?.[1];
    if (!kb) throw new Error(`No VmRSS for process ${pid}`);
    return Number(kb) * 1024;
  }

  /** Stops every process still running, deletes this run's keys, stops a private Redis. */
  async close(): Promise<void> {
    await Promise.all([...this.live].map((p) => p.stop()));
    await this.deleteKeys(this.runPrefix).catch(() => {});
    this.redis.disconnect();
    if (this.owned) {
      await this.owned.server.stop();
      rmSync(this.owned.dir, { recursive: true, force: true });
    }
  }

  /** Deletes every key under `prefix` (never FLUSHDB: a given Redis may hold others' data). */
  async deleteKeys(prefix: string): Promise<void> {
    let cursor = '0';
    do {
      const [next, keys] = await this.redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await this.redis.unlink(...keys);
    } while (cursor !== '0');
  }

  private baseEnv(prefix: string): Record<string, string> {
    return { REDIS_URL: this.redisUrl, OFFLOAD_PREFIX: prefix, LOG_LEVEL: 'warn' };
  }

  private track(child: RunningProcess): BenchProcess {
    const pid = child.child.pid;
    if (pid === undefined) throw new Error('A bench process failed to start');
    const entry: BenchProcess = {
      pid,
      process: child,
      stop: async () => {
        this.live.delete(entry);
        const killer = setTimeout(() => child.child.kill('SIGKILL'), STOP_WITHIN_MS);
        await child.stop('SIGTERM');
        clearTimeout(killer);
        // Let the cores settle before whatever is measured next.
        await sleep(50);
      },
    };
    this.live.add(entry);
    return entry;
  }
}

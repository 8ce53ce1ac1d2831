import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { RedisTarget } from '@offload/queue';
import { redisEnv } from './redis-url.ts';
import { TEST_TASK_MODULES } from './test-tasks.ts';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** A fresh key prefix per test: isolation without flushing a Redis others may use. */
export function testPrefix(): string {
  return `t${randomBytes(5).toString('hex')}`;
}

export interface RunningProcess {
  child: ChildProcess;
  /** Everything it printed so far, stdout and stderr. */
  output(): string;
  /** Resolves with the first output line matching `pattern`. */
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Sends `signal` and resolves with the exit code once it has exited. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  exited: Promise<number | null>;
}

/**
 * Starts `node --import tsx <entry>` from the repository root with extra
 * environment; with `tsx: false`, plain `node <entry>` (a production bundle).
 */
export function startNodeProcess(
  entry: string,
  env: Record<string, string>,
  { tsx = true } = {},
): RunningProcess {
  const child = spawn(process.execPath, [...(tsx ? ['--import', 'tsx'] : []), entry], {
    cwd: ROOT,
    env: { ...process.env, NODE_ENV: 'test', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const listeners = new Set<() => void>();
  const onData = (chunk: Buffer) => {
    output += chunk.toString();
    for (const listener of listeners) listener();
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  );
  return {
    child,
    exited,
    output: () => output,
    waitForLine(pattern, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const line = output.split('\n').find((l) => pattern.test(l));
          if (line !== undefined) {
            cleanup();
            resolve(line);
          }
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`No line matched ${pattern} in ${timeoutMs} ms. Output:\n${output}`));
        }, timeoutMs);
        const onExit = () => {
          check();
          cleanup();
          reject(new Error(`Process exited before printing ${pattern}. Output:\n${output}`));
        };
        const cleanup = () => {
          clearTimeout(timer);
          listeners.delete(check);
          child.off('exit', onExit);
        };
        listeners.add(check);
        child.once('exit', onExit);
        check();
      });
    },
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

export interface WorkerProcessEnv {
  redis: RedisTarget;
  prefix: string;
  concurrency?: number;
  queues?: string;
  graceMs?: number;
  /** Serve the misbehaving test tasks as well as the built-ins. */
  testTasks?: boolean;
  /** OFFLOAD_TASKS; overrides testTasks. */
  tasks?: string;
  /** More environment, e.g. WORKER_EXECUTOR_MEMORY_MB. */
  env?: Record<string, string>;
}

/** Starts a real worker process and waits until it takes jobs. */
export async function startWorkerProcess(options: WorkerProcessEnv): Promise<RunningProcess> {
  const tasks = options.tasks ?? (options.testTasks ? TEST_TASK_MODULES : undefined);
  const worker = startNodeProcess('apps/worker/src/index.ts', {
    ...redisEnv(options.redis),
    OFFLOAD_PREFIX: options.prefix,
    WORKER_CONCURRENCY: String(options.concurrency ?? 2),
    WORKER_SHUTDOWN_GRACE_MS: String(options.graceMs ?? 5000),
    LOG_LEVEL: 'info',
    ...(options.queues && { WORKER_QUEUES: options.queues }),
    ...(tasks && { OFFLOAD_TASKS: tasks }),
    ...options.env,
  });
  // Starting under tsx takes a few seconds, many more on a loaded machine.
  await worker.waitForLine(/worker ready/, 60_000);
  return worker;
}

/** Whether a process is alive, a zombie counting as gone. */
export function isAlive(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Resolves with the ms it took once `check` holds; rejects after `timeoutMs`. */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
): Promise<number> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > timeoutMs)
      throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return Date.now() - started;
}

/**
 * Starts a worker that must refuse to start; resolves with the fatal lines it
 * printed about OFFLOAD_TASKS, after checking it exited 1 without taking jobs.
 */
export async function refusedWorker(env: Record<string, string>): Promise<string[]> {
  const started = startNodeProcess('apps/worker/src/index.ts', { WORKER_CONCURRENCY: '1', ...env });
  const code = await started.exited;
  if (code !== 1) throw new Error(`the worker exited ${code}, not 1:\n${started.output()}`);
  if (/worker ready/.test(started.output())) throw new Error('the worker took jobs before exiting');
  return started
    .output()
    .split('\n')
    .filter((line) => line.includes('OFFLOAD_TASKS entry'))
    .map((line) => (JSON.parse(line) as { msg: string }).msg);
}

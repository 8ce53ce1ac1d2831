import { connect, type Socket } from 'node:net';
import { registry } from '@offload/tasks';
import { freePort } from '../../scripts/redis-server.ts';
import { publishTasks } from '../support/api-server.ts';
import { type RunningProcess, startNodeProcess, testPrefix } from '../support/processes.ts';
import { redisEnv, testRedis } from '../support/redis-url.ts';

export interface ApiProcess {
  url: string;
  port: number;
  /** Its OFFLOAD_PREFIX. */
  prefix: string;
  process: RunningProcess;
  /** Every JSON log line it printed so far. */
  logLines(): { level: number; msg: string }[];
  stop(): Promise<void>;
}

/**
 * The API as deployed: `apps/api/src/index.ts` in its own process, with the
 * built-in tasks in its catalog and `env` on top of a fresh prefix (or the
 * REDIS_URL and OFFLOAD_PREFIX `env` names).
 */
export async function startApiProcess(env: Record<string, string> = {}): Promise<ApiProcess> {
  const port = await freePort();
  const target = env.REDIS_URL ? { url: env.REDIS_URL } : testRedis();
  const prefix = env.OFFLOAD_PREFIX ?? testPrefix();
  await publishTasks(target, prefix, registry);
  const api = startNodeProcess('apps/api/src/index.ts', {
    ...redisEnv(target),
    OFFLOAD_PREFIX: prefix,
    PORT: String(port),
    LOG_LEVEL: 'info',
    ...env,
  });
  await api.waitForLine(/api listening/);
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    prefix,
    process: api,
    logLines: () =>
      api
        .output()
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as { level: number; msg: string }),
    async stop() {
      await api.stop('SIGKILL');
    },
  };
}

export interface RawConnection {
  socket: Socket;
  /** Everything the server sent so far. */
  received(): string;
  /** Resolves when the server has sent `text`. */
  waitFor(text: string | RegExp, timeoutMs?: number): Promise<void>;
  /** Resolves with ms since the connection opened once it is closed. */
  closed: Promise<number>;
}

/** A TCP connection to write HTTP by hand, as a slow or hostile client would. */
export function rawConnection(port: number): Promise<RawConnection> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const opened = performance.now();
    let data = '';
    const waiters = new Set<() => void>();
    socket.on('data', (chunk) => {
      data += chunk.toString();
      for (const waiter of waiters) waiter();
    });
    socket.on('error', () => {});
    const closed = new Promise<number>((done) =>
      socket.once('close', () => done(performance.now() - opened)),
    );
    socket.once('connect', () =>
      resolve({
        socket,
        closed,
        received: () => data,
        waitFor: (text, timeoutMs = 5000) =>
          new Promise((found, fail) => {
            const check = () => {
              if (typeof text === 'string' ? data.includes(text) : text.test(data)) {
                clearTimeout(timer);
                waiters.delete(check);
                found();
              }
            };
            const timer = setTimeout(() => {
              waiters.delete(check);
              fail(new Error(`no ${text} in ${timeoutMs} ms; received: ${data}`));
            }, timeoutMs);
            waiters.add(check);
            check();
          }),
      }),
    );
    socket.once('error', reject);
  });
}

import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { JobQueues, type Retention } from '@offload/queue';
import type { TaskRegistry } from '@offload/tasks';
import { pino } from 'pino';
import { type AppDeps, createApp } from '../../apps/api/src/app.ts';

export interface TestApi {
  url: string;
  jobs: JobQueues;
  app: ReturnType<typeof createApp>;
  close(): Promise<void>;
}

/** The API on a real HTTP port, built the way apps/api/src/index.ts builds it. */
export async function startApi(options: {
  redisUrl: string;
  prefix: string;
  registry: TaskRegistry;
  listen?: boolean;
  /** API_KEYS; unset: open development mode (tenant `dev`). */
  apiKeys?: AppDeps['apiKeys'];
  /** Default: no rate limit. */
  rateLimit?: AppDeps['rateLimit'];
  maxJsonDepth?: number;
  /** Default: no quota. */
  maxOpenJobsPerTenant?: number;
  retention?: Retention;
}): Promise<TestApi> {
  const jobs = JobQueues.create({
    redisUrl: options.redisUrl,
    prefix: options.prefix,
    queueNames: options.registry.queues(),
    maxOpenJobsPerTenant: options.maxOpenJobsPerTenant ?? 0,
    ...(options.retention && { retention: options.retention }),
  });
  const app = createApp({
    jobs,
    registry: options.registry,
    logger: pino({ level: 'silent' }),
    maxBodyBytes: 64 * 1024,
    apiKeys: options.apiKeys ?? null,
    maxJsonDepth: options.maxJsonDepth ?? 32,
    rateLimit: options.rateLimit ?? { limit: 0, windowMs: 60_000 },
  });
  if (options.listen === false) {
    return { url: '', jobs, app, close: () => jobs.close() };
  }
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const s = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, () => resolve(s));
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    jobs,
    app,
    close: async () => {
      (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
      await new Promise((resolve) => server.close(resolve));
      await jobs.close();
    },
  };
}

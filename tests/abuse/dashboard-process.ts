import { freePort } from '../../scripts/redis-server.ts';
import { type RunningProcess, startNodeProcess, testPrefix } from '../support/processes.ts';
import { redisEnv } from '../support/redis-url.ts';

export interface DashboardProcess {
  url: string;
  process: RunningProcess;
  stop(): Promise<void>;
}

/** `apps/dashboard/src/index.ts` in its own process, with `env` on top of a fresh prefix. */
export async function startDashboardProcess(
  env: Record<string, string>,
): Promise<DashboardProcess> {
  const port = await freePort();
  const dashboard = startNodeProcess('apps/dashboard/src/index.ts', {
    ...redisEnv(),
    OFFLOAD_PREFIX: testPrefix(),
    DASHBOARD_PORT: String(port),
    ...env,
  });
  await dashboard.waitForLine(/dashboard listening/);
  return {
    url: `http://127.0.0.1:${port}`,
    process: dashboard,
    async stop() {
      await dashboard.stop('SIGKILL');
    },
  };
}

export const basic = (user: string, password: string) => ({
  authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`,
});

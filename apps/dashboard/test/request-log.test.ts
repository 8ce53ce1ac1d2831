import { JobQueues } from '@offload/queue';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { testPrefix } from '../../../tests/support/processes.ts';
import { testRedis } from '../../../tests/support/redis-url.ts';
import { createDashboard } from '../src/app.ts';

const jobs = JobQueues.create({ redis: testRedis(), prefix: testPrefix() });
afterAll(() => jobs.close());

describe('the dashboard’s request log', () => {
  it('logs the health check’s probe at debug, and any other request at info', async () => {
    type Line = { level: number; path: string; status: number };
    const lines: Line[] = [];
    const logger = pino(
      { level: 'info' },
      { write: (line: string) => lines.push(JSON.parse(line) as Line) },
    );
    const app = createDashboard({ jobs, logger, admin: null });
    expect((await app.request('/healthz')).status).toBe(200);
    expect((await app.request('/fleet')).status).toBe(200);
    expect(lines.map(({ path, status }) => ({ path, status }))).toEqual([
      { path: '/fleet', status: 200 },
    ]);
    expect(lines[0]?.level).toBe(logger.levels.values.info);
  });
});

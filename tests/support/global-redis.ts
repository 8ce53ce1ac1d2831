import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { startRedisServer } from '../../scripts/redis-server.ts';
import './redis-url.ts';

/**
 * One Redis for the whole run: REDIS_URL when given, else a private
 * redis-server on a free port in a temp dir, stopped when the run ends.
 * Tests isolate themselves with a fresh OFFLOAD_PREFIX each, so they never
 * flush or disturb what else lives in that Redis.
 */
export default async function setup(project: TestProject) {
  const given = process.env.REDIS_URL;
  if (given) {
    project.provide('redisTarget', { url: given });
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'offload-test-redis-'));
  const redis = await startRedisServer({ dir });
  project.provide('redisTarget', { url: redis.url });
  return async () => {
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  };
}

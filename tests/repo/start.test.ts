import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRedis } from '@offload/queue';
import { afterEach, describe, expect, it } from 'vitest';
import { chooseRedis, NoRedisError } from '../../scripts/choose-redis.ts';
import { freePort } from '../../scripts/redis-server.ts';
import { testRedisUrl } from '../support/redis-url.ts';

const dirs: string[] = [];
const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(stops.splice(0).map((stop) => stop()));
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'offload-start-'));
  dirs.push(dir);
  return dir;
};

describe('npm start picks its Redis', () => {
  it('uses REDIS_URL when it is set', async () => {
    const chosen = await chooseRedis({
      redisUrl: 'redis://example:1',
      port: 1,
      dataDir: tempDir(),
    });
    expect(chosen).toEqual({ url: 'redis://example:1' });
  });

  it('uses a Redis that already answers on the port', async () => {
    const port = Number(new URL(testRedisUrl()).port);
    const chosen = await chooseRedis({ redisUrl: undefined, port, dataDir: tempDir() });
    expect(chosen.url).toBe(`redis://127.0.0.1:${port}`);
    expect(chosen.owned).toBeUndefined();
  });

  it('starts a private redis-server with AOF and noeviction when none answers', async () => {
    const port = await freePort();
    const dataDir = tempDir();
    const chosen = await chooseRedis({ redisUrl: undefined, port, dataDir });
    expect(chosen.owned).toBeDefined();
    stops.push(() => chosen.owned?.stop() ?? Promise.resolve());
    const redis = createRedis({ url: chosen.url }, 'worker');
    try {
      expect(await redis.config('GET', 'appendonly')).toEqual(['appendonly', 'yes']);
      expect(await redis.config('GET', 'maxmemory-policy')).toEqual([
        'maxmemory-policy',
        'noeviction',
      ]);
      expect(statSync(join(dataDir, 'redis', 'redis.log')).isFile()).toBe(true);
    } finally {
      redis.disconnect();
    }
  });

  it('says in one line how to get Redis when there is none and no redis-server', async () => {
    const path = process.env.PATH;
    process.env.PATH = '/nonexistent';
    try {
      const port = await freePort();
      const failure = chooseRedis({ redisUrl: undefined, port, dataDir: tempDir() });
      await expect(failure).rejects.toBeInstanceOf(NoRedisError);
      const message = await failure.catch((err: Error) => err.message);
      expect(message).not.toContain('\n');
      expect(message).toMatch(/apt-get install redis-server/);
      expect(message).toMatch(/brew install redis/);
      expect(message).toMatch(/docker compose up -d redis/);
    } finally {
      process.env.PATH = path;
    }
  });
});

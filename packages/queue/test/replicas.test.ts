import { afterEach, expect, it } from 'vitest';
import { type KillableRedis, startKillableRedis } from '../../../tests/support/private-redis.ts';
import { createRedis, type RedisClient, waitForReplicas } from '../src/connection.ts';

let redis: KillableRedis | undefined;
let client: RedisClient | undefined;
afterEach(async () => {
  client?.disconnect();
  await redis?.close();
});

it('counts no replica, rather than failing, when the primary goes away while WAIT waits for replicas', async () => {
  redis = await startKillableRedis({ appendOnly: false });
  const api = createRedis({ url: redis.url }, 'api');
  client = api;
  await new Promise((resolve) => api.once('ready', resolve));
  await api.set('k', '1');
  // No replica exists: WAIT blocks for its whole timeout, and the primary is killed meanwhile.
  const acked = waitForReplicas(api, 'k', 1, 5000);
  await new Promise((resolve) => setTimeout(resolve, 200));
  await redis.kill();
  expect(await acked).toBe(0);
});

import type { CatalogEntry } from '@offload/contract';
import { afterAll, describe, expect, it } from 'vitest';
import { testPrefix } from '../../../tests/support/processes.ts';
import { testRedis } from '../../../tests/support/redis-url.ts';
import { MAX_VERSIONS_KEPT, publishCatalog, readCatalog, taskInfos } from '../src/catalog.ts';
import { createRedis } from '../src/connection.ts';
import { offloadKeys } from '../src/keys.ts';

const redis = createRedis(testRedis(), 'worker');
afterAll(() => redis.quit());

/** A version of a task: its fingerprint made from `n`. */
const version = (name: string, n: number): CatalogEntry => ({
  name,
  description: `version ${n}`,
  queue: 'default',
  input: { type: 'object', maxProperties: n },
  output: { type: 'object' },
  defaults: { timeoutMs: 1000, attempts: 1, backoff: { type: 'fixed', delay: 0 } },
  fingerprint: n.toString(16).padStart(16, '0'),
});

describe('the task catalog', () => {
  it('keeps the first publish time of a version, and bumps its counter only for a new one', async () => {
    const keys = offloadKeys(testPrefix());
    await publishCatalog(redis, keys, [version('a', 1)]);
    const first = await readCatalog(redis, keys);
    await new Promise((r) => setTimeout(r, 5));
    await publishCatalog(redis, keys, [version('a', 1)]);
    const again = await readCatalog(redis, keys);
    expect(again.version).toBe(first.version);
    expect(again.entries).toEqual(first.entries);
  });

  it(`keeps the newest ${MAX_VERSIONS_KEPT} versions of a task however many deploys publish one`, async () => {
    const keys = offloadKeys(testPrefix());
    await publishCatalog(redis, keys, [version('other', 99)]);
    for (let n = 1; n <= MAX_VERSIONS_KEPT + 5; n++) {
      await publishCatalog(redis, keys, [version('a', n)]);
      // publishedAt has ms resolution: one version per ms at least.
      await new Promise((r) => setTimeout(r, 2));
    }
    const { entries } = await readCatalog(redis, keys);
    const [info] = taskInfos(entries, []).filter((t) => t.name === 'a');
    expect(info?.versions.map((v) => Number.parseInt(v.fingerprint, 16))).toEqual(
      Array.from({ length: MAX_VERSIONS_KEPT }, (_, i) => MAX_VERSIONS_KEPT + 5 - i),
    );
    // The newest validates while no worker runs any; another task is untouched.
    expect(info?.description).toBe(`version ${MAX_VERSIONS_KEPT + 5}`);
    expect(entries.filter((e) => e.name === 'other')).toHaveLength(1);
  });

  it('validates with the newest version a live worker runs, and counts workers per version', () => {
    const published = [version('a', 1), version('a', 2)].map((entry, i) => ({
      ...entry,
      publishedAt: new Date(Date.UTC(2026, 0, 1, 0, i)).toISOString(),
    }));
    const beat = (tasks: string[]) => ({
      id: tasks.join(),
      host: 'h',
      pid: 1,
      queues: ['default'],
      tasks,
      concurrency: 1,
      running: [],
      jobsDone: 0,
      startedAt: '',
      lastSeenAt: '',
    });
    const oldOnly = taskInfos(published, [beat([`a ${version('a', 1).fingerprint}`])]);
    expect(oldOnly[0]).toMatchObject({ description: 'version 1', workers: 1 });
    const none = taskInfos(published, []);
    expect(none[0]).toMatchObject({ description: 'version 2', workers: 0 });
  });
});

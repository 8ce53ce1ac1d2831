import { afterAll, describe, expect, it } from 'vitest';
import { testPrefix } from '../../../tests/support/processes.ts';
import { testRedis } from '../../../tests/support/redis-url.ts';
import { createRedis } from '../src/connection.ts';
import { JobIds } from '../src/job-ids.ts';
import { isWellFormedJobId } from '../src/job-options.ts';
import { offloadKeys } from '../src/keys.ts';

const redis = createRedis(testRedis(), 'worker');
afterAll(() => redis.disconnect());

describe('job ids', () => {
  it('are unguessable, well formed, and tell when they were issued to their tenant', async () => {
    const ids = await JobIds.load(redis, offloadKeys(testPrefix()));
    const now = Date.UTC(2026, 0, 1, 12, 0, 0);
    const issued = Array.from({ length: 1000 }, () => ids.issue('acme', now));
    expect(new Set(issued).size).toBe(1000);
    for (const id of issued) {
      expect(id).toMatch(/^[A-Za-z0-9_-]{27}$/);
      expect(isWellFormedJobId(id)).toBe(true);
      expect(ids.issuedAt(id, 'acme')).toBe(now);
    }
  });

  it('never start with a dash, so a command line does not take one for an option', async () => {
    const ids = await JobIds.load(redis, offloadKeys(testPrefix()));
    // Of random ids, 1 in 64 would start with `-`: 5,000 leave a chance of about 1e-34 to miss it.
    const firsts = new Set(Array.from({ length: 5000 }, () => ids.issue('acme')[0]));
    expect([...firsts].filter((c) => !/[A-Za-f]/.test(c as string))).toEqual([]);
  });

  it('does not vouch for an id never issued, altered, or issued to another tenant', async () => {
    const ids = await JobIds.load(redis, offloadKeys(testPrefix()));
    const id = ids.issue('acme');
    const flipped = `${id.slice(0, 3)}${id[3] === 'A' ? 'B' : 'A'}${id.slice(4)}`;
    expect(ids.issuedAt(id, 'other')).toBeNull();
    expect(ids.issuedAt(flipped, 'acme')).toBeNull();
    expect(ids.issuedAt('AAAAAAAAAAAAAAAAAAAAAAAAAAA', 'acme')).toBeNull();
    expect(ids.issuedAt('short', 'acme')).toBeNull();
  });

  it('share one secret across processes of a deployment, and not across deployments', async () => {
    const keys = offloadKeys(testPrefix());
    const [a, b] = await Promise.all([JobIds.load(redis, keys), JobIds.load(redis, keys)]);
    const elsewhere = await JobIds.load(redis, offloadKeys(testPrefix()));
    const id = a.issue('acme');
    expect(b.issuedAt(id, 'acme')).not.toBeNull();
    expect(elsewhere.issuedAt(id, 'acme')).toBeNull();
  });
});

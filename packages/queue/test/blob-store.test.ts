import { mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { blobExpiry, blobKey, FileBlobStore } from '../src/blob-store.ts';

const HOUR = 60 * 60 * 1000;
let dir: string;
let store: FileBlobStore;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'offload-blob-store-'));
  store = new FileBlobStore(dir);
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const filesUnder = (root: string) =>
  readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name));

describe('the filesystem blob store', () => {
  it('stores bytes under a key that says when they expire, and streams them back with their size', async () => {
    const key = blobKey('job-1', Date.UTC(2026, 11, 3, 12, 30));
    expect(blobExpiry(key)).toBe(Date.UTC(2026, 11, 3, 12, 30));
    const bytes = new Uint8Array([0, 1, 2, 255, 10, 13]);
    await store.put(key, bytes);
    const found = await store.get(key);
    expect(found?.size).toBe(6);
    expect(new Uint8Array(await new Response(found?.stream).arrayBuffer())).toEqual(bytes);
    expect(await store.size(key)).toBe(6);
    // Written through a temporary file renamed into place: none is left.
    expect(filesUnder(dir)).toEqual([join(dir, key)]);
    await store.delete(key);
    expect(await store.get(key)).toBeNull();
    await store.delete(key);
  });

  it('deletes expired blobs, whole hours at once, and keeps the rest', async () => {
    const now = Date.UTC(2026, 11, 3, 12, 30);
    const keys = {
      lastHour: blobKey('a', now - HOUR),
      earlierThisHour: blobKey('b', now - 60_000),
      laterThisHour: blobKey('c', now + 60_000),
      tomorrow: blobKey('d', now + 24 * HOUR),
    };
    for (const key of Object.values(keys)) await store.put(key, new Uint8Array([1]));
    expect(await store.deleteExpired(now)).toBe(2);
    expect(await store.size(keys.lastHour)).toBeNull();
    expect(await store.size(keys.earlierThisHour)).toBeNull();
    expect(await store.size(keys.laterThisHour)).toBe(1);
    expect(await store.size(keys.tomorrow)).toBe(1);
  });

  it('removes temporary files a dead writer left, once they are an hour old', async () => {
    mkdirSync(join(dir, '.tmp'));
    const stale = join(dir, '.tmp', 'stale');
    const fresh = join(dir, '.tmp', 'fresh');
    writeFileSync(stale, 'x');
    writeFileSync(fresh, 'x');
    const twoHoursAgo = new Date(Date.now() - 2 * HOUR);
    utimesSync(stale, twoHoursAgo, twoHoursAgo);
    await store.deleteExpired(Date.now());
    expect(filesUnder(dir)).toEqual([fresh]);
  });

  it('turns no key it did not make into a path', async () => {
    for (const key of ['../../etc/passwd', '/etc/passwd', '1/2-x/../../y', '', '123/456-a']) {
      await expect(store.get(key), key).rejects.toThrow(/Not a blob key/);
    }
  });

  it('answers null for a blob that does not exist, and sweeps a store that was never written', async () => {
    const empty = new FileBlobStore(join(dir, 'never'));
    expect(await empty.get(blobKey('x', Date.now()))).toBeNull();
    expect(await empty.deleteExpired(Date.now())).toBe(0);
  });
});

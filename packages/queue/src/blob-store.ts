import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';

/**
 * Where binary results live: outside Redis, whose memory they would fill.
 * A blob is written once, read by the API (and the dashboard), and deleted
 * when its job's retention ends. Its key says when that is (see blobKey), so
 * a store can sweep expired blobs without asking Redis which jobs are gone.
 *
 * The seam for another backend (an S3-compatible bucket): implement these
 * five calls over the same keys. `put` must be atomic (S3's PutObject is);
 * `deleteExpired` lists keys in order (S3's ListObjectsV2 lists them sorted,
 * and the key's first part is its expiry hour) and deletes those whose
 * expiry has passed (or leave that to a bucket lifecycle rule of the
 * retention's length, and make it a no-op).
 */
export interface BlobStore {
  /** Stores `data` under `key`, atomically: a reader finds all of the bytes or none. */
  put(key: string, data: Uint8Array): Promise<void>;
  /** The blob's bytes as a stream, and its size (bytes); null when there is none. */
  get(key: string): Promise<{ size: number; stream: ReadableStream<Uint8Array> } | null>;
  /** The blob's size, bytes; null when there is none. */
  size(key: string): Promise<number | null>;
  /** Removes the blob; no error when there is none. */
  delete(key: string): Promise<void>;
  /** Removes every blob whose expiry (see blobKey) is before `now` (ms since epoch); answers how many. */
  deleteExpired(now: number): Promise<number>;
}

/** BLOB_DIR's default, relative to the working directory (where `npm start` keeps its Redis data too). */
export const DEFAULT_BLOB_DIR = '.data/blobs';

/** Blobs expiring within the same hour share a folder, which the sweep removes whole once that hour is over. */
const BUCKET_MS = 60 * 60 * 1000;

/** A job's id: base64url (see job-ids.ts); anything else never becomes a path. */
const KEY = /^(\d{1,10})\/(\d{13})-([A-Za-z0-9_-]{1,64})$/;

/**
 * The key of a job's blob: `<expiry hour>/<expiry ms>-<job id>`, so that the
 * store knows when it may delete it. Each write gets a key of its own: a job
 * run twice (a worker lost after writing) leaves the first blob to the sweep.
 */
export function blobKey(jobId: string, expiresAt: number): string {
  const at = Math.round(expiresAt);
  return `${Math.floor(at / BUCKET_MS)}/${String(at).padStart(13, '0')}-${jobId}`;
}

/** When a blob of this key expires, ms since epoch; null for a key blobKey never made. */
export function blobExpiry(key: string): number | null {
  const match = KEY.exec(key);
  return match ? Number(match[2]) : null;
}

/** Bytes read from a blob file at a time: 16 times Node's default, for fewer, larger writes to the socket. */
const READ_CHUNK_BYTES = 1024 * 1024;

/** Writes in progress live here until renamed into place; the sweep removes ones a crash left behind. */
const TEMP = '.tmp';
/** A temporary file this old belongs to a writer that died, ms. */
const STALE_TEMP_MS = 60 * 60 * 1000;

/**
 * The blob store on a filesystem (BLOB_DIR): one file per blob. API and
 * workers must see the same folder: on different machines, a shared volume.
 * A write goes to a temporary file in the same folder tree, is flushed, and
 * is renamed into place, so a reader never sees a half-written blob and a
 * crash leaves none.
 */
export class FileBlobStore implements BlobStore {
  readonly root: string;
  constructor(dir: string, cwd = process.cwd()) {
    this.root = resolve(cwd, dir);
  }

  async put(key: string, data: Uint8Array): Promise<void> {
    const path = this.pathOf(key);
    const temp = join(this.root, TEMP, `${randomBytes(8).toString('hex')}`);
    await mkdir(join(this.root, TEMP), { recursive: true });
    const file = await open(temp, 'wx');
    try {
      await file.writeFile(data);
      await file.sync();
    } catch (err) {
      await file.close();
      await unlink(temp).catch(() => {});
      throw err;
    }
    await file.close();
    try {
      await mkdir(join(path, '..'), { recursive: true });
      await rename(temp, path);
    } catch (err) {
      await unlink(temp).catch(() => {});
      throw err;
    }
  }

  async get(key: string): Promise<{ size: number; stream: ReadableStream<Uint8Array> } | null> {
    const path = this.pathOf(key);
    // Opened before its size is read: a sweep that unlinks it meanwhile cannot cut the answer short.
    const file = await open(path, 'r').catch(notFoundAsNull);
    if (!file) return null;
    const { size } = await file.stat();
    const stream = file.createReadStream({ highWaterMark: READ_CHUNK_BYTES });
    return { size, stream: Readable.toWeb(stream) as ReadableStream<Uint8Array> };
  }

  async size(key: string): Promise<number | null> {
    const found = await stat(this.pathOf(key)).catch(notFoundAsNull);
    return found ? found.size : null;
  }

  async delete(key: string): Promise<void> {
    await unlink(this.pathOf(key)).catch(notFoundAsNull);
  }

  async deleteExpired(now: number): Promise<number> {
    let deleted = 0;
    const buckets = await readdir(this.root).catch(notFoundAsEmpty);
    for (const bucket of buckets) {
      if (bucket === TEMP) {
        await this.deleteStaleTemp(now);
        continue;
      }
      const hour = Number(bucket);
      if (!Number.isInteger(hour)) continue;
      if ((hour + 1) * BUCKET_MS <= now) {
        deleted += (await readdir(join(this.root, bucket)).catch(notFoundAsEmpty)).length;
        await rm(join(this.root, bucket), { recursive: true, force: true });
        continue;
      }
      if (hour * BUCKET_MS > now) continue;
      for (const name of await readdir(join(this.root, bucket)).catch(notFoundAsEmpty)) {
        const expiry = blobExpiry(`${bucket}/${name}`);
        if (expiry === null || expiry > now) continue;
        await unlink(join(this.root, bucket, name)).catch(notFoundAsNull);
        deleted++;
      }
    }
    return deleted;
  }

  private async deleteStaleTemp(now: number): Promise<void> {
    const dir = join(this.root, TEMP);
    for (const name of await readdir(dir).catch(notFoundAsEmpty)) {
      const found = await stat(join(dir, name)).catch(notFoundAsNull);
      if (found && found.mtimeMs < now - STALE_TEMP_MS)
        await unlink(join(dir, name)).catch(() => {});
    }
  }

  /** Only keys blobKey makes become paths: no `..`, no absolute path, whatever Redis holds. */
  private pathOf(key: string): string {
    if (!KEY.test(key)) throw new Error(`Not a blob key: ${JSON.stringify(key)}`);
    return join(this.root, key);
  }
}

function notFoundAsNull(err: NodeJS.ErrnoException): null {
  if (err.code === 'ENOENT') return null;
  throw err;
}

function notFoundAsEmpty(err: NodeJS.ErrnoException): string[] {
  if (err.code === 'ENOENT') return [];
  throw err;
}

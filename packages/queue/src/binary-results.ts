import { type BinaryResult, resultUrl } from '@offload/contract/binary-result';
import { type BlobStore, blobKey } from './blob-store.ts';
import type { RedisClient } from './connection.ts';
import type { OffloadKeys } from './keys.ts';
import { luaScript } from './lua-script.ts';

/** Bytes a task returned (`binary(data, contentType)` in @offload/tasks), as its runner hands them over. */
export interface BinaryOutput {
  data: Uint8Array;
  contentType: string;
}

/**
 * Where a binary result's bytes are: the job hash's field `blob` holds this,
 * as JSON, beside BullMQ's `returnvalue` (the public BinaryResult). A JSON
 * result has no such field, so whatever shape a task's JSON takes, it is
 * never mistaken for a blob.
 */
export interface BlobRecord {
  key: string;
  contentType: string;
  /** bytes */
  size: number;
}

const BLOB_FIELD = 'blob';

/**
 * Sets the field only while the job's hash exists: a job removed meanwhile
 * must not come back as a hash holding nothing else. KEYS: the job's hash.
 * ARGV: field, value. Answers 1, or 0 when the job is gone.
 */
const SET_IF_JOB = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
`;
const setIfJob = luaScript('set_if_job', 1, SET_IF_JOB);

/** A binary result stored, and how to take it back when its job cannot complete after all. */
export interface StoredBinary {
  /** What the job's `result` shows. */
  descriptor: BinaryResult;
  /** Deletes the bytes and the job's record of them. */
  discard(): Promise<void>;
}

/**
 * Writes a job's bytes to the blob store, to be deleted at `expiresAt` (ms
 * since epoch: when its retention ends), and records where they are in the
 * job's hash. Costs a binary job one Redis command; a JSON job none.
 */
export async function storeBinaryResult(
  redis: RedisClient,
  keys: OffloadKeys,
  blobs: BlobStore,
  job: { queue: string; id: string },
  output: BinaryOutput,
  expiresAt: number,
): Promise<StoredBinary> {
  const key = blobKey(job.id, expiresAt);
  const record: BlobRecord = { key, contentType: output.contentType, size: output.data.byteLength };
  const hash = keys.bullKey(job.queue, job.id);
  await blobs.put(key, output.data);
  const discard = async () => {
    await blobs.delete(key);
    await redis.hdel(hash, BLOB_FIELD).catch(() => {});
  };
  try {
    if (Number(await setIfJob(redis, [hash], [BLOB_FIELD, JSON.stringify(record)])) !== 1) {
      throw new Error(`Job ${job.id} was removed while it ran; its result is dropped`);
    }
  } catch (err) {
    await blobs.delete(key);
    throw err;
  }
  return {
    descriptor: { contentType: record.contentType, size: record.size, url: resultUrl(job.id) },
    discard,
  };
}

/**
 * The answer that serves a blob: its bytes, streamed, with its content type
 * and length. A type a browser would run (text/html, an SVG with scripts)
 * runs in a sandbox with nothing allowed, never as the serving origin.
 * Null when the blob is gone (swept at the end of its retention).
 */
export async function blobResponse(blobs: BlobStore, record: BlobRecord): Promise<Response | null> {
  const blob = await blobs.get(record.key);
  if (!blob) return null;
  return new Response(blob.stream, {
    status: 200,
    headers: {
      'content-type': record.contentType,
      'content-length': String(blob.size),
      'content-security-policy': "default-src 'none'; sandbox",
      'x-content-type-options': 'nosniff',
    },
  });
}

/** Where a completed job's bytes are; null for a JSON result. */
export async function readBlobRecord(
  redis: RedisClient,
  jobHash: string,
): Promise<BlobRecord | null> {
  const text = await redis.hget(jobHash, BLOB_FIELD);
  return text === null ? null : (JSON.parse(text) as BlobRecord);
}

import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { JobView } from '@offload/contract';
import { createRedis, offloadKeys } from '@offload/queue';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type TestApi } from '../support/api-server.ts';
import { BINARY_TASK_MODULES, pseudoRandomBytes } from '../support/binary-tasks.ts';
import { client } from '../support/http.ts';
import {
  ROOT,
  type RunningProcess,
  startWorkerProcess,
  testPrefix,
  waitFor,
} from '../support/processes.ts';
import { testRedis } from '../support/redis-url.ts';

/**
 * Binary results (DESIGN.md §3): a task returns bytes, the worker keeps them
 * in the blob store (BLOB_DIR), the job's view shows a descriptor, and
 * GET /v1/jobs/{id}/result answers the bytes. Real API, real worker
 * processes, real Redis (a cluster in the `cluster` project).
 */
const target = testRedis();
const MiB = 1024 * 1024;
const ALICE = { tenant: 'alice', key: 'alice-key-0123456789abcdef' };
const BOB = { tenant: 'bob', key: 'bob-key-0123456789abcdef' };
const CAROL = { tenant: 'carol', key: 'carol-key-0123456789abcdef' };
/** Carol's storage quota, bytes: two 12 MiB results fit, a third does not. */
const STORED_PER_TENANT = 30 * MiB;

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** Every blob file under `dir` (temporary files included): what a user would find on disk. */
function filesUnder(dir: string): string[] {
  try {
    return readdirSync(dir, { recursive: true, withFileTypes: true })
      .filter((entry) => entry.isFile())
      .map((entry) => join(entry.parentPath, entry.name));
  } catch {
    return [];
  }
}

async function fetchResult(api: TestApi, id: string, key: string) {
  return fetch(`${api.url}/v1/jobs/${id}/result`, { headers: { authorization: `Bearer ${key}` } });
}

describe('binary results, served as files', () => {
  let api: TestApi;
  let worker: RunningProcess;
  let blobDir: string;
  const alice = () => client(api.url, ALICE.key);

  beforeAll(async () => {
    blobDir = mkdtempSync(join(tmpdir(), 'offload-blobs-'));
    const prefix = testPrefix();
    api = await startApi({
      redis: target,
      prefix,
      apiKeys: [ALICE, BOB, CAROL],
      blobDir,
      maxStoredBytesPerTenant: STORED_PER_TENANT,
    });
    worker = await startWorkerProcess({
      redis: target,
      prefix,
      concurrency: 2,
      tasks: BINARY_TASK_MODULES,
      env: { BLOB_DIR: blobDir },
    });
  });
  afterAll(async () => {
    await worker?.stop('SIGKILL');
    await api?.close();
    rmSync(blobDir, { recursive: true, force: true });
  });

  it('renders image.mandelbrot as a PNG served with its content type, and the view holds a descriptor, not the image', async () => {
    const http = alice();
    const job = await http.submit('image.mandelbrot', { width: 320, height: 240 });
    const done = await http.get(job.id, 30);
    expect(done.state).toBe('completed');
    const result = done.result as { contentType: string; size: number; url: string };
    expect(result).toEqual({
      contentType: 'image/png',
      size: expect.any(Number),
      url: `/v1/jobs/${job.id}/result`,
    });
    // No base64 anywhere: the whole view is a few hundred bytes.
    const viewText = JSON.stringify(done);
    expect(viewText.length).toBeLessThan(600);

    const res = await fetchResult(api, job.id, ALICE.key);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/png');
    expect(Number(res.headers.get('content-length'))).toBe(result.size);
    const png = Buffer.from(await res.arrayBuffer());
    expect(png.byteLength).toBe(result.size);
    const image = PNG.sync.read(png);
    expect([image.width, image.height]).toEqual([320, 240]);
    console.log(
      `image.mandelbrot 320×240: a ${png.byteLength}-byte PNG; its view is ${viewText.length} bytes of JSON`,
    );
  });

  it('serves 12 MiB of bytes identical to what the task returned, with their length, and keeps them out of Redis', async () => {
    const http = alice();
    const size = 12 * MiB;
    const job = await http.submit('test.bytes', {
      size,
      seed: 7,
      contentType: 'application/x-test',
    });
    const done = await http.get(job.id, 60);
    expect(done.state).toBe('completed');
    expect(done.result).toEqual({
      contentType: 'application/x-test',
      size,
      url: `/v1/jobs/${job.id}/result`,
    });

    const started = performance.now();
    const res = await fetchResult(api, job.id, ALICE.key);
    const body = new Uint8Array(await res.arrayBuffer());
    const seconds = (performance.now() - started) / 1000;
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/x-test');
    expect(res.headers.get('content-length')).toBe(String(size));
    expect(sha256(body)).toBe(sha256(pseudoRandomBytes(size, 7)));

    // The job's hash in Redis holds the descriptor and where the bytes are, not the bytes.
    const redis = createRedis(target, 'worker');
    try {
      const hash = offloadKeys(api.jobs.keys.prefix).bullKey('default', job.id);
      const used = Number(await redis.memory('USAGE', hash));
      expect(used).toBeLessThan(4096);
      console.log(
        `12 MiB binary result served in ${(seconds * 1000).toFixed(0)} ms (${(size / MiB / seconds).toFixed(0)} MB/s); its job hash in Redis: ${used} bytes`,
      );
    } finally {
      redis.disconnect();
    }
  });

  it('answers a JSON result alone as application/json', async () => {
    const http = alice();
    const job = await http.submit('primes.count', { below: 1000 });
    expect((await http.get(job.id, 30)).state).toBe('completed');
    const res = await fetchResult(api, job.id, ALICE.key);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await res.json()).toEqual({ count: 168 });
  });

  it('answers 409 job_not_finished before the job completes, 409 job_has_no_result once it is canceled or failed', async () => {
    const http = alice();
    const job = await http.submit('cpu.burn', { ms: 30_000 });
    const early = await fetchResult(api, job.id, ALICE.key);
    expect(early.status).toBe(409);
    expect(early.headers.get('content-type')).toBe('application/problem+json');
    expect(((await early.json()) as { code: string }).code).toBe('job_not_finished');

    expect((await http.cancel(job.id)).status).toBe(200);
    const canceled = await fetchResult(api, job.id, ALICE.key);
    expect(canceled.status).toBe(409);
    expect(((await canceled.json()) as { code: string }).code).toBe('job_has_no_result');

    // binary() refuses a content type that is not a media type: the task throws.
    const bad = await http.submit('test.bytes', { size: 10, contentType: 'not a type' });
    expect((await http.get(bad.id, 30)).state).toBe('failed');
    const failed = await fetchResult(api, bad.id, ALICE.key);
    expect(failed.status).toBe(409);
    expect(((await failed.json()) as { code: string }).code).toBe('job_has_no_result');
  });

  it("answers 404 for another tenant's job, as for an id never issued", async () => {
    const job = await alice().submit('test.bytes', { size: 1000 });
    expect((await alice().get(job.id, 30)).state).toBe('completed');
    const res = await fetchResult(api, job.id, BOB.key);
    expect(res.status).toBe(404);
    const problem = (await res.json()) as { code: string; detail: string };
    expect(problem.code).toBe('not_found');
    const never = await fetchResult(api, 'A'.repeat(27), BOB.key);
    expect(never.status).toBe(404);
  });

  it('fails a result past WORKER_MAX_RESULT_BYTES (16 MiB) with result_too_large, final, and leaves no file', async () => {
    const http = alice();
    const before = filesUnder(blobDir);
    const job = await http.submit('test.bytes', { size: 20 * MiB });
    const done = await http.get(job.id, 60);
    expect(done.state).toBe('failed');
    expect(done.error?.code).toBe('result_too_large');
    expect(done.attempts.made).toBe(1);
    expect(filesUnder(blobDir)).toEqual(before);
  });

  it('fails a result that would take its tenant past API_MAX_STORED_BYTES_PER_TENANT, and deletes its bytes', async () => {
    const http = client(api.url, CAROL.key);
    const views: JobView[] = [];
    for (const seed of [1, 2, 3]) {
      const job = await http.submit('test.bytes', { size: 12 * MiB, seed });
      views.push(await http.get(job.id, 60));
    }
    expect(views.map((v) => v.state)).toEqual(['completed', 'completed', 'failed']);
    expect(views[2]?.error?.code).toBe('result_too_large');
    expect(views[2]?.error?.message).toMatch(/storage quota/);
    // The two results kept are on disk; the third's bytes are not.
    const carols = filesUnder(blobDir).filter((f) => views.some((v) => f.endsWith(`-${v.id}`)));
    expect(carols).toHaveLength(2);
    expect(carols.some((f) => f.endsWith(`-${views[2]?.id}`))).toBe(false);
  });
});

describe('binary results at the end of retention', () => {
  it("deletes a job's bytes when its retention ends, and GET /result then answers 410 or 404", async () => {
    const blobDir = mkdtempSync(join(tmpdir(), 'offload-blobs-'));
    const prefix = testPrefix();
    const retention = { completedMs: 2000, failedMs: 2000 };
    const api = await startApi({ redis: target, prefix, blobDir, retention });
    const worker = await startWorkerProcess({
      redis: target,
      prefix,
      concurrency: 1,
      tasks: BINARY_TASK_MODULES,
      env: { BLOB_DIR: blobDir, JOB_RETENTION_COMPLETED_S: '2', JOB_RETENTION_FAILED_S: '2' },
    });
    try {
      const http = client(api.url);
      const job = await http.submit('test.bytes', { size: 100_000 });
      const done = await http.get(job.id, 30);
      expect(done.state).toBe('completed');
      const finishedAt = Date.parse(done.finishedAt as string);
      expect(filesUnder(blobDir).filter((f) => f.endsWith(`-${job.id}`))).toHaveLength(1);
      expect((await fetch(`${api.url}/v1/jobs/${job.id}/result`)).status).toBe(200);

      await waitFor(() => filesUnder(blobDir).length === 0, 60_000);
      const goneAfter = Date.now() - finishedAt;
      expect(goneAfter).toBeGreaterThanOrEqual(2000);
      const after = await fetch(`${api.url}/v1/jobs/${job.id}/result`);
      expect([404, 410]).toContain(after.status);
      console.log(`a blob with 2 s retention was deleted ${goneAfter} ms after its job finished`);
    } finally {
      await worker.stop('SIGKILL');
      await api.close();
      rmSync(blobDir, { recursive: true, force: true });
    }
  });
});

describe('binary results of Python tasks', () => {
  const PY_TASKS = join(ROOT, 'tests/support/python/binary_tasks.py');
  /** What py.bytes returns: sha256 in counter mode. */
  const expected = (size: number) => {
    const blocks = Array.from({ length: Math.ceil(size / 32) }, (_, i) => {
      const counter = Buffer.alloc(8);
      counter.writeBigUInt64BE(BigInt(i));
      return createHash('sha256').update(counter).digest();
    });
    return Buffer.concat(blocks).subarray(0, size);
  };

  it('serves the bytes a Python task returned as Binary, read by the Python client too; refuses oversized and non-binary results', async () => {
    const blobDir = mkdtempSync(join(tmpdir(), 'offload-blobs-'));
    const prefix = testPrefix();
    const api = await startApi({ redis: target, prefix, blobDir });
    const worker = await startWorkerProcess({
      redis: target,
      prefix,
      concurrency: 1,
      tasks: PY_TASKS,
      env: { BLOB_DIR: blobDir, WORKER_MAX_RESULT_BYTES: String(8 * MiB) },
    });
    try {
      const http = client(api.url);
      const size = 5 * MiB + 3;
      const job = await http.submit('py.bytes', { size });
      const done = await http.get(job.id, 60);
      expect(done.state).toBe('completed');
      expect(done.result).toEqual({
        contentType: 'application/x-py-test',
        size,
        url: `/v1/jobs/${job.id}/result`,
      });
      const res = await fetch(`${api.url}${(done.result as { url: string }).url}`);
      expect(res.headers.get('content-type')).toBe('application/x-py-test');
      const body = new Uint8Array(await res.arrayBuffer());
      expect(sha256(body)).toBe(sha256(expected(size)));

      // The Python client: Binary for bytes.
      const script = [
        'import hashlib, sys',
        'from offload import Client',
        'got = Client(sys.argv[1]).result(sys.argv[2])',
        'print(got.content_type, len(got.data), hashlib.sha256(got.data).hexdigest())',
      ].join('\n');
      // Not execFileSync: the API answering it runs in this process.
      const { stdout } = await promisify(execFile)('python3', ['-c', script, api.url, job.id], {
        env: { ...process.env, PYTHONPATH: join(ROOT, 'sdk/python') },
      });
      const printed = stdout.trim();
      expect(printed).toBe(`application/x-py-test ${size} ${sha256(body)}`);

      const before = filesUnder(blobDir);
      const big = await http.submit('py.bytes', { size: 9 * MiB });
      const tooLarge = await http.get(big.id, 60);
      expect(tooLarge.error?.code).toBe('result_too_large');
      expect(filesUnder(blobDir)).toEqual(before);

      const json = await http.submit('py.not-bytes', {});
      const invalid = await http.get(json.id, 30);
      expect(invalid.error?.code).toBe('invalid_output');
      console.log(
        `a Python task's ${size}-byte result served byte for byte; 9 MiB past an 8 MiB limit left no file`,
      );
    } finally {
      await worker.stop('SIGKILL');
      await api.close();
      rmSync(blobDir, { recursive: true, force: true });
    }
  });
});

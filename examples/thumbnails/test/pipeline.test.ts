import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OffloadClient } from '@offload/client';
import type { WorkflowView } from '@offload/contract';
import { PNG } from 'pngjs';
import { list } from 'tar';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type TestApi } from '../../../tests/support/api-server.ts';
import {
  type RunningProcess,
  startWorkerProcess,
  testPrefix,
} from '../../../tests/support/processes.ts';
import { testRedis } from '../../../tests/support/redis-url.ts';

/**
 * The README's thumbnail pipeline as a user runs it: a worker with
 * OFFLOAD_TASKS naming this folder, the API advancing the workflow, one
 * source PNG resized to three widths at once (fan-out), then the three
 * packed into one archive (fan-in) that reads their paths by `$result`.
 */
let api: TestApi;
let worker: RunningProcess;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'offload-thumbs-'));
  const source = new PNG({ width: 1600, height: 1200 });
  for (let i = 0; i < source.data.length; i += 4) {
    const pixel = i / 4;
    source.data[i] = (pixel % 1600) % 256;
    source.data[i + 1] = Math.floor(pixel / 1600) % 256;
    source.data[i + 2] = 128;
    source.data[i + 3] = 255;
  }
  await writeFile(join(dir, 'cat.png'), PNG.sync.write(source));
  const target = testRedis();
  const prefix = testPrefix();
  worker = await startWorkerProcess({
    redis: target,
    prefix,
    tasks: './examples/thumbnails',
    queues: 'thumbnails',
    env: { THUMBS_DIR: dir },
  });
  api = await startApi({ redis: target, prefix, workflows: true });
});
afterAll(async () => {
  await worker?.stop();
  await api?.close();
  await rm(dir, { recursive: true, force: true });
});

/** The README's workflow. */
const pipeline = {
  small: { task: 'thumbs.resize', input: { source: 'cat.png', width: 160 } },
  medium: { task: 'thumbs.resize', input: { source: 'cat.png', width: 480 } },
  large: { task: 'thumbs.resize', input: { source: 'cat.png', width: 1024 } },
  archive: {
    task: 'thumbs.archive',
    input: {
      files: [{ $result: 'small.path' }, { $result: 'medium.path' }, { $result: 'large.path' }],
      archive: 'cat-thumbnails.tar.gz',
    },
    needs: ['small', 'medium', 'large'],
  },
};

describe('the thumbnail pipeline', () => {
  it('resizes one PNG to three widths, then archives the three', async () => {
    const res = await fetch(`${api.url}/v1/workflows`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ steps: pipeline }),
    });
    expect(res.status).toBe(202);
    const started = (await res.json()) as WorkflowView;
    expect(started.steps.archive?.state).toBe('blocked');

    const offload = new OffloadClient({ baseUrl: api.url });
    const ended = await offload.workflows.wait(started.id, { timeoutMs: 60_000 });
    expect(ended.state).toBe('completed');
    expect(ended.steps.small?.result).toMatchObject({
      path: 'cat-160.png',
      width: 160,
      height: 120,
    });
    expect(ended.steps.large?.result).toMatchObject({
      path: 'cat-1024.png',
      width: 1024,
      height: 768,
    });
    expect(ended.steps.archive?.result).toMatchObject({ path: 'cat-thumbnails.tar.gz', files: 3 });

    // The three files are real PNGs of their widths, and the archive holds them.
    for (const [name, width] of [
      ['cat-160.png', 160],
      ['cat-480.png', 480],
      ['cat-1024.png', 1024],
    ] as const) {
      expect(PNG.sync.read(await readFile(join(dir, name))).width).toBe(width);
    }
    const packed: string[] = [];
    await list({
      file: join(dir, 'cat-thumbnails.tar.gz'),
      onReadEntry: (entry) => packed.push(entry.path),
    });
    expect(packed).toEqual(['cat-160.png', 'cat-480.png', 'cat-1024.png']);

    const at = (step: string, field: 'startedAt' | 'finishedAt') =>
      Date.parse(ended.steps[step]?.[field] as string);
    const lastResize = Math.max(...['small', 'medium', 'large'].map((s) => at(s, 'finishedAt')));
    expect(at('archive', 'startedAt')).toBeGreaterThanOrEqual(lastResize);
    console.log(
      `thumbnail pipeline: 3 resizes of a 1600×1200 PNG and an archive in ${Date.parse(ended.finishedAt as string) - Date.parse(ended.createdAt)} ms; the archive started ${at('archive', 'startedAt') - lastResize} ms after the last resize`,
    );
  });

  it('refuses a path outside THUMBS_DIR before anything runs', async () => {
    const res = await fetch(`${api.url}/v1/workflows`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        steps: { small: { task: 'thumbs.resize', input: { source: '../etc/passwd', width: 10 } } },
      }),
    });
    expect(res.status).toBe(422);
    expect(await res.json()).toMatchObject({ errors: [{ path: 'steps.small.input.source' }] });
  });
});

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  createRedis,
  JobQueues,
  offloadKeys,
  publishCatalog,
  type RedisClient,
} from '@offload/queue';
import { catalogEntryOf, defineTask } from '@offload/tasks';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { admin, openBrowser, SHOTS, serveDashboard } from '../../../tests/support/dashboard.ts';
import {
  type RunningProcess,
  startWorkerProcess,
  testPrefix,
} from '../../../tests/support/processes.ts';
import { testRedis } from '../../../tests/support/redis-url.ts';
import { TaskFolder } from '../../../tests/support/task-files.ts';

/**
 * The Tasks page in Chromium, during a rolling deploy done with real worker
 * processes: two workers serve the same task files except `text.shout`, which
 * one runs at version 1 and the other at version 2. The screenshot of the
 * mismatch lands in test-results/dashboard/tasks.png.
 */
const target = testRedis();
const prefix = testPrefix();
const files = new TaskFolder();
const reverseTask = files.reverse();
const shoutVersion = (version: 1 | 2) => files.shout(version);

/** Published once by a worker long gone: its description holds markup that must show as text. */
const resize = defineTask({
  name: 'image.resize',
  description: 'Resizes an image to <= 2048 px & re-encodes it as <webp>.',
  queue: 'images',
  input: z.strictObject({ url: z.url() }),
  output: z.object({ bytes: z.number() }),
  defaults: { timeoutMs: 30_000, attempts: 2, backoff: { type: 'exponential', delay: 1000 } },
  run: () => ({ bytes: 0 }),
});

let redis: RedisClient;
let jobs: JobQueues;
let dashboard: { url: string; close(): Promise<void> };
let browser: Browser;
let page: Page;
const workers: RunningProcess[] = [];
/** Every URL the browser asked for, to prove nothing loads from another origin. */
let requested: string[];

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  redis = createRedis(target, 'worker');
  await publishCatalog(redis, offloadKeys(prefix), [catalogEntryOf(resize)]);
  jobs = JobQueues.create({ redis: target, prefix });
  dashboard = await serveDashboard(jobs, admin);
  ({ browser, page, requested } = await openBrowser(admin));
});

afterAll(async () => {
  await browser?.close();
  await dashboard?.close();
  await Promise.all(workers.map((worker) => worker.stop('SIGKILL')));
  redis?.disconnect();
  files.remove();
});

async function worker(tasks: string): Promise<RunningProcess> {
  const started = await startWorkerProcess({ redis: target, prefix, tasks, concurrency: 1 });
  workers.push(started);
  return started;
}

const row = (task: string) => page.locator(`#tasks tr[data-task="${task}"]`);
const cell = (task: string, name: string) => row(task).locator(`td.${name}`).textContent();

/** Reloads /tasks until `task` shows `workers` live workers; the page reads Redis on each load. */
async function showsWorkers(task: string, workers: number): Promise<void> {
  await expect
    .poll(
      async () => {
        await page.goto(`${dashboard.url}/tasks`);
        return cell(task, 'workers');
      },
      { timeout: 20_000, interval: 100 },
    )
    .toBe(String(workers));
}

/** Fingerprints of `text.shout` as the workers published them, oldest first. */
async function shoutFingerprints(): Promise<string[]> {
  const { entries } = await jobs.readCatalog();
  return entries
    .filter((entry) => entry.name === 'text.shout')
    .sort((a, b) => a.publishedAt.localeCompare(b.publishedAt))
    .map((entry) => entry.fingerprint);
}

describe('the Tasks page', () => {
  it('answers 401 without credentials', async () => {
    const anonymous = await browser.newContext();
    try {
      const response = await anonymous.request.get(`${dashboard.url}/tasks`);
      expect(response.status()).toBe(401);
      expect(await response.json()).toMatchObject({ status: 401, code: 'unauthorized' });
    } finally {
      await anonymous.close();
    }
  });

  it('lists each task with its queue, live workers and fingerprint, with no flag while one version is live', async () => {
    await worker(`${reverseTask},${shoutVersion(1)}`);
    await page.goto(`${dashboard.url}/fleet`);
    await page.locator('header').getByRole('link', { name: 'Tasks' }).click();
    await page.waitForURL(`${dashboard.url}/tasks`);
    await showsWorkers('text.shout', 1);

    const [v1] = await shoutFingerprints();
    expect(await cell('text.shout', 'queue')).toBe('shout');
    expect(await cell('text.shout', 'fingerprint')).toBe(v1);
    expect(await row('text.shout').textContent()).toContain('Shouts a text (version 1).');
    expect(await cell('text.reverse', 'queue')).toBe('default');
    expect(await cell('text.reverse', 'workers')).toBe('1');
    for (const task of ['text.shout', 'text.reverse']) {
      expect(await row(task).locator('.flag').count(), task).toBe(0);
      expect(await row(task).locator('.versions li').count(), task).toBe(1);
    }
  });

  it('flags a task whose published version no live worker runs, showing its description as text', async () => {
    expect(await cell('image.resize', 'queue')).toBe('images');
    expect(await cell('image.resize', 'workers')).toBe('0');
    expect(await row('image.resize').locator('.flag.no-worker').textContent()).toBe(
      'no live worker',
    );
    expect(await row('image.resize').textContent()).toContain(resize.description);
    expect(await row('image.resize').locator('webp').count()).toBe(0);
  });

  it('flags a mismatch while two versions of one task are live, and shows both fingerprints', async () => {
    await worker(`${reverseTask},${shoutVersion(2)}`);
    await showsWorkers('text.shout', 2);

    const fingerprints = await shoutFingerprints();
    expect(fingerprints).toHaveLength(2);
    const [v1, v2] = fingerprints;
    const shout = row('text.shout');
    expect(await shout.locator('.flag.mismatch').textContent()).toBe(
      '2 versions live — mismatch or rolling deploy',
    );
    expect(await shout.getAttribute('class')).toBe('mismatched');
    // Newest first; the newest live one validates submits.
    expect(
      await shout
        .locator('.versions li')
        .evaluateAll((items) => items.map((item) => item.getAttribute('data-fingerprint'))),
    ).toEqual([v2, v1]);
    expect(await cell('text.shout', 'fingerprint')).toBe(v2);
    for (const fingerprint of [v1, v2]) {
      const version = shout.locator(`.versions li[data-fingerprint="${fingerprint}"]`);
      expect(await version.textContent()).toMatch(/1 live worker · published [\d.]+ (ms|s) ago/);
    }
    // Both workers run the same reverse.ts: one version, no flag.
    expect(await cell('text.reverse', 'workers')).toBe('2');
    expect(await row('text.reverse').locator('.flag').count()).toBe(0);
    await page.getByText('1 with more than one version live').waitFor();
    await page.screenshot({ path: join(SHOTS, 'tasks.png'), fullPage: true });
  });

  it('drops the flag once the rolling deploy ends, keeping the old version listed with no worker', async () => {
    const [first] = workers;
    await first?.stop();
    await showsWorkers('text.shout', 1);

    const [v1, v2] = await shoutFingerprints();
    const shout = row('text.shout');
    expect(await shout.locator('.flag').count()).toBe(0);
    expect(await shout.getAttribute('class')).toBe('');
    expect(await cell('text.shout', 'fingerprint')).toBe(v2);
    expect(await shout.locator(`li[data-fingerprint="${v1}"]`).textContent()).toContain(
      '0 live workers',
    );
    expect(await shout.locator(`li[data-fingerprint="${v2}"]`).textContent()).toContain(
      '1 live worker',
    );
    expect(await cell('text.reverse', 'workers')).toBe('1');
  });

  it('says no live worker for every task once the last worker stops', async () => {
    await workers[1]?.stop();
    await showsWorkers('text.shout', 0);
    for (const task of ['image.resize', 'text.reverse', 'text.shout']) {
      expect(await row(task).locator('.flag.no-worker').textContent(), task).toBe('no live worker');
    }
    await page.getByText('3 with no live worker').waitFor();
  });

  it('loads everything from its own origin', () => {
    const origins = new Set(requested.map((url) => new URL(url).origin));
    expect([...origins]).toEqual([dashboard.url]);
  });
});

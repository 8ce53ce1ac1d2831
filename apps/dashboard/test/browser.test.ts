import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { JobView } from '@offload/contract';
import { JobQueues } from '@offload/queue';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { admin, openBrowser, SHOTS, serveDashboard } from '../../../tests/support/dashboard.ts';
import {
  type RunningProcess,
  startWorkerProcess,
  testPrefix,
} from '../../../tests/support/processes.ts';
import { testRedis } from '../../../tests/support/redis-url.ts';
import { registry } from '../../../tests/support/test-tasks.ts';

/**
 * The dashboard in Debian's Chromium, as an operator uses it: real Redis and
 * a real worker process; jobs are submitted through the API's own JobQueues.
 * Screenshots of each page land in test-results/dashboard/.
 */

let jobs: JobQueues;
let worker: RunningProcess;
let dashboard: { url: string; close(): Promise<void> };
let browser: Browser;
let page: Page;
/** Every URL the browser asked for, to prove nothing loads from another origin. */
let requested: string[];

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  const target = testRedis();
  const prefix = testPrefix();
  worker = await startWorkerProcess({ redis: target, prefix, concurrency: 2, testTasks: true });
  jobs = JobQueues.create({ redis: target, prefix, queueNames: registry.queues() });
  dashboard = await serveDashboard(jobs, admin);
  ({ browser, page, requested } = await openBrowser(admin));
});

afterAll(async () => {
  await browser?.close();
  await dashboard?.close();
  await worker?.stop();
});

const TENANT = 'dev';

async function submit(name: string, input: unknown): Promise<JobView> {
  const task = registry.get(name);
  if (!task) throw new Error(`no task ${name}`);
  return jobs.submitJob({
    task: name,
    queue: task.queue,
    input,
    tenant: TENANT,
    timeoutMs: task.defaults.timeoutMs * 10,
    attempts: 1,
    backoff: task.defaults.backoff,
  });
}

async function until(id: string, state: JobView['state']): Promise<JobView> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const view = await jobs.getJobView(id, TENANT);
    if (view?.state === state) return view;
    if (Date.now() > deadline) throw new Error(`job ${id} never ${state}: ${JSON.stringify(view)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const shot = (name: string) =>
  page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });

describe('the dashboard in a browser', () => {
  it('answers 401 without credentials, on its pages and on bull-board alike', async () => {
    const anonymous = await browser.newContext();
    try {
      for (const path of ['/fleet', '/throughput', '/queues', '/queues/api/queues']) {
        const response = await anonymous.request.get(`${dashboard.url}${path}`);
        expect(response.status(), path).toBe(401);
        expect(response.headers()['www-authenticate']).toMatch(/^Basic /);
        expect(await response.json()).toMatchObject({ status: 401, code: 'unauthorized' });
      }
    } finally {
      await anonymous.close();
    }
  });

  it('logs in and shows a queue with its jobs, and opens one', async () => {
    const done = await Promise.all(
      ['alpha', 'beta', 'gamma'].map((value) => submit('test.echo', { value })),
    );
    await Promise.all(done.map((job) => until(job.id, 'completed')));

    await page.goto(`${dashboard.url}/queues`);
    await page.getByText('default', { exact: true }).first().waitFor();
    await shot('queues');

    await page.goto(`${dashboard.url}/queues/queue/default?status=completed`);
    const id = done[1]?.id ?? '';
    await page.getByText(id).first().waitFor();
    await shot('queue-jobs');

    await page.goto(`${dashboard.url}/queues/queue/default/${id}`);
    await page.getByText('beta').first().waitFor();
    await shot('job');
  });

  it('shows a running job on the fleet page, cancels it, and the job ends canceled', async () => {
    const job = await submit('test.sleep', { ms: 60_000 });
    await until(job.id, 'running');

    await page.goto(`${dashboard.url}/fleet`);
    const row = page.locator(`tr[data-job="${job.id}"]`);
    await row.waitFor({ timeout: 10_000 });
    await expect(row.textContent()).resolves.toContain('test.sleep');
    await expect(page.locator('#fleet').textContent()).resolves.toMatch(/1 \/ 2/);
    await shot('fleet');

    await row.getByRole('button', { name: `Cancel job ${job.id}` }).click();
    await page.getByRole('status').getByText(`Canceled job ${job.id}`).waitFor();
    // What the job's owner now reads from the API.
    const view = await jobs.getJobView(job.id, TENANT);
    expect(view?.state).toBe('canceled');
    expect(view?.error?.code).toBe('canceled');
    // The worker drops it from its running list with its next heartbeat (every 5 s).
    await page.locator(`tr[data-job="${job.id}"]`).waitFor({ state: 'detached', timeout: 10_000 });
  });

  it('draws throughput and latency charts from the history the worker wrote', async () => {
    // The worker writes its counts to Redis once a second (HistoryRecorder), so
    // the job canceled above can be off the fleet page and not yet in the
    // history. Wait for the history itself: three echo jobs completed and one
    // sleep canceled, summed over every minute of the last hour whichever
    // minute they finished in.
    const recorded = async () => {
      const history = await jobs.readHistory(1);
      const total = (task: string, rate: 'completedPerMinute' | 'canceledPerMinute') =>
        (history.series.find((s) => s.queue === 'default' && s.task === task)?.points ?? []).reduce(
          (sum, point) => sum + point[rate] * history.stepMinutes,
          0,
        );
      return {
        echoCompleted: total('test.echo', 'completedPerMinute'),
        sleepCanceled: total('test.sleep', 'canceledPerMinute'),
      };
    };
    const deadline = Date.now() + 10_000;
    for (let counts = await recorded(); counts.echoCompleted < 3 || counts.sleepCanceled < 1; ) {
      if (Date.now() > deadline) throw new Error(`history incomplete: ${JSON.stringify(counts)}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
      counts = await recorded();
    }

    await page.goto(`${dashboard.url}/throughput`);
    const echo = page.locator('section[data-series="default/test.echo"]');
    await echo.waitFor();
    const charts = echo.locator('svg[role="img"]');
    await expect(charts.count()).resolves.toBe(2);
    /** The y of each dot of one line, px from the top of its chart: every minute has a dot, 0 too. */
    const dotsY = (series: string, label: string) =>
      page
        .locator(`section[data-series="${series}"] g.series[data-label="${label}"] circle`)
        .evaluateAll((dots) => dots.map((dot) => Number(dot.getAttribute('cy'))));
    // A dot above the zero line, in whichever minute it is. Neither task ever
    // failed, so its failed line lies on zero.
    const zeroY = async (series: string) => Math.max(...(await dotsY(series, 'failed')));
    expect(Math.min(...(await dotsY('default/test.echo', 'completed')))).toBeLessThan(
      await zeroY('default/test.echo'),
    );
    const runP50 = echo.locator('g.series[data-label="run p50"] path');
    expect(await runP50.getAttribute('d')).toMatch(/^M/);
    expect(Math.min(...(await dotsY('default/test.sleep', 'canceled')))).toBeLessThan(
      await zeroY('default/test.sleep'),
    );
    await shot('throughput');
  });

  it("counts the worker's jobs by task and outcome on its /metrics", async () => {
    const url = /"url":"([^"]+\/metrics)"/.exec(await worker.waitForLine(/metrics listening/))?.[1];
    const text = await (await fetch(url ?? '')).text();
    expect(text).toContain(
      'offload_worker_jobs_total{queue="default",task="test.echo",outcome="completed"} 3',
    );
    expect(text).toContain(
      'offload_worker_jobs_total{queue="default",task="test.sleep",outcome="canceled"} 1',
    );
    expect(text).toMatch(
      /offload_worker_job_run_seconds_count\{queue="default",task="test.echo"\} 3/,
    );
    expect(text).toContain('offload_worker_executors 2');
  });

  it("opens a job's page from the fleet page, and shows a binary result: a link to its bytes and the image drawn", async () => {
    const running = await submit('test.sleep', { ms: 60_000 });
    await until(running.id, 'running');
    await page.goto(`${dashboard.url}/fleet`);
    await page.locator(`tr[data-job="${running.id}"] a[href="/jobs/${running.id}"]`).click();
    await expect(page.locator('#job').textContent()).resolves.toContain('running');
    await jobs.cancelJobAsAdmin(running.id);

    const job = await submit('image.mandelbrot', { width: 120, height: 90 });
    const done = await until(job.id, 'completed');
    const size = (done.result as { size: number }).size;
    await page.goto(`${dashboard.url}/jobs/${job.id}`);
    await expect(page.locator('#result-link').textContent()).resolves.toBe(
      `image/png, ${size} bytes`,
    );
    // The preview is the PNG itself, decoded by the browser.
    // (Strings: this file compiles without the DOM's types.)
    await page.waitForFunction("document.querySelector('#result-preview')?.complete");
    const drawn = await page.evaluate(
      "[document.querySelector('#result-preview').naturalWidth, document.querySelector('#result-preview').naturalHeight]",
    );
    expect(drawn).toEqual([120, 90]);
    await shot('job-binary-result');

    // Following the link serves the bytes with their content type and length.
    const answer = await page.goto(`${dashboard.url}/jobs/${job.id}/result`);
    expect(answer?.headers()['content-type']).toBe('image/png');
    expect(answer?.headers()['content-length']).toBe(String(size));
    const png = await answer?.body();
    expect(png?.subarray(0, 8).toString('hex')).toBe('89504e470d0a1a0a');
  });

  it('retries every failed job of a queue at once, from bull-board', async () => {
    const failed = await Promise.all([submit('test.throw', {}), submit('test.throw', {})]);
    await Promise.all(failed.map((job) => until(job.id, 'failed')));
    await page.goto(`${dashboard.url}/queues/queue/default?status=failed`);
    await page
      .getByText(failed[0]?.id ?? '')
      .first()
      .waitFor();
    // The "Retry all" button's request, sent by the page itself (same origin, saved credentials).
    const status = await page.evaluate(
      async () => (await fetch('api/queues/default/retry/failed', { method: 'PUT' })).status,
    );
    expect(status).toBe(200);
    for (const job of failed) {
      const deadline = Date.now() + 10_000;
      let view = await jobs.getJobView(job.id, TENANT);
      while (view?.attempts.made !== 2 || view.state !== 'failed') {
        if (Date.now() > deadline) throw new Error(`not retried: ${JSON.stringify(view)}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
        view = await jobs.getJobView(job.id, TENANT);
      }
    }
  });

  it('shows a worker that stopped as gone', async () => {
    await worker.stop();
    await page.goto(`${dashboard.url}/fleet`);
    await expect(page.locator('#fleet tr.gone .tag').textContent()).resolves.toBe('gone');
    await page.getByText('0 live workers').waitFor();
  });

  it('loads every page and asset from its own origin', () => {
    const origins = new Set(requested.map((url) => new URL(url).origin));
    expect([...origins]).toEqual([dashboard.url]);
  });
});

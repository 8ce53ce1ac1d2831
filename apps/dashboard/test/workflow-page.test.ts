import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { JobView, WorkflowView } from '@offload/contract';
import { JobQueues } from '@offload/queue';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type TestApi } from '../../../tests/support/api-server.ts';
import { admin, openBrowser, SHOTS, serveDashboard } from '../../../tests/support/dashboard.ts';
import { client } from '../../../tests/support/http.ts';
import {
  type RunningProcess,
  startWorkerProcess,
  testPrefix,
  waitFor,
} from '../../../tests/support/processes.ts';
import { testRedis } from '../../../tests/support/redis-url.ts';
import { registry } from '../../../tests/support/test-tasks.ts';

/**
 * A workflow's page in Chromium: workflows submitted through the API on a
 * real port, their steps run by two real worker processes, read by the
 * dashboard from the same Redis. The screenshot lands in
 * test-results/dashboard/workflow.png.
 */
const target = testRedis();
const prefix = testPrefix();
/** A `$result` field no result has: its step fails, and its error message quotes the field. */
const INJECTED = '<img src=x onerror=alert(1)>';

let api: TestApi;
let workers: RunningProcess[];
let dashboard: { url: string; close(): Promise<void> };
let browser: Browser;
let page: Page;
let http: ReturnType<typeof client>;

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  api = await startApi({ redis: target, prefix, registry, workflows: true });
  workers = await Promise.all(
    [1, 2].map(() =>
      startWorkerProcess({ redis: target, prefix, concurrency: 2, testTasks: true }),
    ),
  );
  dashboard = await serveDashboard(JobQueues.create({ redis: target, prefix }), admin);
  ({ browser, page } = await openBrowser(admin));
  http = client(api.url);
});

afterAll(async () => {
  await browser?.close();
  await dashboard?.close();
  await Promise.all((workers ?? []).map((worker) => worker.stop()));
  await api?.close();
});

async function submit(body: unknown): Promise<WorkflowView> {
  const res = await http.call('POST', '/v1/workflows', body);
  if (res.status !== 202) throw new Error(`answered ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body as unknown as WorkflowView;
}

async function view(id: string): Promise<WorkflowView> {
  return (await http.call('GET', `/v1/workflows/${id}`)).body as unknown as WorkflowView;
}

/** The page's steps table: step id → the text of each cell, in the rows' order. */
async function stepRows(): Promise<[string, string[]][]> {
  return page
    .locator('#steps tbody tr')
    .evaluateAll((rows) =>
      rows.map((row) => [
        row.getAttribute('data-step') ?? '',
        [...row.querySelectorAll('td')].map((td) => (td.textContent ?? '').trim()),
      ]),
    );
}

const COLUMNS = ['step', 'task', 'state', 'needs', 'attempts', 'started', 'duration', 'error'];
const cell = (cells: string[], column: string) => cells[COLUMNS.indexOf(column)] ?? '';

/** "850 ms" → 850, "1.6 s" → 1600. */
function shownMs(text: string): number {
  const match = /^([\d.]+) (ms|s)\b/.exec(text);
  if (!match) throw new Error(`not a duration: ${text}`);
  return Number(match[1]) * (match[2] === 's' ? 1000 : 1);
}

describe("a workflow's page", () => {
  it('shows an ended workflow: its steps in dependency order, states, timings, errors escaped, and a timeline', async () => {
    const started = await submit({
      onStepFailure: 'continue',
      steps: {
        prepare: { task: 'test.echo', input: { value: 'go' } },
        'part-1': { task: 'test.sleep', input: { ms: 100 }, needs: ['prepare'] },
        'part-2': { task: 'test.sleep', input: { ms: 300 }, needs: ['prepare'] },
        part_3: { task: 'test.sleep', input: { ms: 3000 }, needs: ['prepare'] },
        join: {
          task: 'test.echo',
          input: { value: 'joined' },
          needs: ['part_3', 'part-1', 'part-2'],
        },
        bad: { task: 'test.throw', input: {}, options: { attempts: 1 }, needs: ['prepare'] },
        'after-bad': { task: 'test.echo', input: { value: 'never' }, needs: ['bad'] },
        pick: {
          task: 'test.echo',
          input: { value: { $result: `prepare.${INJECTED}` } },
          needs: ['prepare'],
        },
      },
    });
    await waitFor(async () => (await view(started.id)).state !== 'running', 45_000);

    // Ended, it is no longer on the Workflows page: found by its id in the lookup form.
    await page.goto(`${dashboard.url}/workflows`);
    expect(await page.locator(`tr[data-workflow="${started.id}"]`).count()).toBe(0);
    await page.getByLabel(/by its id/).fill(started.id);
    await page.getByRole('button', { name: 'Open' }).click();
    await page.waitForURL(`${dashboard.url}/workflows/${started.id}`);
    expect(await page.locator('h1').textContent()).toBe(`Workflow ${started.id} failed`);
    const fact = (name: string) =>
      page
        .locator('#workflow tr', { has: page.getByRole('rowheader', { name }) })
        .locator('td')
        .textContent();
    expect(await fact('Tenant')).toBe('dev');
    expect(await fact('On step failure')).toBe('continue');
    expect(await fact('Finished')).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z after [\d.]+ (ms|s)$/);
    // Nothing to cancel once ended.
    expect(await page.getByRole('button', { name: /Cancel/ }).count()).toBe(0);

    const rows = await stepRows();
    const order = rows.map(([step]) => step);
    expect(order).toEqual([
      'prepare',
      'part-1',
      'part-2',
      'part_3',
      'join',
      'bad',
      'after-bad',
      'pick',
    ]);
    const byStep = new Map(rows);
    for (const [step, cells] of rows) {
      for (const need of cell(cells, 'needs')
        .split(', ')
        .filter((n) => n !== '–')) {
        expect(order.indexOf(need), `${step} after ${need}`).toBeLessThan(order.indexOf(step));
      }
    }
    const states = Object.fromEntries(rows.map(([step, cells]) => [step, cell(cells, 'state')]));
    expect(states).toEqual({
      prepare: 'completed',
      part_3: 'completed',
      'part-1': 'completed',
      'part-2': 'completed',
      join: 'completed',
      bad: 'failed',
      'after-bad': 'canceled',
      pick: 'failed',
    });
    // `pick` started too: its worker found the field missing and failed it before its task ran.
    const ran = ['prepare', 'part_3', 'part-1', 'part-2', 'join', 'bad', 'pick'];
    const durations = Object.fromEntries(
      ran.map((step) => [step, shownMs(cell(byStep.get(step) ?? [], 'duration'))]),
    );
    console.log('durations shown, ms:', durations);
    expect(durations.part_3).toBeGreaterThanOrEqual(3000);
    for (const step of ran) {
      expect(cell(byStep.get(step) ?? [], 'started')).toMatch(/^\+[\d.]+ (ms|s)$/);
    }
    // Never ran: no start, no duration, no job to open.
    for (const step of ['after-bad']) {
      const cells = byStep.get(step) ?? [];
      expect([cell(cells, 'started'), cell(cells, 'duration'), cells[8]]).toEqual([
        '–',
        '–',
        'none',
      ]);
    }
    expect(cell(byStep.get('join') ?? [], 'needs')).toBe('part_3, part-1, part-2');
    expect(cell(byStep.get('bad') ?? [], 'error')).toBe('task_error boom from test.throw');
    expect(cell(byStep.get('bad') ?? [], 'attempts')).toBe('1 / 1');
    expect(cell(byStep.get('after-bad') ?? [], 'error')).toBe(
      'canceled Canceled: it needs step "bad", which failed',
    );
    // The step's error quotes the field as text: no element is made of it.
    expect(cell(byStep.get('pick') ?? [], 'error')).toContain(INJECTED);
    expect(await page.locator('main img').count()).toBe(0);

    const done = await view(started.id);
    const joinJob = (done.steps.join as JobView).id;
    expect(await page.locator('tr[data-step="join"] a').getAttribute('href')).toBe(
      `/queues/queue/default/${joinJob}`,
    );

    // The timeline: a lane per step, in the same order; a bar for each step that ran, a mark for each that did not.
    const lanes = page.locator('#timeline g[data-step]');
    expect(await lanes.evaluateAll((gs) => gs.map((g) => g.getAttribute('data-step')))).toEqual(
      order,
    );
    const width = async (step: string) =>
      Number(await page.locator(`#timeline g[data-step="${step}"] rect.ran`).getAttribute('width'));
    for (const step of ran) expect(await width(step), step).toBeGreaterThan(0);
    for (const step of ['after-bad']) {
      expect(await page.locator(`#timeline g[data-step="${step}"] rect.ran`).count()).toBe(0);
      expect(await page.locator(`#timeline g[data-step="${step}"] rect.ended`).count()).toBe(1);
    }
    expect(await width('part_3')).toBeGreaterThan(await width('part-1'));
    // The critical path: the join, held up by the slowest part, held up by prepare.
    const critical = await page
      .locator('#timeline g.critical')
      .evaluateAll((gs) => gs.map((g) => g.getAttribute('data-step')));
    console.log('critical path:', critical, 'bar widths, px:', {
      part_3: await width('part_3'),
      'part-1': await width('part-1'),
    });
    expect(critical).toEqual(['prepare', 'part_3', 'join']);
    await page.screenshot({ path: join(SHOTS, 'workflow.png'), fullPage: true });
  });

  it('is linked from the Workflows page, shows running and blocked steps, and cancels the workflow', async () => {
    const started = await submit({
      steps: {
        long: { task: 'test.sleep', input: { ms: 120_000 } },
        next: { task: 'test.echo', input: { value: 'later' }, needs: ['long'] },
      },
    });
    await waitFor(async () => (await view(started.id)).steps.long?.state === 'running', 30_000);

    await page.goto(`${dashboard.url}/workflows`);
    await page.locator(`tr[data-workflow="${started.id}"] a`).click();
    await page.waitForURL(`${dashboard.url}/workflows/${started.id}`);
    const states = Object.fromEntries(
      (await stepRows()).map(([step, cells]) => [step, cell(cells, 'state')]),
    );
    expect(states).toEqual({ long: 'running', next: 'blocked' });
    expect(cell(new Map(await stepRows()).get('long') ?? [], 'duration')).toMatch(/so far$/);
    expect(await page.locator('#timeline g[data-step="next"] rect').count()).toBe(0);

    await page.getByRole('button', { name: `Cancel workflow ${started.id}` }).click();
    await page.locator('h1 .state.canceled').waitFor();
    expect(page.url()).toBe(`${dashboard.url}/workflows/${started.id}`);
    expect(
      Object.fromEntries((await stepRows()).map(([step, cells]) => [step, cell(cells, 'state')])),
    ).toEqual({ long: 'canceled', next: 'canceled' });
    expect((await view(started.id)).state).toBe('canceled');
  });

  it('answers an unknown id with a 404 page that names it, escaped', async () => {
    for (const id of ['no-such-workflow', INJECTED]) {
      const res = await page.goto(`${dashboard.url}/workflows/${encodeURIComponent(id)}`);
      expect(res?.status()).toBe(404);
      expect(await page.locator('h1').textContent()).toBe('No such workflow');
      expect(await page.locator('#missing code').textContent()).toBe(id);
      expect(await page.locator('main img').count()).toBe(0);
    }
  });
});

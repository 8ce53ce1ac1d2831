import type { JobView, WorkflowView } from '@offload/contract';
import { createRedis, offloadKeys } from '@offload/queue';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startApi, type TestApi } from '../support/api-server.ts';
import { client } from '../support/http.ts';
import { startKillableRedis } from '../support/private-redis.ts';
import { type RunningProcess, startWorkerProcess, testPrefix } from '../support/processes.ts';
import { testRedis } from '../support/redis-url.ts';
import { registry } from '../support/test-tasks.ts';

/**
 * Workflows through faults: a worker killed in the middle of a step, and an
 * advance that died between marking a step and adding its job. Real worker
 * processes, the shared test Redis under a fresh key prefix per test.
 */
const target = testRedis();
const admin = createRedis(target, 'worker');
let prefix: string;
const closing: (() => Promise<unknown>)[] = [];

beforeEach(() => {
  prefix = testPrefix();
});
afterEach(async () => {
  await Promise.all(closing.splice(0).map((close) => close()));
});
afterAll(() => admin.disconnect());

async function api(workflows: boolean): Promise<TestApi> {
  const started = await startApi({ redis: target, prefix, registry, workflows });
  closing.push(() => started.close());
  return started;
}

async function worker(concurrency = 1): Promise<RunningProcess> {
  const started = await startWorkerProcess({ redis: target, prefix, testTasks: true, concurrency });
  closing.push(() => started.stop('SIGKILL'));
  return started;
}

async function until(
  http: ReturnType<typeof client>,
  id: string,
  done: (view: WorkflowView) => boolean,
  timeoutMs = 30_000,
): Promise<WorkflowView> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    // 503 while Redis is down: not an answer about the workflow.
    const res = await http.call('GET', `/v1/workflows/${id}`).catch(() => null);
    const view = res?.body as unknown as WorkflowView;
    if (res?.status === 200 && done(view)) return view;
    if (Date.now() > deadline) throw new Error(`never matched: ${JSON.stringify(view)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const step = (view: WorkflowView, name: string) => view.steps[name] as JobView;

describe('workflows through faults', () => {
  it('a step whose worker is killed mid-run runs again on another worker, and the workflow completes', async () => {
    const http = client((await api(true)).url);
    const doomed = await worker();
    const res = await http.call('POST', '/v1/workflows', {
      steps: {
        slow: { task: 'test.sleep', input: { ms: 2000 }, options: { attempts: 2 } },
        next: { task: 'test.echo', input: { value: 'after' }, needs: ['slow'] },
      },
    });
    expect(res.status).toBe(202);
    const id = res.body.id as string;
    const slow = step(res.body as unknown as WorkflowView, 'slow').id;
    await http.until(slow, (view) => view.state === 'running');
    await doomed.stop('SIGKILL');
    const killedAt = Date.now();
    await worker();
    const done = await until(http, id, (view) => view.state !== 'running');
    expect(done.state).toBe('completed');
    expect(step(done, 'slow').attempts.made).toBe(2);
    expect(step(done, 'next').result).toEqual({ value: 'after' });
    console.log(
      `worker killed mid-step: the workflow completed ${Date.now() - killedAt} ms later (lock 5 s + stall check + the 2 s step again)`,
    );
  });

  it('a step marked but never added (its advance died) is added once by the next process that advances the workflow', async () => {
    // An API that does not advance workflows: the first step runs, and nothing adds the second.
    const idle = await api(false);
    const http = client(idle.url);
    await worker();
    const res = await http.call('POST', '/v1/workflows', {
      steps: {
        first: { task: 'test.echo', input: { value: 'x' } },
        second: {
          task: 'test.echo',
          input: { value: { $result: 'first.value' } },
          needs: ['first'],
        },
      },
    });
    const id = res.body.id as string;
    const first = step(res.body as unknown as WorkflowView, 'first').id;
    await http.until(first, (view) => view.state === 'completed');
    // As an advance leaves it when it dies between marking the step and adding its job.
    const keys = offloadKeys(prefix);
    await admin.hset(keys.workflow(id), 'step:second', 'submitting');
    await new Promise((r) => setTimeout(r, 300));
    const waiting = (await http.call('GET', `/v1/workflows/${id}`)).body as unknown as WorkflowView;
    expect(waiting.state).toBe('running');
    expect(step(waiting, 'second').state).toBe('blocked');

    const resumedAt = Date.now();
    await api(true);
    const done = await until(http, id, (view) => view.state !== 'running');
    expect(done.state).toBe('completed');
    expect(step(done, 'second')).toMatchObject({ result: { value: 'x' }, attempts: { made: 1 } });
    const list = await http.call('GET', '/v1/jobs');
    expect((list.body as unknown as { jobs: JobView[] }).jobs.map((job) => job.id).sort()).toEqual(
      [first, step(done, 'second').id].sort(),
    );
    console.log(
      `an advancing process started: the workflow completed ${Date.now() - resumedAt} ms later`,
    );
  });

  it('Redis killed and restarted while a workflow runs: the workflow goes on and completes, one job per step', async () => {
    const redis = await startKillableRedis({ appendOnly: true });
    closing.push(() => redis.close());
    const target = { url: redis.url };
    const own = await startApi({ redis: target, prefix, registry, workflows: true });
    closing.push(() => own.close());
    const running = await startWorkerProcess({
      redis: target,
      prefix,
      testTasks: true,
      concurrency: 2,
    });
    closing.push(() => running.stop('SIGKILL'));
    const http = client(own.url);
    const res = await http.call('POST', '/v1/workflows', {
      steps: {
        first: { task: 'test.sleep', input: { ms: 1500 }, options: { attempts: 3 } },
        second: { task: 'test.echo', input: { value: 'two' }, needs: ['first'] },
        third: {
          task: 'test.echo',
          input: { value: { $result: 'second.value' } },
          needs: ['second'],
        },
      },
    });
    expect(res.status).toBe(202);
    const id = res.body.id as string;
    await http.until(
      step(res.body as unknown as WorkflowView, 'first').id,
      (v) => v.state === 'running',
    );
    // Past the AOF's once-a-second fsync, so the record and the running step are on disk.
    await new Promise((r) => setTimeout(r, 1200));
    await redis.kill();
    await new Promise((r) => setTimeout(r, 2000));
    await redis.restart();
    const restartedAt = Date.now();
    const done = await until(http, id, (view) => view.state !== 'running', 60_000);
    expect(done.state).toBe('completed');
    expect(step(done, 'third').result).toEqual({ value: 'two' });
    const list = await http.call('GET', '/v1/jobs');
    expect((list.body as unknown as { jobs: JobView[] }).jobs).toHaveLength(3);
    console.log(
      `Redis killed for 2 s under a workflow: it completed ${Date.now() - restartedAt} ms after Redis returned`,
    );
  });

  it('a step whose job passes its retention (2 s) stays completed; only a $result of it can no longer be filled', async () => {
    const retention = { completedMs: 2000, failedMs: 2000 };
    const own = await startApi({ redis: target, prefix, registry, workflows: true, retention });
    closing.push(() => own.close());
    const running = await startWorkerProcess({
      redis: target,
      prefix,
      testTasks: true,
      concurrency: 2,
      env: { JOB_RETENTION_COMPLETED_S: '2', JOB_RETENTION_FAILED_S: '2' },
    });
    closing.push(() => running.stop('SIGKILL'));
    const http = client(own.url);
    const res = await http.call('POST', '/v1/workflows', {
      onStepFailure: 'continue',
      steps: {
        quick: { task: 'test.echo', input: { value: 'early' } },
        slow: { task: 'test.sleep', input: { ms: 6000 } },
        after: { task: 'test.echo', input: { value: 'late' }, needs: ['quick', 'slow'] },
        uses: {
          task: 'test.echo',
          input: { value: { $result: 'quick.value' } },
          needs: ['quick', 'slow'],
        },
      },
    });
    expect(res.status).toBe(202);
    const started = res.body as unknown as WorkflowView;
    const done = await until(http, started.id, (view) => view.state !== 'running', 30_000);
    // The quick step's job is gone by now: removed past its retention.
    expect((await http.call('GET', `/v1/jobs/${step(started, 'quick').id}`)).status).toBe(410);
    expect(step(done, 'quick')).toMatchObject({ state: 'completed', result: null });
    expect(step(done, 'after')).toMatchObject({ state: 'completed', result: { value: 'late' } });
    expect(step(done, 'uses')).toMatchObject({
      state: 'failed',
      startedAt: null,
      error: { code: 'invalid_input', message: expect.stringContaining('no longer kept') },
    });
    expect(done.state).toBe('failed');
  });
});

import { isFinal, type JobView } from '@offload/contract';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testPrefix } from '../../../tests/support/processes.ts';
import { testRedis } from '../../../tests/support/redis-url.ts';
import { DEFAULT_BLOB_DIR, FileBlobStore } from '../src/blob-store.ts';
import { createRedis } from '../src/connection.ts';
import { JobFailure } from '../src/failure.ts';
import { JobFeed, type JobFinish } from '../src/job-feed.ts';
import { DEFAULT_RETENTION } from '../src/job-options.ts';
import { JobQueues, type SubmitRequest } from '../src/job-queues.ts';
import { offloadKeys } from '../src/keys.ts';
import { type QueueWorker, type RunningJob, startQueueWorker } from '../src/queue-worker.ts';

const QUEUE = 'default';
const TENANT = 'feed-tenant';
const redis = createRedis(testRedis(), 'worker');
afterAll(() => redis.disconnect());

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Inputs the test runner understands: how the job's attempts end. */
type Plan =
  | { end: 'complete'; result: unknown }
  | { end: 'fail' }
  | { end: 'fail-once'; result: unknown }
  | { end: 'wait-for-cancel'; after: 'fail' | 'complete' };

describe("a followed job's final view, built from the event that finished it", () => {
  let queues: JobQueues;
  let worker: QueueWorker;
  let prefix: string;

  beforeAll(async () => {
    prefix = testPrefix();
    const keys = offloadKeys(prefix);
    queues = JobQueues.create({ redis: testRedis(), prefix, queueNames: [QUEUE] });
    const canceled = async (id: string) => {
      while (!(await redis.exists(keys.canceled(id)))) await sleep(20);
    };
    worker = startQueueWorker({
      redis,
      keys,
      queue: QUEUE,
      concurrency: 4,
      retention: DEFAULT_RETENTION,
      maxRunningPerTenant: 0,
      blobs: new FileBlobStore(DEFAULT_BLOB_DIR),
      run: async (job: RunningJob) => {
        const plan = job.input as Plan;
        job.progress(40);
        // Long enough that the follower subscribes while the job runs or waits.
        await sleep(100);
        if (plan.end === 'complete') return { result: plan.result, bytes: 10 };
        if (plan.end === 'fail-once' && job.attempt > 1) return { result: plan.result, bytes: 10 };
        if (plan.end === 'wait-for-cancel') {
          await canceled(job.id);
          if (plan.after === 'complete') return { result: 'finished anyway', bytes: 20 };
          throw new JobFailure('canceled', 'Canceled by request', true);
        }
        throw new JobFailure('task_error', `attempt ${job.attempt} broke`, false);
      },
    });
    // The feed's reader starts at the stream's end once connected: a job it missed waits out the wait.
    const warmUp = await submit({ end: 'complete', result: null });
    await queues.waitForJobView(warmUp.id, TENANT, 3000);
  });
  afterAll(async () => {
    await worker.close();
    await queues.close();
  });

  const submit = (plan: Plan, attempts = 1) =>
    queues.submitJob({
      task: 'test.plan',
      queue: QUEUE,
      input: plan,
      tenant: TENANT,
      timeoutMs: 10_000,
      attempts,
      backoff: { type: 'fixed', delay: 50 },
    } satisfies SubmitRequest);

  /** What a follower is told once the job is final; `afterSubscribe` runs while it follows. */
  async function followToEnd(
    id: string,
    everyChange: boolean,
    afterSubscribe?: () => Promise<unknown>,
  ): Promise<JobView> {
    let told: (view: JobView) => void = () => {};
    const final = new Promise<JobView>((resolve) => {
      told = resolve;
    });
    const watch = await queues.watchJob(
      id,
      TENANT,
      (update) => {
        if ('view' in update && update.view && isFinal(update.view.state)) told(update.view);
      },
      { everyChange },
    );
    if (!watch) throw new Error(`job ${id} not found`);
    expect(isFinal(watch.view.state)).toBe(false);
    try {
      await afterSubscribe?.();
      return await final;
    } finally {
      watch.subscription.stop();
    }
  }

  for (const everyChange of [false, true]) {
    const follower = everyChange ? 'a stream' : 'a long-poll';
    it(`tells ${follower} exactly what a GET answers, for completed, failed, retried and canceled jobs`, async () => {
      const cases: { plan: Plan; attempts?: number; cancel?: boolean; state: string }[] = [
        { plan: { end: 'complete', result: { n: 1, text: 'ok' } }, state: 'completed' },
        { plan: { end: 'complete', result: null }, state: 'completed' },
        { plan: { end: 'fail' }, state: 'failed' },
        { plan: { end: 'fail-once', result: [1, 2] }, attempts: 3, state: 'completed' },
        { plan: { end: 'fail' }, attempts: 2, state: 'failed' },
        { plan: { end: 'wait-for-cancel', after: 'fail' }, cancel: true, state: 'canceled' },
        // The cancel is recorded, then the attempt completes anyway: the record wins, as in a GET.
        { plan: { end: 'wait-for-cancel', after: 'complete' }, cancel: true, state: 'canceled' },
      ];
      await Promise.all(
        cases.map(async ({ plan, attempts, cancel, state }) => {
          const { id } = await submit(plan, attempts);
          const told = await followToEnd(
            id,
            everyChange,
            cancel ? () => queues.cancelJob(id, TENANT) : undefined,
          );
          expect(told.state).toBe(state);
          expect(told).toEqual(await queues.getJobView(id, TENANT));
        }),
      );
    });
  }
});

describe('the read after a finishing event', () => {
  it("starts from the event: one full read when the follower subscribes, then only the event's", async () => {
    const prefix = testPrefix();
    const keys = offloadKeys(prefix);
    const reads: string[] = [];
    const finishes: JobFinish[] = [];
    const view = (id: string, state: JobView['state']) =>
      ({ id, task: 't', state, progress: 0 }) as JobView;
    const feed = new JobFeed(testRedis(), keys, {
      read: async (id) => {
        reads.push(id);
        return view(id, 'queued');
      },
      readFinished: async (id, queue, finish) => {
        expect(queue).toBe(QUEUE);
        finishes.push(finish);
        return view(id, finish.event === 'completed' ? 'completed' : 'failed');
      },
    });
    feed.add(QUEUE);
    const queue = new Queue(QUEUE, { connection: redis, prefix: keys.queuePrefix(QUEUE) });
    const bull = startBullWorker(prefix);
    try {
      /** Follows a job until it is final, or for `capMs`. */
      const follow = async (id: string, name: string, result: unknown, capMs = 10_000) => {
        const finished = new Promise<void>((resolve) => {
          const subscription = feed.subscribe(
            id,
            (update) => {
              if ('view' in update && update.view && isFinal(update.view.state)) {
                subscription.stop();
                resolve();
              }
            },
            { everyChange: false },
          );
          void subscription.current();
          setTimeout(() => {
            subscription.stop();
            resolve();
          }, capMs).unref();
        });
        await queue.add(
          name,
          { task: name, input: { result }, tenant: 't', timeoutMs: 10_000 },
          { jobId: id },
        );
        await finished;
      };
      // The feed's reader starts at the stream's end once connected: a job it missed waits out the cap.
      await follow('feed-warm-up', 'ok', null, 3000);
      reads.length = 0;
      finishes.length = 0;
      await follow('feed-ok', 'ok', { n: 1 });
      await follow('feed-broken', 'broken', null);
      expect(reads).toEqual(['feed-ok', 'feed-broken']);
      expect(finishes).toEqual([
        { event: 'completed', result: { n: 1 } },
        { event: 'failed', failedReason: 'task_error: broken' },
      ]);
    } finally {
      await bull.close();
      await queue.close();
      await feed.close();
      feed.disconnect();
    }
  });
});

/** A plain BullMQ worker: `ok` returns the job's `result`, anything else fails. */
function startBullWorker(prefix: string) {
  return startQueueWorker({
    redis,
    keys: offloadKeys(prefix),
    queue: QUEUE,
    concurrency: 1,
    retention: DEFAULT_RETENTION,
    maxRunningPerTenant: 0,
    blobs: new FileBlobStore(DEFAULT_BLOB_DIR),
    run: async (job) => {
      if (job.task === 'ok') return { result: (job.input as { result: unknown }).result, bytes: 1 };
      throw new JobFailure('task_error', job.task, true);
    },
  });
}

import {
  isFinal,
  type JobError,
  type JobView,
  type StepFailurePolicy,
  type WorkflowState,
  type WorkflowView,
} from '@offload/contract';
import { findResultRefs, stepOrder } from '@offload/contract/workflow';
import { guardRedis, type RedisClient, type RedisTarget } from './connection.ts';
import { submitIdempotently } from './idempotency.ts';
import type { Retention } from './job-options.ts';
import type { CancelOutcome, SubmitRequest } from './job-queues.ts';
import type { OffloadKeys } from './keys.ts';
import { QueueQuotaExceededError, StorageQuotaExceededError } from './tenant-jobs.ts';
import { type WebhookDeliveries, webhookState } from './webhook-deliveries.ts';
import { waitForWorkflowLock, withWorkflowLock } from './workflow-lock.ts';
import {
  iso,
  type PlannedStep,
  readWorkflow,
  type StepNow,
  type WorkflowRecord,
  type WorkflowRequest,
  type WorkflowStep,
  waitingStep,
  workflowView,
} from './workflow-record.ts';
import { WorkflowRunner } from './workflow-runner.ts';

export type { WorkflowRequest, WorkflowStep };

/** What the workflows need of the job queues: the ids, submits, reads and cancels of their steps' jobs. */
export interface StepJobs {
  issueIds(tenant: string, count: number): Promise<string[]>;
  wasIssued(id: string, tenant: string): Promise<boolean>;
  /** Throws StorageQuotaExceededError when the bytes would take the tenant past its storage quota. */
  holdBytes(tenant: string, entry: string, bytes: number, until: number): Promise<void>;
  submitJobs(requests: readonly SubmitRequest[], ids: readonly string[]): Promise<JobView[]>;
  getJobView(id: string, tenant: string, options?: { result: boolean }): Promise<JobView | null>;
  cancelJob(id: string, tenant: string, reason: string): Promise<CancelOutcome | null>;
  /** The webhook deliveries, a workflow's among them. */
  readonly webhooks: WebhookDeliveries;
}

/**
 * A running workflow is advanced again after this long even when nothing
 * nudged it, ms: it catches a worker that died between a step's end and its
 * nudge, a step canceled on its own (DELETE /v1/jobs/{id}), a step a quota
 * refused, and a process that died while advancing.
 */
export const WORKFLOW_RECHECK_MS = 5000;
/** A workflow not yet ended, as operators see it (the dashboard): counts, not steps. */
export interface RunningWorkflow {
  id: string;
  tenant: string;
  /** ms since epoch */
  createdAt: number;
  /** Steps in all (null for a record written before the count was kept). */
  steps: number | null;
  /** Steps whose job was added, or that ended without one. */
  started: number;
  /** Steps whose job an advance has seen finished. */
  finished: number;
  /** A cancel was asked and is being carried out. */
  canceling: boolean;
}

/** A workflow as operators see it (the dashboard): its view, and what the view leaves out. */
export interface WorkflowDetail {
  view: WorkflowView;
  tenant: string;
  onStepFailure: StepFailurePolicy;
  /** Step id → the steps it needs. */
  needs: Record<string, string[]>;
}

/** Longest a create with an Idempotency-Key takes, ms: a repeat waits up to IDEMPOTENCY_WAIT_MS for the first. */
const IDEMPOTENT_CREATE_WITHIN_MS = 5000;

/** Bytes a workflow's record holds besides its steps (its fields, the due entry, the pointers), for the storage quota. */
const RECORD_OVERHEAD_BYTES = 1024;

/** The tenant ledger's entry for a workflow's record: never a job id (those have no `:`). */
const ledgerEntry = (id: string) => `workflow:${id}`;

/**
 * Workflows (DESIGN.md §3): steps are jobs, added as the steps they need
 * complete. The record lives under the workflow's own hash tag; the API
 * processes advance workflows, one process at a time per workflow (a lock
 * under the same tag), when a worker nudges one (a step ended) or every
 * WORKFLOW_RECHECK_MS. Each step's job id is issued with the workflow, so a
 * step added twice (an advance that died between its add and its mark) is
 * found, not duplicated.
 */
export class Workflows {
  private readonly runner: WorkflowRunner;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: OffloadKeys,
    private readonly jobs: StepJobs,
    private readonly retention: Retention,
    /** Where the nudges' subscriber connects. */
    target: RedisTarget,
  ) {
    this.runner = new WorkflowRunner(redis, keys, target, (id) => this.advanceLocked(id));
  }

  /**
   * Records the workflow and adds the jobs of the steps that need none, all
   * or nothing: a quota those would pass refuses the workflow
   * (QueueQuotaExceededError), and nothing of it stays.
   */
  async create(request: WorkflowRequest, givenId?: string): Promise<WorkflowView> {
    const names = Object.keys(request.steps);
    const issued = await this.jobs.issueIds(request.tenant, names.length + (givenId ? 0 : 1));
    const [id, ...jobIds] = givenId ? [givenId, ...issued] : issued;
    const plan: Record<string, PlannedStep> = Object.fromEntries(
      names.map((name, i) => {
        const step = request.steps[name] as WorkflowStep;
        const job = { ...step.request, workflow: id as string };
        return [name, { needs: step.needs, request: job, jobId: jobIds[i] as string }];
      }),
    );
    const roots = names.filter((name) => plan[name]?.needs.length === 0);
    const createdAt = Date.now();
    const workflowId = id as string;
    const key = this.keys.workflow(workflowId);
    const planJson = JSON.stringify(plan);
    // Counted in the tenant's storage quota like its jobs' inputs: refused (429) before anything is written.
    await this.jobs.holdBytes(
      request.tenant,
      ledgerEntry(workflowId),
      Buffer.byteLength(planJson) + RECORD_OVERHEAD_BYTES,
      Number.POSITIVE_INFINITY,
    );
    await guardRedis(this.redis, async () => {
      // Before the record: a workflow that exists has its delivery (see webhook-deliveries.ts).
      if (request.webhook) {
        await this.jobs.webhooks.add(
          [{ kind: 'workflow', id: workflowId, tenant: request.tenant, url: request.webhook.url }],
          createdAt,
        );
      }
      // Due first: a record written by a process that dies before adding its roots is then advanced (and they added) by another.
      await this.redis.zadd(this.keys.workflowsDue, createdAt + WORKFLOW_RECHECK_MS, workflowId);
      await this.redis.hset(key, {
        tenant: request.tenant,
        createdAt: String(createdAt),
        onStepFailure: request.onStepFailure,
        steps: String(names.length),
        plan: planJson,
        ...(request.webhook && { webhook: '1' }),
        ...Object.fromEntries(roots.map((name) => [`step:${name}`, 'submitting'])),
      });
      // So /v1/jobs/{id} of a step without a job yet finds it (keys of their own: one command each).
      await Promise.all(
        names
          .filter((name) => !roots.includes(name))
          .map((name) =>
            this.redis.set(
              this.keys.workflowStep((plan[name] as PlannedStep).jobId),
              JSON.stringify({ workflow: workflowId, step: name }),
            ),
          ),
      );
    });
    let added: JobView[];
    try {
      added = await this.jobs.submitJobs(
        roots.map((name) => (plan[name] as PlannedStep).request),
        roots.map((name) => (plan[name] as PlannedStep).jobId),
      );
    } catch (err) {
      await guardRedis(this.redis, () =>
        Promise.all([
          this.redis.del(key),
          this.redis.zrem(this.keys.workflowsDue, workflowId),
          ...this.pointers(plan).map((pointer) => this.redis.del(pointer)),
        ]),
      ).catch(() => {});
      await this.jobs
        .holdBytes(request.tenant, ledgerEntry(workflowId), 0, Date.now())
        .catch(() => {});
      throw err;
    }
    await guardRedis(this.redis, () =>
      this.redis.hset(key, Object.fromEntries(roots.map((name) => [`step:${name}`, 'submitted']))),
    );
    // Answered from the submit itself: the roots as added, the others blocked.
    const record: WorkflowRecord = {
      id: workflowId,
      tenant: request.tenant,
      createdAt,
      onStepFailure: request.onStepFailure,
      plan,
      marks: new Map(),
      done: new Map(),
      cancel: null,
      state: null,
      finishedAt: null,
      webhook: request.webhook !== undefined,
    };
    const steps = new Map(
      names.map((name): [string, StepNow] => {
        const view = added[roots.indexOf(name)];
        return [name, view ? { phase: 'live', view } : waitingStep(record, name)];
      }),
    );
    return workflowView(record, steps);
  }

  /**
   * create() once per Idempotency-Key of the tenant (keys of workflows apart
   * from those of jobs): the same key and request again answer that workflow
   * (`created` false); another request throws IdempotencyConflictError.
   */
  async createOnce(
    request: WorkflowRequest,
    key: string,
    requestHash: string,
  ): Promise<{ view: WorkflowView; created: boolean }> {
    const { tenant } = request;
    // Longer than one command: a repeated request may wait up to 2 s for the first one's workflow.
    return guardRedis(
      this.redis,
      () =>
        submitIdempotently<WorkflowView>({
          redis: this.redis,
          keys: this.keys,
          tenant,
          key: `workflow ${key}`,
          requestHash,
          newJobId: async () => (await this.jobs.issueIds(tenant, 1))[0] as string,
          create: (id) => this.create(request, id),
          viewOf: (id) => this.get(id, tenant),
        }),
      IDEMPOTENT_CREATE_WITHIN_MS,
    );
  }

  /** The workflow's view, or null when the tenant has no workflow with that id. */
  async get(id: string, tenant: string): Promise<WorkflowView | null> {
    const record = await this.read(id, tenant);
    return record && this.viewOf(record);
  }

  /** The view of a record, with its webhook's state as its delivery says (one read, for a workflow with a webhook only). */
  private async viewOf(record: WorkflowRecord): Promise<WorkflowView> {
    const view = workflowView(record, await this.stepsNow(record));
    const delivery = record.webhook ? await this.jobs.webhooks.read(record.id) : null;
    return delivery ? { ...view, webhook: webhookState(delivery) } : view;
  }

  /**
   * Cancels every unfinished step: running jobs are stopped, queued ones
   * removed, blocked ones never start. `finished` when the workflow had
   * completed or failed already; null when the tenant has no such workflow.
   */
  async cancel(
    id: string,
    /** null: an operator's cancel (the dashboard), whoever owns the workflow. */
    tenant: string | null,
  ): Promise<{ outcome: 'canceled' | 'finished'; view: WorkflowView } | null> {
    const record = await this.read(id, tenant);
    if (!record) return null;
    if (record.state) {
      const view = workflowView(record, await this.stepsNow(record));
      return { outcome: record.state === 'canceled' ? 'canceled' : 'finished', view };
    }
    await guardRedis(this.redis, () =>
      this.redis.hsetnx(this.keys.workflow(id), 'cancel', 'Canceled: the workflow was canceled'),
    );
    // Advanced here, so the answer shows every step canceled; an advance under way elsewhere is waited for.
    await waitForWorkflowLock(this.redis, this.keys, id, () => this.advance(id));
    const after = (await this.read(id, tenant)) as WorkflowRecord;
    const view = workflowView(after, await this.stepsNow(after));
    return { outcome: view.state === 'completed' ? 'finished' : 'canceled', view };
  }

  /**
   * Workflows not yet ended, every tenant's, for operators: at most `limit`
   * (the next to be looked at), newest first, each from a few small fields and its record's field names
   * (never its plan, which may be large), and how many there are in all.
   */
  async listRunning(limit: number): Promise<{ workflows: RunningWorkflow[]; total: number }> {
    return guardRedis(this.redis, async () => {
      const [ids, total] = await Promise.all([
        this.redis.zrange(this.keys.workflowsDue, 0, limit - 1),
        this.redis.zcard(this.keys.workflowsDue),
      ]);
      const found = await Promise.all(
        ids.map(async (id): Promise<RunningWorkflow | null> => {
          const key = this.keys.workflow(id);
          const [[tenant, createdAt, steps, cancel], fields] = await Promise.all([
            this.redis.hmget(key, 'tenant', 'createdAt', 'steps', 'cancel'),
            this.redis.hkeys(key),
          ]);
          if (!tenant || !createdAt) return null;
          return {
            id,
            tenant,
            createdAt: Number(createdAt),
            steps: steps ? Number(steps) : null,
            started: fields.filter((field) => field.startsWith('step:')).length,
            finished: fields.filter((field) => field.startsWith('done:')).length,
            canceling: cancel !== null,
          };
        }),
      );
      const workflows = found.filter((workflow) => workflow !== null);
      return { workflows: workflows.sort((a, b) => b.createdAt - a.createdAt), total };
    });
  }

  /** Any tenant's workflow, for operators, while its record lasts; null when there is none. */
  async inspect(id: string): Promise<WorkflowDetail | null> {
    const record = await this.read(id, null);
    if (!record) return null;
    return {
      view: await this.viewOf(record),
      tenant: record.tenant,
      onStepFailure: record.onStepFailure,
      needs: Object.fromEntries(
        Object.entries(record.plan).map(([name, step]) => [name, step.needs]),
      ),
    };
  }

  /** How many workflows have not ended yet, every tenant's. */
  async countRunning(): Promise<number> {
    return guardRedis(this.redis, () => this.redis.zcard(this.keys.workflowsDue));
  }

  /**
   * Advances due workflows until stop(), when a worker says a step ended and
   * every so often (see workflow-runner.ts); `onError` hears of a round that
   * failed (Redis down included: the caller decides what is worth a log line).
   */
  start(onError: (err: unknown) => void): void {
    this.runner.start(onError);
  }

  stop(): void {
    this.runner.stop();
  }

  /** Advances the workflow unless another process is at it: false then. */
  private advanceLocked(id: string): Promise<boolean> {
    return withWorkflowLock(this.redis, this.keys, id, async () => {
      // Put off before reading: a nudge from now on brings it back, and none is lost.
      await guardRedis(this.redis, () =>
        this.redis.zadd(this.keys.workflowsDue, 'XX', Date.now() + WORKFLOW_RECHECK_MS, id),
      );
      await this.advance(id);
    });
  }

  /**
   * The view of a step that has no job, by the id its job has or will have:
   * blocked, or ended without running. Null when that id is no such step
   * (a job, added or not: read it as one).
   */
  async stepView(jobId: string, tenant: string): Promise<JobView | null> {
    const found = await this.stepOf(jobId, tenant);
    if (!found) return null;
    const mark = found.record.marks.get(found.name);
    if (typeof mark === 'object') return mark;
    return mark === 'submitted' ? null : waitingStep(found.record, found.name).view;
  }

  /**
   * Cancels a step that has no job yet (DELETE /v1/jobs/{id} of a blocked
   * step): it never starts, and its workflow goes on as for any step canceled.
   * Null when that id is no such step (its job was added meanwhile: cancel
   * that).
   */
  async cancelStep(jobId: string, tenant: string): Promise<CancelOutcome | null> {
    const found = await this.stepOf(jobId, tenant);
    if (!found) return null;
    const { name } = found;
    const id = found.record.id;
    let answer: CancelOutcome | null = null;
    await waitForWorkflowLock(this.redis, this.keys, id, async () => {
      const record = await this.read(id, null);
      const mark = record?.marks.get(name);
      if (!record || typeof mark === 'string') return;
      if (typeof mark === 'object') {
        answer = { outcome: mark.state === 'canceled' ? 'canceled' : 'finished', view: mark };
        return;
      }
      const view: JobView = {
        ...waitingStep(record, name).view,
        state: 'canceled',
        error: { code: 'canceled', message: 'Canceled by request' },
        finishedAt: iso(Date.now()),
      };
      await guardRedis(this.redis, () =>
        this.redis.hset(this.keys.workflow(id), `step:${name}`, JSON.stringify(view)),
      );
      answer = { outcome: 'canceled', view };
      await this.advance(id);
    });
    return answer;
  }

  /** The record, or null when there is none that `tenant` (null: anyone) owns. */
  private async read(id: string, tenant: string | null): Promise<WorkflowRecord | null> {
    if (tenant !== null && !(await this.jobs.wasIssued(id, tenant))) return null;
    const record = await readWorkflow(this.redis, this.keys, id);
    return record && (tenant === null || record.tenant === tenant) ? record : null;
  }

  /** The workflow and step name a step's job id belongs to, if `tenant` owns it. */
  private async stepOf(
    jobId: string,
    tenant: string,
  ): Promise<{ record: WorkflowRecord; name: string } | null> {
    if (!(await this.jobs.wasIssued(jobId, tenant))) return null;
    const pointer = await guardRedis(this.redis, () =>
      this.redis.get(this.keys.workflowStep(jobId)),
    );
    if (!pointer) return null;
    const { workflow, step } = JSON.parse(pointer) as { workflow: string; step: string };
    const record = await this.read(workflow, tenant);
    return record && record.plan[step]?.jobId === jobId ? { record, name: step } : null;
  }

  /** The pointer keys of the steps that had no job at the start. */
  private pointers(plan: Record<string, PlannedStep>): string[] {
    return Object.values(plan)
      .filter((step) => step.needs.length > 0)
      .map((step) => this.keys.workflowStep(step.jobId));
  }

  /**
   * One step of the workflow's life, under its lock: ends the steps that can
   * no longer run (canceled, or failed: a result it needs is gone), adds
   * the jobs of those whose needs have all completed, and records the
   * workflow's end once every step has ended.
   */
  private async advance(id: string): Promise<void> {
    const record = await this.read(id, null);
    if (!record || record.state) {
      await guardRedis(this.redis, () => this.redis.zrem(this.keys.workflowsDue, id));
      return;
    }
    // The results stay in their jobs: a step reads those it needs when it starts.
    const now = await this.stepsNow(record, { results: false });
    const ended = new Map<string, JobView>();
    const end = (name: string, state: 'canceled' | 'failed', error: JobError) => {
      const step = now.get(name) as StepNow;
      const view: JobView = { ...step.view, state, error, finishedAt: iso(Date.now()) };
      now.set(name, { phase: 'done', view });
      ended.set(name, view);
    };
    const failed = [...now].find(
      ([, step]) => step.phase === 'done' && step.view.state !== 'completed',
    );
    const stopAll =
      record.cancel ??
      (failed && record.onStepFailure === 'cancel_rest'
        ? `Canceled: step "${failed[0]}" ${failed[1].view.state}`
        : null);
    const ready: string[] = [];
    if (stopAll) {
      for (const [name, step] of now) {
        if (step.phase === 'waiting') end(name, 'canceled', { code: 'canceled', message: stopAll });
        if (step.phase !== 'live') continue;
        const jobId = (record.plan[name] as PlannedStep).jobId;
        const canceled = await this.jobs.cancelJob(jobId, record.tenant, stopAll);
        if (canceled) now.set(name, { phase: 'done', view: canceled.view });
      }
    } else {
      const order = stepOrder(
        Object.fromEntries(Object.entries(record.plan).map(([name, step]) => [name, step.needs])),
      );
      for (const name of 'order' in order ? order.order : []) {
        const step = record.plan[name] as PlannedStep;
        if ((now.get(name) as StepNow).phase !== 'waiting') continue;
        const unmet = step.needs.find((need) => {
          const it = now.get(need) as StepNow;
          return it.phase === 'done' && it.view.state !== 'completed';
        });
        if (unmet) {
          const state = (now.get(unmet) as StepNow).view.state;
          end(name, 'canceled', {
            code: 'canceled',
            message: `Canceled: it needs step "${unmet}", which ${state}`,
          });
        } else if (step.needs.every((need) => now.get(need)?.view.state === 'completed')) {
          ready.push(name);
        }
      }
    }
    const requests: SubmitRequest[] = [];
    for (const name of ready) {
      const step = record.plan[name] as PlannedStep;
      const expired = findResultRefs(step.request.input).find((ref) => now.get(ref.step)?.expired);
      if (expired) {
        end(name, 'failed', {
          code: 'invalid_input',
          message: `The result of step "${expired.step}" is no longer kept: its job passed its retention before this step could start`,
        });
        continue;
      }
      // The input keeps its placeholders; the job carries where each named result is,
      // and its worker fills them in when the step starts (step-input.ts).
      const results = Object.fromEntries(
        findResultRefs(step.request.input).map(({ step: need }) => {
          const { request, jobId } = record.plan[need] as PlannedStep;
          return [need, { queue: request.queue, jobId }];
        }),
      );
      requests.push(Object.keys(results).length > 0 ? { ...step.request, results } : step.request);
    }
    const key = this.keys.workflow(id);
    const adding = ready.filter((name) => !ended.has(name));
    // Jobs seen finished for the first time: their step stays finished once the job is gone.
    const seenDone = [...now].filter(
      ([name, step]) =>
        step.phase === 'done' &&
        typeof record.marks.get(name) === 'string' &&
        !ended.has(name) &&
        !step.expired &&
        !record.done.has(name),
    );
    if (ended.size > 0 || adding.length > 0 || seenDone.length > 0) {
      await guardRedis(this.redis, () =>
        this.redis.hset(key, {
          ...Object.fromEntries(
            [...ended].map(([name, view]) => [`step:${name}`, JSON.stringify(view)]),
          ),
          ...Object.fromEntries(adding.map((name) => [`step:${name}`, 'submitting'])),
          ...Object.fromEntries(
            seenDone.map(([name, step]) => [
              `done:${name}`,
              JSON.stringify({ ...step.view, result: null }),
            ]),
          ),
        }),
      );
    }
    if (adding.length > 0) {
      try {
        await this.jobs.submitJobs(
          requests,
          adding.map((name) => (record.plan[name] as PlannedStep).jobId),
        );
        await guardRedis(this.redis, () =>
          this.redis.hset(
            key,
            Object.fromEntries(adding.map((name) => [`step:${name}`, 'submitted'])),
          ),
        );
      } catch (err) {
        // Marked `submitting`: added at the next advance, once the tenant's jobs have made room.
        if (!(err instanceof QueueQuotaExceededError || err instanceof StorageQuotaExceededError)) {
          throw err;
        }
      }
    }
    // A step ended here (a result it needs gone, a need that failed) decides others:
    // cancel_rest's cancels, the steps that need it. Looked at again now, not at the next nudge.
    if (!stopAll && ended.size > 0) return this.advance(id);
    if ([...now.values()].some((step) => step.phase !== 'done')) return;
    const views = [...now.values()].map((step) => step.view);
    // Every step completed before a cancel could stop one: the workflow completed.
    const state: WorkflowState = views.every((view) => view.state === 'completed')
      ? 'completed'
      : record.cancel
        ? 'canceled'
        : 'failed';
    const keepMs = state === 'completed' ? this.retention.completedMs : this.retention.failedMs;
    // Kept for the views only: the steps' inputs go (their jobs hold them), and the record's bytes with them.
    const plan = JSON.stringify(
      Object.fromEntries(
        Object.entries(record.plan).map(([name, step]) => [
          name,
          { ...step, request: { ...step.request, input: null } },
        ]),
      ),
    );
    const marks = [...record.marks.values(), ...ended.values(), ...record.done.values()]
      .filter((mark) => typeof mark === 'object')
      .reduce((sum, mark) => sum + Buffer.byteLength(JSON.stringify(mark)), 0);
    // Never more than it held while running, so the quota cannot refuse a workflow its end.
    const held = Buffer.byteLength(JSON.stringify(record.plan)) + RECORD_OVERHEAD_BYTES;
    await this.jobs.holdBytes(
      record.tenant,
      ledgerEntry(id),
      Math.min(held, Buffer.byteLength(plan) + marks + RECORD_OVERHEAD_BYTES),
      Date.now() + keepMs,
    );
    await guardRedis(this.redis, async () => {
      await this.redis.hset(key, { state, finishedAt: String(Date.now()), plan });
      await this.redis.pexpire(key, keepMs);
      await Promise.all(
        this.pointers(record.plan).map((pointer) => this.redis.pexpire(pointer, keepMs)),
      );
      await this.redis.zrem(this.keys.workflowsDue, id);
    });
    // A wake lost to a crash here is made up by the delivery's own recheck.
    if (record.webhook) await this.jobs.webhooks.wake(id).catch(() => {});
  }

  /** Every step as it is now: its job's view once added, else the view of a job yet to be added. */
  private async stepsNow(
    record: WorkflowRecord,
    { results }: { results: boolean } = { results: true },
  ): Promise<Map<string, StepNow>> {
    const entries = await Promise.all(
      Object.entries(record.plan).map(async ([name, step]): Promise<[string, StepNow]> => {
        const mark = record.marks.get(name);
        const { view: waiting } = waitingStep(record, name);
        if (mark === undefined) return [name, { phase: 'waiting', view: waiting }];
        if (typeof mark === 'object') return [name, { phase: 'done', view: mark }];
        const view = await this.jobs.getJobView(step.jobId, record.tenant, { result: results });
        if (view) return [name, { phase: isFinal(view.state) ? 'done' : 'live', view }];
        const done = record.done.get(name);
        if (done) return [name, { phase: 'done', view: done, expired: true }];
        if (mark === 'submitting') return [name, { phase: 'waiting', view: waiting }];
        // Added, then gone before the workflow ended: an operator removed it.
        const gone: JobView = {
          ...waiting,
          state: 'canceled',
          error: { code: 'canceled', message: "The step's job was removed" },
          finishedAt: iso(Date.now()),
        };
        return [name, { phase: 'done', view: gone }];
      }),
    );
    return new Map(entries);
  }
}

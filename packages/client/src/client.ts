import {
  FINAL_STATES,
  isFinal,
  type JobState,
  type StepFailurePolicy,
  type WebhookOption,
} from '@offload/contract';
import { EventSourceParserStream } from 'eventsource-parser/stream';
import { OfflineError, ProblemError } from './errors.ts';
import type {
  BatchJob,
  BuiltInTasks,
  Job,
  JobEvent,
  JobPage,
  ListOptions,
  Problem,
  Schedule,
  ScheduleRequest,
  SubmitOptions,
  TaskCatalog,
  TaskInfo,
  TaskInput,
  TaskName,
  TaskOutput,
  Workflow,
  WorkflowStep,
} from './types.ts';

export interface ClientOptions {
  /** Where the API listens. Default http://127.0.0.1:3000. */
  baseUrl?: string;
  /** Sent as `Authorization: Bearer <key>`; not needed in open development mode. */
  apiKey?: string;
  /** Another fetch (a proxy agent, a test double of the network stack). */
  fetch?: typeof fetch;
}

/** Longest single long-poll the API holds, s. */
const MAX_WAIT_S = 60;
/** Reconnects in a row that deliver no event before an event stream gives up. */
const MAX_RECONNECTS = 5;

type JobRef<O> = string | Job<O>;
const idOf = <O>(job: JobRef<O> | string | Schedule | Workflow) =>
  typeof job === 'string' ? job : job.id;

/**
 * A typed client of the Offload API, over HTTP only. `C` is the task catalog
 * the server runs (the built-in tasks by default): it types `submit`'s input
 * and the `result` of the jobs it returns.
 *
 * ```ts
 * const offload = new OffloadClient({ baseUrl: 'http://127.0.0.1:3000', apiKey });
 * const job = await offload.submit('primes.count', { below: 1_000_000 });
 * const done = await offload.wait(job);
 * done.result?.count; // number
 * ```
 */
export class OffloadClient<C extends TaskCatalog = BuiltInTasks> {
  readonly baseUrl: string;
  private readonly apiKey: string | undefined;
  private readonly fetch: typeof fetch;

  constructor(options: ClientOptions = {}) {
    this.baseUrl = (options.baseUrl ?? 'http://127.0.0.1:3000').replace(/\/+$/, '');
    this.apiKey = options.apiKey;
    this.fetch = options.fetch ?? fetch;
  }

  /**
   * The caller's schedules: a job submitted on a cron expression or every
   * `everyMs` ms, exactly one per firing.
   *
   * ```ts
   * await offload.schedules.create({ task: 'primes.count', input: { below: 1000 }, cron: '0 3 * * *', timezone: 'Europe/Berlin' });
   * ```
   */
  readonly schedules = {
    /** Creates a schedule; a bad cron, zone, interval, task or input throws ProblemError 422 and stores nothing. */
    create: (schedule: ScheduleRequest<C>): Promise<Schedule> =>
      this.json('POST', '/v1/schedules', { body: schedule }),
    /** Every schedule of the caller, oldest first. */
    list: async (): Promise<Schedule[]> =>
      (await this.json<{ schedules: Schedule[] }>('GET', '/v1/schedules')).schedules,
    /** The schedule with `recentJobs`, the ids of its latest jobs, newest first. */
    get: (schedule: string | Schedule): Promise<Schedule> =>
      this.json('GET', `/v1/schedules/${encodeURIComponent(idOf(schedule))}`),
    /** Deletes the schedule: it fires no more. An unknown id throws ProblemError 404. */
    delete: async (schedule: string | Schedule): Promise<void> => {
      await this.send('DELETE', `/v1/schedules/${encodeURIComponent(idOf(schedule))}`, {});
    },
  };

  /**
   * The caller's workflows: jobs (steps) that start once the steps they
   * `needs` have completed, reading their results through `{ $result: 'step.field' }`.
   *
   * ```ts
   * const flow = await offload.workflows.submit({ a: { task: 'primes.count', input: { below: 100 } } });
   * const ended = await offload.workflows.wait(flow);
   * ```
   */
  readonly workflows = {
    /**
     * Starts a workflow. An invalid step throws ProblemError 422 naming it
     * (`steps.render.input.width`), and nothing starts.
     */
    submit: (
      steps: Record<string, WorkflowStep<C>>,
      options: {
        onStepFailure?: StepFailurePolicy;
        /** Makes retrying safe: the same key and steps answer the same workflow for 24 h. */
        idempotencyKey?: string;
        /** Where the workflow's end is POSTed, signed (README, Webhooks). */
        webhook?: WebhookOption;
      } = {},
    ): Promise<Workflow> => {
      const { idempotencyKey, ...rest } = options;
      return this.json('POST', '/v1/workflows', {
        body: { steps, ...rest },
        headers: idempotencyKey ? { 'idempotency-key': idempotencyKey } : {},
      });
    },
    /** The workflow as it is now. */
    get: (workflow: string | Workflow): Promise<Workflow> =>
      this.json('GET', `/v1/workflows/${encodeURIComponent(idOf(workflow))}`),
    /**
     * The workflow once it has ended, or as it stands after `timeoutMs`
     * (default: no limit). Long-polls one of its unfinished jobs at a time and
     * reads the workflow when that one ends, so nothing polls in between while
     * a step is queued or running.
     */
    wait: async (
      workflow: string | Workflow,
      options: {
        timeoutMs?: number;
        /** Called with each view read on the way: after each step's job ends, at least. */
        onUpdate?: (view: Workflow) => void;
      } = {},
    ): Promise<Workflow> => {
      const deadline = Date.now() + (options.timeoutMs ?? Number.POSITIVE_INFINITY);
      for (;;) {
        const view = await this.workflows.get(workflow);
        options.onUpdate?.(view);
        const left = deadline - Date.now();
        if (view.state !== 'running' || left <= 0) return view;
        const live = Object.values(view.steps).find(
          (step) => !isFinal(step.state) && step.state !== 'blocked',
        );
        // No job to follow: the last step just ended (the workflow ends at its next advance, within
        // ~100 ms) or a step waits for its tenant's quota. Look again shortly.
        if (!live) await new Promise((resolve) => setTimeout(resolve, Math.min(left, 250)));
        else await this.wait(live.id, { timeoutMs: left });
      }
    },
    /** Cancels every unfinished step; answers the workflow, state `canceled`. A completed or failed one throws ProblemError 409. */
    cancel: (workflow: string | Workflow): Promise<Workflow> =>
      this.json('DELETE', `/v1/workflows/${encodeURIComponent(idOf(workflow))}`),
  };

  /** Queues a job: answered at once with its view (state `queued` or `delayed`). */
  async submit<N extends TaskName<C>>(
    task: N,
    input: TaskInput<C, N>,
    options: SubmitOptions = {},
  ): Promise<Job<TaskOutput<C, N>>> {
    const { idempotencyKey, ...jobOptions } = options;
    const body = {
      task,
      input,
      ...(Object.keys(jobOptions).length > 0 && { options: jobOptions }),
    };
    return this.json('POST', '/v1/jobs', {
      body,
      headers: idempotencyKey ? { 'idempotency-key': idempotencyKey } : {},
    });
  }

  /**
   * Queues up to MAX_BATCH_JOBS jobs in one request, all or none: one invalid
   * job throws ProblemError 422 naming it (`jobs.3.input.below`) and adds
   * nothing. Answers their views in the order given; a job whose
   * `idempotencyKey` was used before with the same job answers that job.
   */
  async submitMany(jobs: readonly BatchJob<C>[]): Promise<Job[]> {
    const items = jobs.map(({ task, input, options = {} }) => {
      const { idempotencyKey, ...jobOptions } = options;
      return {
        task,
        input,
        ...(Object.keys(jobOptions).length > 0 && { options: jobOptions }),
        ...(idempotencyKey !== undefined && { idempotencyKey }),
      };
    });
    const answer = await this.json<{ jobs: Job[] }>('POST', '/v1/jobs/batch', {
      body: { jobs: items },
    });
    return answer.jobs;
  }

  /** The job as it is now. */
  async get<O = unknown>(job: JobRef<O>): Promise<Job<O>> {
    return this.json('GET', `/v1/jobs/${encodeURIComponent(idOf(job))}`);
  }

  /**
   * The job once it is finished, or as it stands after `timeoutMs` (default:
   * no limit). Long-polls, 60 s per request at most, so nothing polls in between.
   */
  async wait<O = unknown>(job: JobRef<O>, options: { timeoutMs?: number } = {}): Promise<Job<O>> {
    const id = encodeURIComponent(idOf(job));
    const deadline = Date.now() + (options.timeoutMs ?? Number.POSITIVE_INFINITY);
    for (;;) {
      const seconds = Math.max(0, Math.min(MAX_WAIT_S, (deadline - Date.now()) / 1000));
      const view = await this.json<Job<O>>('GET', `/v1/jobs/${id}?wait=${seconds.toFixed(3)}`);
      if (isFinal(view.state) || Date.now() >= deadline) return view;
    }
  }

  /**
   * A completed job's result alone, as GET /v1/jobs/{id}/result answers it:
   * a binary result's bytes with the task's content type, or a JSON result's
   * text as `application/json`. Before the job completes, ProblemError 409
   * `job_not_finished`; once it failed or was canceled, 409 `job_has_no_result`.
   * `resultStream` gives the bytes as they arrive instead of all at once.
   */
  async result(job: JobRef<unknown>): Promise<{ contentType: string; bytes: Uint8Array }> {
    const { contentType, stream } = await this.resultStream(job);
    return { contentType, bytes: new Uint8Array(await new Response(stream).arrayBuffer()) };
  }

  /** `result`, streamed: `size` is the length in bytes the server announced (null when it did not). */
  async resultStream(job: JobRef<unknown>): Promise<{
    contentType: string;
    size: number | null;
    stream: ReadableStream<Uint8Array>;
  }> {
    const res = await this.send('GET', `/v1/jobs/${encodeURIComponent(idOf(job))}/result`, {});
    const length = res.headers.get('content-length');
    return {
      contentType: res.headers.get('content-type') ?? 'application/octet-stream',
      size: length === null ? null : Number(length),
      stream: res.body ?? new Blob([]).stream(),
    };
  }

  /** Cancels the job; answers its view, state `canceled`. A finished job throws ProblemError 409. */
  async cancel<O = unknown>(job: JobRef<O>): Promise<Job<O>> {
    return this.json('DELETE', `/v1/jobs/${encodeURIComponent(idOf(job))}`);
  }

  /** A page of the caller's jobs, newest first; pass `nextCursor` back as `cursor` for the next one. */
  async list(options: ListOptions = {}): Promise<JobPage> {
    const query = new URLSearchParams();
    for (const [name, value] of Object.entries(options)) {
      if (value !== undefined) query.set(name, String(value));
    }
    const search = query.size > 0 ? `?${query}` : '';
    return this.json('GET', `/v1/jobs${search}`);
  }

  /** Every task the server runs, with the JSON Schema of its input and output. */
  async tasks(): Promise<TaskInfo[]> {
    return (await this.json<{ tasks: TaskInfo[] }>('GET', '/v1/tasks')).tasks;
  }

  /**
   * The job's events as they happen: first a `state` snapshot, then `state`
   * and `progress` changes, then `completed`, `failed` or `canceled`, where
   * the iteration ends. A connection that drops, or that the server ends
   * before the final event (it limits how long a stream lasts), is reopened:
   * it starts again with a snapshot. Stop early with `break` or `signal`.
   */
  async *events<O = unknown>(
    job: JobRef<O>,
    options: { signal?: AbortSignal } = {},
  ): AsyncGenerator<JobEvent<O>> {
    const path = `/v1/jobs/${encodeURIComponent(idOf(job))}/events`;
    let fruitless = 0;
    for (;;) {
      const res = await this.send('GET', path, {
        headers: { accept: 'text/event-stream' },
        ...(options.signal && { signal: options.signal }),
      });
      if (!res.body) throw new OfflineError('The event stream had no body');
      const stream = res.body
        .pipeThrough(new TextDecoderStream())
        .pipeThrough(new EventSourceParserStream());
      try {
        for await (const message of stream) {
          const event = { type: message.event, job: JSON.parse(message.data) } as JobEvent<O>;
          fruitless = 0;
          yield event;
          if (FINAL_STATES.has(event.type as JobState)) return;
        }
      } catch (err) {
        if (options.signal?.aborted) throw err;
        // A connection that broke mid-stream: reopen it below.
      }
      if (options.signal?.aborted) return;
      if (++fruitless > MAX_RECONNECTS) {
        throw new OfflineError(`The event stream of job ${idOf(job)} kept dropping`);
      }
    }
  }

  private async json<T>(
    method: string,
    path: string,
    options: { body?: unknown; headers?: Record<string, string> } = {},
  ): Promise<T> {
    const res = await this.send(method, path, {
      headers: {
        ...options.headers,
        ...(options.body !== undefined && { 'content-type': 'application/json' }),
      },
      ...(options.body !== undefined && { body: JSON.stringify(options.body) }),
    });
    return (await res.json()) as T;
  }

  /** One request; an error answer becomes ProblemError, no answer at all OfflineError. */
  private async send(
    method: string,
    path: string,
    init: { headers?: Record<string, string>; body?: string; signal?: AbortSignal },
  ): Promise<Response> {
    let res: Response;
    try {
      res = await this.fetch(`${this.baseUrl}${path}`, {
        ...init,
        method,
        headers: {
          ...init.headers,
          ...(this.apiKey && { authorization: `Bearer ${this.apiKey}` }),
        },
      });
    } catch (err) {
      if (init.signal?.aborted) throw err;
      throw new OfflineError(`Could not reach ${this.baseUrl}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    if (res.ok) return res;
    throw new ProblemError(await problemOf(res));
  }
}

/** The problem document of an error answer, or one made up for an answer that has none (a proxy's 502). */
async function problemOf(res: Response): Promise<Problem> {
  const text = await res.text();
  try {
    const body = JSON.parse(text) as Partial<Problem>;
    if (typeof body.code === 'string' && typeof body.status === 'number') return body as Problem;
  } catch {
    // Not JSON: described below.
  }
  return {
    type: 'about:blank',
    title: res.statusText || 'HTTP error',
    status: res.status,
    detail: text.slice(0, 500) || `HTTP ${res.status}`,
    code: `http_${res.status}`,
  };
}

import type {
  JobOptions,
  JobPage,
  JobState,
  JobSummary,
  JobView,
  ScheduleView,
  StepFailurePolicy,
  TaskInfo,
  WebhookOption,
  WebhookState,
  Problem as WireProblem,
  WorkflowState,
  WorkflowView,
} from '@offload/contract';
import type { BinaryResult } from '@offload/contract/binary-result';
import type { BinaryResult as ReturnedBytes, TaskDefinition } from '@offload/tasks';
import type { z } from 'zod';

/**
 * The types a client sees, derived from the task registry: `submit`'s input
 * and a job's `result` follow each task's own zod schemas, so a wrong input
 * for a task does not compile.
 */

type AnyTask = TaskDefinition<string, z.ZodType, z.ZodType>;

/**
 * The tasks a server runs, as the client's type parameter: a task module's type
 * (`typeof import('./my-tasks.ts')`, the very file OFFLOAD_TASKS names), or a
 * list of task definitions.
 */
export type TaskCatalog = object;
export type BuiltInTasks = typeof import('@offload/tasks/builtin');

/** The task definitions a catalog holds: the list's items, or the module's exports made by defineTask. */
export type TasksOf<C extends TaskCatalog> = C extends readonly AnyTask[]
  ? C[number]
  : Extract<C[keyof C], AnyTask>;

export type TaskName<C extends TaskCatalog> = TasksOf<C>['name'];
type TaskNamed<C extends TaskCatalog, N extends string> = Extract<TasksOf<C>, { name: N }>;
/** What `submit` accepts for task N (fields with defaults may be left out). */
export type TaskInput<C extends TaskCatalog, N extends TaskName<C>> = z.input<
  TaskNamed<C, N>['input']
>;
/**
 * What a completed job of task N holds in `result`: for a task that returns
 * bytes, their descriptor (`result(id)` fetches the bytes).
 */
export type TaskOutput<C extends TaskCatalog, N extends TaskName<C>> = WireOutput<
  z.output<TaskNamed<C, N>['output']>
>;
type WireOutput<T> = T extends ReturnedBytes ? BinaryResult : T;

/** A job's view (DESIGN.md §3) whose `result` has the type of its task's output. */
export type Job<Output = unknown> = Omit<JobView, 'result'> & { result: Output | null };

/** One server-sent event of GET /v1/jobs/{id}/events. */
export interface JobEvent<Output = unknown> {
  type: 'state' | 'progress' | 'completed' | 'failed' | 'canceled';
  job: Job<Output>;
}

/** A page of `list`: each job as a JobSummary, its view without the result (`get` has it). */
export type { JobPage, JobState, JobSummary, TaskInfo };

/** A schedule (DESIGN.md §3): what it submits, when it fires next, `recentJobs` from `schedules.get`. */
export type Schedule = ScheduleView;

/** When a schedule fires: a 5-field cron expression in an IANA time zone (default UTC), or every `everyMs` ms. */
export type ScheduleTiming = { cron: string; timezone?: string } | { everyMs: number };

/** What `schedules.create` takes: a task, its input typed by the task, and when. */
export type ScheduleRequest<C extends TaskCatalog> = {
  [N in TaskName<C>]: { task: N; input: TaskInput<C, N>; options?: JobOptions } & ScheduleTiming;
}[TaskName<C>];

/** An RFC 9457 problem document: the API's, or one made up for an answer that has none (`http_<status>`). */
export type Problem = Omit<WireProblem, 'code'> & { code: WireProblem['code'] | `http_${number}` };

export interface SubmitOptions extends JobOptions {
  /** Makes retrying the submit safe: the same key and request answer the same job for 24 h. */
  idempotencyKey?: string;
}

/** One job of `submitMany`: its input typed by its task. */
export type BatchJob<C extends TaskCatalog> = {
  [N in TaskName<C>]: { task: N; input: TaskInput<C, N>; options?: SubmitOptions };
}[TaskName<C>];

/** Most jobs one `submitMany` call (one POST /v1/jobs/batch) carries. */
export const MAX_BATCH_JOBS = 1000;

export interface ListOptions {
  state?: JobState;
  task?: string;
  /** 1–100, default 20. */
  limit?: number;
  cursor?: string;
}

/** `{ "$result": "<step>" }` or `{ "$result": "<step>.<field>…" }`: replaced by that step's result (or a field of it) when the step starts. */
export interface ResultRef {
  $result: string;
}

/** An input in which any value may be a ResultRef instead. */
export type WithResults<T> =
  | ResultRef
  | (T extends readonly (infer U)[]
      ? WithResults<U>[]
      : T extends object
        ? { [K in keyof T]: WithResults<T[K]> }
        : T);

/** One step of `workflows.submit`: a job request, its input typed by its task, and the steps it needs. */
export type WorkflowStep<C extends TaskCatalog> = {
  [N in TaskName<C>]: {
    task: N;
    input: WithResults<TaskInput<C, N>>;
    options?: JobOptions;
    /** Steps that must complete before this one starts; a ResultRef may name only these. */
    needs?: string[];
  };
}[TaskName<C>];

/** A workflow's view: its state, and each step as the JobView of its job. */
export type Workflow = WorkflowView;
export type { StepFailurePolicy, WebhookOption, WebhookState, WorkflowState };

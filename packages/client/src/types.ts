import type { JobState, JobView, JobPage as WireJobPage } from '@offload/queue';
import type { TaskDefaults, TaskDefinition } from '@offload/tasks';
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
/** What a completed job of task N holds in `result`. */
export type TaskOutput<C extends TaskCatalog, N extends TaskName<C>> = z.output<
  TaskNamed<C, N>['output']
>;

export type { JobState };

/** A job's view (DESIGN.md §3) whose `result` has the type of its task's output. */
export type Job<Output = unknown> = Omit<JobView, 'result'> & { result: Output | null };

export type JobPage = Omit<WireJobPage, 'jobs'> & { jobs: Job[] };

/** One server-sent event of GET /v1/jobs/{id}/events. */
export interface JobEvent<Output = unknown> {
  type: 'state' | 'progress' | 'completed' | 'failed' | 'canceled';
  job: Job<Output>;
}

/** One entry of GET /v1/tasks. */
export interface TaskInfo {
  name: string;
  description: string;
  queue: string;
  /** JSON Schema */
  input: Record<string, unknown>;
  /** JSON Schema */
  output: Record<string, unknown>;
  defaults: TaskDefaults;
}

export interface SubmitOptions {
  /** 1 is the highest; jobs without a priority run before every prioritized one. */
  priority?: number;
  /** Run no sooner than this many ms from now. */
  delayMs?: number;
  /** Attempts in all, the first included. */
  attempts?: number;
  /** Hard time limit of one attempt, ms. */
  timeoutMs?: number;
  /** Makes retrying the submit safe: the same key and request answer the same job for 24 h. */
  idempotencyKey?: string;
}

export interface ListOptions {
  state?: JobState;
  task?: string;
  /** 1–100, default 20. */
  limit?: number;
  cursor?: string;
}

/** An RFC 9457 problem document, as every error answer of the API carries. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  errors?: { path: string; message: string }[];
  requestId?: string;
}

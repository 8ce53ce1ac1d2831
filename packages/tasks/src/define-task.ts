import type { Backoff, TaskDefaults } from '@offload/contract';
import type { z } from 'zod';

export type { Backoff, TaskDefaults };

/**
 * Progress a task reports: a percentage 0–100, or an object whose `percent`
 * is that percentage and whose other fields are free-form detail.
 */
export type TaskProgress = number | { percent: number; [detail: string]: unknown };

export interface TaskContext {
  /** Report progress; cheap to call often (the executor forwards at most one update per 100 ms). */
  progress(value: TaskProgress): void;
  /** Append a line to the job's log. */
  log(line: string): void;
  /**
   * Aborted when the job is canceled, times out or its worker shuts down. Only
   * a task that awaits can see it; one that honours it within 200 ms keeps its
   * executor warm, while a synchronous loop is stopped by killing its executor.
   */
  signal: AbortSignal;
}

export interface TaskDefinition<
  Name extends string = string,
  Input extends z.ZodType = z.ZodType,
  Output extends z.ZodType = z.ZodType,
> {
  name: Name;
  description: string;
  /** The queue its jobs go to; workers pick queues with WORKER_QUEUES. */
  queue: string;
  input: Input;
  output: Output;
  defaults: TaskDefaults;
  /**
   * Largest input one job may carry, bytes of its JSON; unset: the API's
   * API_MAX_INPUT_BYTES (64 KiB). Larger submits answer 413 `input_too_large`.
   */
  maxInputBytes?: number;
  run(input: z.output<Input>, ctx: TaskContext): z.input<Output> | Promise<z.input<Output>>;
}

/**
 * Marks what defineTask made. `Symbol.for`, not a module-local symbol: a task
 * file outside this repository may load its own copy of this package, and its
 * tasks must still be recognised by the worker that loads it.
 */
const TASK_MARK = Symbol.for('offload.task');

/**
 * Declares a task: returns the definition, marked so that a worker loading a
 * task module (OFFLOAD_TASKS) can tell tasks from the module's other exports.
 */
export function defineTask<Name extends string, Input extends z.ZodType, Output extends z.ZodType>(
  task: TaskDefinition<Name, Input, Output>,
): TaskDefinition<Name, Input, Output> {
  Object.defineProperty(task, TASK_MARK, { value: true });
  return task;
}

/** True for a value defineTask returned, whichever copy of this package made it. */
export function isTaskDefinition(value: unknown): value is TaskDefinition {
  return typeof value === 'object' && value !== null && TASK_MARK in value;
}

/** Default queue of the built-in tasks. */
export const DEFAULT_QUEUE = 'default';

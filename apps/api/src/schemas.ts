import { z } from 'zod';
import type { FieldError } from './problem.ts';

/** Per-job overrides of a task's defaults. */
export const jobOptionsSchema = z.strictObject({
  /** 1 is the highest; jobs without a priority run before every prioritized one. */
  priority: z.number().int().min(1).max(2_097_152).optional(),
  /** Run no sooner than this many ms from now (at most 30 days). */
  delayMs: z
    .number()
    .int()
    .min(0)
    .max(30 * 24 * 3600 * 1000)
    .optional(),
  /** Attempts in all, the first included. */
  attempts: z.number().int().min(1).max(25).optional(),
  /** Hard time limit of one attempt, ms (100 ms … 24 h). */
  timeoutMs: z
    .number()
    .int()
    .min(100)
    .max(24 * 3600 * 1000)
    .optional(),
});

/** Body of POST /v1/jobs; `input` is checked against the task's own schema afterwards. */
export const submitJobSchema = z.strictObject({
  task: z.string().min(1).max(200),
  // Optional here so a request naming an unknown task hears about the task first.
  input: z.unknown().optional(),
  options: jobOptionsSchema.optional(),
});

/** `?wait=S`: seconds, fractions allowed, 0–60. */
export const waitSchema = z
  .string()
  .regex(/^\d+(\.\d+)?$/, 'must be a number of seconds')
  .transform(Number)
  .pipe(z.number().max(60, 'must be at most 60 seconds'));

/** zod issues as the problem document's `errors`, their paths under `prefix` (e.g. `input`). */
export function fieldErrors(error: z.ZodError, prefix?: string): FieldError[] {
  return error.issues.map((issue) => ({
    path: [...(prefix ? [prefix] : []), ...issue.path.map(String)].join('.') || '(body)',
    message: issue.message,
  }));
}

import { availableParallelism } from 'node:os';
import { parseEnv, sharedEnvShape, webhookEnvShape } from '@offload/queue';
import { z } from 'zod';
import { BUILTIN_MODULE } from './task-modules.ts';

const schema = z.object({
  ...sharedEnvShape,
  ...webhookEnvShape,
  /**
   * Task modules this worker runs, comma-separated: .ts/.js files (relative to the
   * working directory or absolute), task project folders, package names, .py files;
   * `@offload/tasks/builtin` names the built-ins, which are also what runs when unset.
   */
  OFFLOAD_TASKS: z
    .string()
    .optional()
    .transform((value) => {
      const entries = (value ?? '')
        .split(',')
        .map((entry) => entry.trim())
        .filter(Boolean);
      return entries.length > 0 ? entries : [BUILTIN_MODULE];
    }),
  /** Folders Python tasks import from, besides their own; the worker puts the `offload` package in front. */
  PYTHONPATH: z.string().optional(),
  /** The Python interpreter that runs the Python task files of OFFLOAD_TASKS (3.11 or newer). */
  OFFLOAD_PYTHON: z.string().min(1).default('python3'),
  /** Executors per worker process (threads; Python processes for Python tasks); each runs one job at a time. */
  WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(512).default(availableParallelism()),
  /** Comma-separated queues to serve; unset serves every queue some task uses. */
  WORKER_QUEUES: z
    .string()
    .optional()
    .transform((value) =>
      value
        ?.split(',')
        .map((queue) => queue.trim())
        .filter(Boolean),
    ),
  /** How long SIGTERM waits for running jobs before handing them back to the queue, ms. */
  WORKER_SHUTDOWN_GRACE_MS: z.coerce.number().int().min(0).default(30_000),
  /** CPU priority of the worker process (0 normal … 19 lowest), so an API on the same machine stays responsive. */
  WORKER_NICE: z.coerce.number().int().min(0).max(19).default(10),
  /**
   * Memory cap of each executor, MB: a thread's heap, a Python process' address
   * space (RLIMIT_AS). A task that allocates past it fails with `out_of_memory`
   * and only its executor is affected, never the worker process.
   */
  WORKER_EXECUTOR_MEMORY_MB: z.coerce.number().int().min(16).default(2048),
  /**
   * Largest result a job may return, bytes of its JSON or of a binary result (16 MiB);
   * a larger one fails the job with `result_too_large`, not retried, and leaves no blob.
   * A 4096 × 4096 image.mandelbrot PNG of the default view is 5.4 MB; one full of fine detail
   * compresses far less and may pass it: raise this, or render smaller images.
   */
  WORKER_MAX_RESULT_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .default(16 * 1024 * 1024),
  /**
   * Most jobs of one tenant running at once on one queue, across the fleet; its
   * other jobs wait while it is at the cap, even with executors free. 0: no cap.
   * Set it alike on every worker; when live workers differ, the smallest applies.
   */
  MAX_RUNNING_PER_TENANT: z.coerce.number().int().min(0).default(0),
  /** Port of this process' GET /metrics; unset: the first free port from 9464, so the nth worker on a machine usually has 9464 + n - 1. */
  WORKER_METRICS_PORT: z.coerce.number().int().min(0).max(65_535).optional(),
  /** Interface /metrics listens on; 0.0.0.0 lets a Prometheus on another machine or container scrape it. */
  WORKER_METRICS_HOST: z.string().min(1).default('127.0.0.1'),
});

export type WorkerEnv = z.infer<typeof schema>;

export function loadWorkerEnv(source: NodeJS.ProcessEnv = process.env): WorkerEnv {
  return parseEnv(schema, 'worker', source);
}

/** The environment a child process of the worker (a Python executor) inherits. */
export function inheritedEnvironment(source: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return { ...source };
}

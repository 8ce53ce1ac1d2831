import { z } from 'zod';
import type { Retention } from './job-options.ts';

/**
 * Environment variables every Offload process reads (DESIGN.md §7), as a zod
 * shape each app's env.ts spreads into its own schema.
 */
export const sharedEnvShape = {
  /** The Redis every part shares. */
  REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL')
    .default('redis://127.0.0.1:6379'),
  /** Prefix of every Redis key; a hash tag such as {offload} for Redis Cluster. */
  OFFLOAD_PREFIX: z
    .string()
    .regex(/^[^\s:]+$/, 'must be non-empty, without spaces or colons')
    .default('offload'),
  /** How long completed jobs (and their results) stay readable, s. */
  JOB_RETENTION_COMPLETED_S: z.coerce
    .number()
    .int()
    .min(1)
    .default(24 * 60 * 60),
  /** How long failed and canceled jobs stay readable, s. */
  JOB_RETENTION_FAILED_S: z.coerce
    .number()
    .int()
    .min(1)
    .default(7 * 24 * 60 * 60),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
};

/**
 * Parses an app's environment once at start. Outside production a `.env` file
 * in the working directory is read first (it never overrides set variables).
 * A bad value throws with one line per problem: `PORT: Too big: expected number to be <=65535`.
 */
export function parseEnv<Schema extends z.ZodType>(
  schema: Schema,
  app: string,
  source: Record<string, string | undefined>,
): z.output<Schema> {
  if (source.NODE_ENV !== 'production') {
    try {
      process.loadEnvFile();
    } catch {
      // No .env file: fine.
    }
  }
  const parsed = schema.safeParse(source);
  if (parsed.success) return parsed.data;
  const lines = parsed.error.issues.map((issue) => `  ${issue.path.join('.')}: ${issue.message}`);
  throw new Error(`Invalid ${app} configuration:\n${lines.join('\n')}`);
}

/** The retention every process must agree on, from the shared variables. */
export function retentionFrom(env: {
  JOB_RETENTION_COMPLETED_S: number;
  JOB_RETENTION_FAILED_S: number;
}): Retention {
  return {
    completedMs: env.JOB_RETENTION_COMPLETED_S * 1000,
    failedMs: env.JOB_RETENTION_FAILED_S * 1000,
  };
}

import { z } from 'zod';
import { DEFAULT_BLOB_DIR } from './blob-store.ts';
import type { RedisTarget } from './connection.ts';
import type { Retention } from './job-options.ts';

/** `host:port,host:port`: the seed nodes of a Redis Cluster. */
const clusterNodes = z
  .string()
  .transform((text, ctx) => {
    const nodes: { host: string; port: number }[] = [];
    for (const entry of text.split(',').map((e) => e.trim())) {
      if (!entry) continue;
      const match = /^(\[[^\]]+\]|[^\s:]+):(\d{1,5})$/.exec(entry);
      const port = Number(match?.[2]);
      if (!match || port < 1 || port > 65_535) {
        ctx.addIssue({ code: 'custom', message: `"${entry}" is not host:port` });
        continue;
      }
      nodes.push({ host: (match[1] as string).replace(/^\[|\]$/g, ''), port });
    }
    if (nodes.length === 0) ctx.addIssue({ code: 'custom', message: 'names no node' });
    return nodes;
  })
  .optional();

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
  /** Seed nodes of a Redis Cluster; when set, REDIS_URL is ignored. */
  REDIS_CLUSTER_NODES: clusterNodes,
  /** The cluster's password (a URL carries its own). */
  REDIS_PASSWORD: z.string().min(1).optional(),
  /** Prefix of every Redis key. No hash tag: each key carries the tag of its queue or tenant (keys.ts). */
  OFFLOAD_PREFIX: z
    .string()
    .regex(
      /^[^\s:{}]+$/,
      'must be non-empty, without spaces, colons or braces (each key carries its own Redis Cluster hash tag)',
    )
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
  /**
   * Folder of the filesystem blob store (binary results), relative to the
   * working directory or absolute. API, workers and dashboard must see the
   * same folder: on different machines, a shared volume.
   */
  BLOB_DIR: z.string().min(1).default(DEFAULT_BLOB_DIR),
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

/** The Redis every process of this deployment shares: the cluster when REDIS_CLUSTER_NODES is set, else REDIS_URL. */
export function redisTargetFrom(env: {
  REDIS_URL: string;
  REDIS_CLUSTER_NODES?: { host: string; port: number }[] | undefined;
  REDIS_PASSWORD?: string | undefined;
}): RedisTarget {
  if (env.REDIS_CLUSTER_NODES) {
    return {
      clusterNodes: env.REDIS_CLUSTER_NODES,
      ...(env.REDIS_PASSWORD && { password: env.REDIS_PASSWORD }),
    };
  }
  return { url: env.REDIS_URL };
}

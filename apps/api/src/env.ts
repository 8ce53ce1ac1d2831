import { parseEnv, sharedEnvShape, webhookEnvShape } from '@offload/queue';
import { z } from 'zod';
import type { ApiKey } from './auth.ts';

const TENANT = /^[A-Za-z0-9._-]{1,64}$/;
/** Shortest API key accepted, characters: shorter keys can be guessed. */
const MIN_KEY_LENGTH = 16;

/** API_KEYS: `tenant:key,tenant:key`. A tenant may hold several keys (to rotate them). */
const apiKeys = z
  .string()
  .transform((text, ctx): ApiKey[] => {
    const keys: ApiKey[] = [];
    for (const entry of text.split(',').map((e) => e.trim())) {
      if (!entry) continue;
      const colon = entry.indexOf(':');
      const tenant = entry.slice(0, colon);
      const key = entry.slice(colon + 1);
      if (colon < 0 || !TENANT.test(tenant)) {
        ctx.addIssue({
          code: 'custom',
          message: 'each entry is tenant:key, the tenant 1–64 of A-Z a-z 0-9 . _ -',
        });
      } else if (key.length < MIN_KEY_LENGTH || /[\s,]/.test(key)) {
        ctx.addIssue({
          code: 'custom',
          message: `the key of tenant ${tenant} must be at least ${MIN_KEY_LENGTH} characters, without spaces or commas`,
        });
      } else {
        keys.push({ tenant, key });
      }
    }
    if (keys.length === 0) ctx.addIssue({ code: 'custom', message: 'names no key' });
    const seen = new Set(keys.map((k) => k.key));
    if (seen.size !== keys.length) ctx.addIssue({ code: 'custom', message: 'a key appears twice' });
    return keys;
  })
  .optional();

const schema = z
  .object({
    ...sharedEnvShape,
    ...webhookEnvShape,
    /** Interface the API listens on. */
    HOST: z.string().min(1).default('127.0.0.1'),
    PORT: z.coerce.number().int().min(0).max(65_535).default(3000),
    /** Largest request body accepted, bytes; larger answers 413. */
    API_MAX_BODY_BYTES: z.coerce.number().int().min(1024).default(1_048_576),
    /**
     * Largest job input, bytes of its JSON, for a task that declares no `maxInputBytes`;
     * larger answers 413 input_too_large. Bounds what one queued job holds in Redis.
     */
    API_MAX_INPUT_BYTES: z.coerce.number().int().min(1).default(65_536),
    /**
     * Most bytes of job inputs and results one tenant may hold in Redis at once (its jobs
     * until their retention ends); past it submits answer 429 storage_quota_exceeded and
     * results that would not fit fail with result_too_large. 0: no limit.
     */
    API_MAX_STORED_BYTES_PER_TENANT: z.coerce.number().int().min(0).default(268_435_456),
    /** Deepest nesting of objects and arrays in a request body; deeper answers 400 json_too_deep. */
    API_MAX_JSON_DEPTH: z.coerce.number().int().min(2).max(1000).default(32),
    /** `tenant:key,…`. Unset: open development mode (tenant `dev`), refused in production. */
    API_KEYS: z.preprocess((value) => (value === '' ? undefined : value), apiKeys),
    /**
     * Open development mode (API_KEYS unset) on an interface other than loopback
     * serves anyone who reaches the port; refused unless this is `true`.
     */
    API_ALLOW_OPEN: z.enum(['true', 'false']).default('false'),
    /** Requests per API key per window; more answer 429 rate_limited. 0 turns the limit off. */
    API_RATE_LIMIT: z.coerce.number().int().min(0).default(1200),
    /** Length of a rate-limit window, ms. */
    API_RATE_WINDOW_MS: z.coerce.number().int().min(100).default(60_000),
    /** Most unfinished (queued, delayed, running) jobs per tenant; more answer 429 queue_quota_exceeded. 0: no limit. */
    API_MAX_QUEUED_PER_TENANT: z.coerce.number().int().min(0).default(10_000),
    /** With n > 0, a submit answers 202 only once n replicas hold the job (Redis WAIT). */
    REDIS_MIN_REPLICAS_ACK: z.coerce.number().int().min(0).max(16).default(0),
    /**
     * Longest wait for a request's headers, ms; a client that sends them slower is answered
     * 408 and disconnected, so idle half-open connections cannot pile up (slowloris).
     */
    API_HEADERS_TIMEOUT_MS: z.coerce.number().int().min(100).default(10_000),
    /**
     * Longest wait for a whole request, headers and body, ms. It bounds receiving only:
     * long-polls and event streams answer for as long as they need.
     */
    API_REQUEST_TIMEOUT_MS: z.coerce.number().int().min(100).default(30_000),
    /** How long an idle keep-alive connection stays open between requests, ms. */
    API_KEEP_ALIVE_TIMEOUT_MS: z.coerce.number().int().min(0).default(5_000),
    /**
     * Event streams plus waiting long-polls one tenant may hold open in one API process;
     * more answer 429 too_many_streams. 0: no limit.
     */
    API_MAX_STREAMS_PER_TENANT: z.coerce.number().int().min(0).default(100),
    /** The same, all tenants together. 0: no limit. */
    API_MAX_STREAMS: z.coerce.number().int().min(0).default(10_000),
    /** Longest an event stream stays open, s; then it ends and the client reconnects to a fresh snapshot. */
    API_STREAM_MAX_S: z.coerce.number().int().min(1).max(86_400).default(300),
    /** Most schedules per tenant; more answer 429 schedule_quota_exceeded. 0: no limit. */
    API_MAX_SCHEDULES_PER_TENANT: z.coerce.number().int().min(0).default(100),
    /**
     * Shortest interval of a schedule, ms: its `everyMs`, and the gap between two firings of
     * its cron expression; shorter answers 422. At least 1000.
     */
    API_SCHEDULE_MIN_INTERVAL_MS: z.coerce.number().int().min(1000).default(1000),
    /** Most open connections; more are closed as they arrive. 0: no limit. */
    API_MAX_CONNECTIONS: z.coerce.number().int().min(0).default(10_000),
  })
  .superRefine((env, ctx) => {
    if (env.API_HEADERS_TIMEOUT_MS > env.API_REQUEST_TIMEOUT_MS) {
      ctx.addIssue({
        code: 'custom',
        path: ['API_HEADERS_TIMEOUT_MS'],
        message: `must not exceed API_REQUEST_TIMEOUT_MS (${env.API_REQUEST_TIMEOUT_MS}): the headers are part of the request`,
      });
    }
    if (env.NODE_ENV === 'production' && !env.API_KEYS) {
      ctx.addIssue({
        code: 'custom',
        path: ['API_KEYS'],
        message: 'required when NODE_ENV=production (open development mode is refused there)',
      });
    }
    if (!env.API_KEYS && !isLoopback(env.HOST) && env.API_ALLOW_OPEN !== 'true') {
      ctx.addIssue({
        code: 'custom',
        path: ['API_KEYS'],
        message: `required when HOST (${env.HOST}) is not a loopback address: without keys anyone who reaches the port is served (set API_ALLOW_OPEN=true to allow it on a closed network)`,
      });
    }
  });

/** 127.0.0.0/8, ::1 and localhost: reachable from this machine only. */
function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host);
}

export type ApiEnv = z.infer<typeof schema>;

export function loadApiEnv(source: NodeJS.ProcessEnv = process.env): ApiEnv {
  return parseEnv(schema, 'API', source);
}

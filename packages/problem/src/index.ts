import type { Context } from 'hono';

/**
 * The closed set of error codes Offload's HTTP services (the API and the
 * dashboard) answer with, and their HTTP status. Adding a code means adding it
 * here; the renderer below is the only place that builds an error response.
 */
export const ERROR_STATUS = {
  malformed_json: 400,
  json_too_deep: 400,
  unauthorized: 401,
  cross_site_request: 403,
  not_found: 404,
  gone: 410,
  job_finished: 409,
  idempotency_conflict: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  validation_failed: 422,
  unknown_task: 422,
  rate_limited: 429,
  queue_quota_exceeded: 429,
  internal: 500,
  redis_unavailable: 503,
  redis_misconfigured: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

const TITLES: Record<ErrorCode, string> = {
  malformed_json: 'Malformed JSON',
  json_too_deep: 'JSON nested too deeply',
  unauthorized: 'Unauthorized',
  cross_site_request: 'Cross-site request refused',
  not_found: 'Not found',
  gone: 'Gone',
  job_finished: 'Job already finished',
  idempotency_conflict: 'Idempotency-Key reused',
  payload_too_large: 'Request body too large',
  unsupported_media_type: 'Unsupported media type',
  validation_failed: 'Validation failed',
  unknown_task: 'Unknown task',
  rate_limited: 'Too many requests',
  queue_quota_exceeded: 'Too many unfinished jobs',
  internal: 'Internal error',
  redis_unavailable: 'Queue backend unavailable',
  redis_misconfigured: 'Queue backend unsafe for jobs',
};

export interface FieldError {
  /** Dotted path into the request: `input.below`, `options.timeoutMs`, `wait`. */
  path: string;
  message: string;
}

/** The one error type handlers throw; rendered by `problemResponse`. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly code: ErrorCode,
    detail: string,
    readonly errors?: FieldError[],
    /** Extra response headers, such as `Retry-After` (seconds) or `WWW-Authenticate`. */
    readonly headers?: Record<string, string>,
  ) {
    super(detail);
  }
}

/** An RFC 9457 problem document, the body of every error answer. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ErrorCode;
  errors?: FieldError[];
  requestId?: string;
}

export function problemResponse(c: Context, err: ApiError): Response {
  const status = ERROR_STATUS[err.code];
  const problem: Problem = {
    type: `urn:offload:problem:${err.code}`,
    title: TITLES[err.code],
    status,
    detail: err.message,
    code: err.code,
    ...(err.errors && { errors: err.errors }),
    ...(c.get('requestId') && { requestId: c.get('requestId') }),
  };
  const headers: Record<string, string> = {
    ...err.headers,
    'content-type': 'application/problem+json',
  };
  // Redis usually returns within seconds; tell clients when to come back.
  if (err.code === 'redis_unavailable') headers['retry-after'] = '1';
  return new Response(JSON.stringify(problem), { status, headers });
}

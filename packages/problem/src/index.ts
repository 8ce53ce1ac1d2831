import { ERROR_STATUS, type ErrorCode, type FieldError, type Problem } from '@offload/contract';
import type { Context } from 'hono';

export { ERROR_STATUS, type ErrorCode, type FieldError };

const TITLES: Record<ErrorCode, string> = {
  malformed_json: 'Malformed JSON',
  json_too_deep: 'JSON nested too deeply',
  request_aborted: 'Request body incomplete',
  unauthorized: 'Unauthorized',
  cross_site_request: 'Cross-site request refused',
  not_found: 'Not found',
  gone: 'Gone',
  job_finished: 'Job already finished',
  job_not_finished: 'Job not finished',
  job_has_no_result: 'Job ended without a result',
  workflow_finished: 'Workflow already finished',
  idempotency_conflict: 'Idempotency-Key reused',
  payload_too_large: 'Request body too large',
  input_too_large: 'Job input too large',
  unsupported_media_type: 'Unsupported media type',
  validation_failed: 'Validation failed',
  unknown_task: 'Unknown task',
  webhook_secret_missing: 'No webhook signing secret for this tenant',
  rate_limited: 'Too many requests',
  queue_quota_exceeded: 'Too many unfinished jobs',
  too_many_streams: 'Too many open streams',
  storage_quota_exceeded: 'Tenant storage full',
  schedule_quota_exceeded: 'Too many schedules',
  internal: 'Internal error',
  redis_unavailable: 'Queue backend unavailable',
  redis_misconfigured: 'Queue backend unsafe for jobs',
  redis_out_of_memory: 'Queue backend out of memory',
  redis_not_replicated: 'Job not yet on enough Redis replicas',
};

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
  if (err.code === 'redis_unavailable' || err.code === 'redis_not_replicated') {
    headers['retry-after'] = '1';
  }
  // Memory frees as jobs finish and their retention ends: minutes, not seconds.
  if (err.code === 'redis_out_of_memory') headers['retry-after'] = '30';
  return new Response(JSON.stringify(problem), { status, headers });
}

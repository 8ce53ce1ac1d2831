import type { Context } from 'hono';

/**
 * The dashboard's closed set of error codes and their HTTP status; every
 * error answer is an RFC 9457 problem document in the API's shape.
 */
const ERROR_STATUS = {
  unauthorized: 401,
  cross_site_request: 403,
  not_found: 404,
  job_finished: 409,
  validation_failed: 422,
  internal: 500,
  redis_unavailable: 503,
} as const;

export type DashboardErrorCode = keyof typeof ERROR_STATUS;

const TITLES: Record<DashboardErrorCode, string> = {
  unauthorized: 'Unauthorized',
  cross_site_request: 'Cross-site request refused',
  not_found: 'Not found',
  job_finished: 'Job already finished',
  validation_failed: 'Validation failed',
  internal: 'Internal error',
  redis_unavailable: 'Queue backend unavailable',
};

/** The one error type dashboard handlers throw; rendered by `problemResponse`. */
export class DashboardError extends Error {
  override readonly name = 'DashboardError';
  constructor(
    readonly code: DashboardErrorCode,
    detail: string,
  ) {
    super(detail);
  }
}

export function problemResponse(
  c: Context,
  err: DashboardError,
  extraHeaders: Record<string, string> = {},
): Response {
  const status = ERROR_STATUS[err.code];
  const requestId: string | undefined = c.get('requestId');
  const body = {
    type: `urn:offload:problem:${err.code}`,
    title: TITLES[err.code],
    status,
    detail: err.message,
    code: err.code,
    ...(requestId && { requestId }),
  };
  const headers: Record<string, string> = {
    'content-type': 'application/problem+json',
    ...extraHeaders,
  };
  if (err.code === 'redis_unavailable') headers['retry-after'] = '1';
  return new Response(JSON.stringify(body), { status, headers });
}

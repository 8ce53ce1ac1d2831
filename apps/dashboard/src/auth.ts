import { getConnInfo } from '@hono/node-server/conninfo';
import { ApiError } from '@offload/problem';
import type { MiddlewareHandler } from 'hono';
import { basicAuth } from 'hono/basic-auth';
import { HTTPException } from 'hono/http-exception';
import { RateLimiterMemory } from 'rate-limiter-flexible';

/** Admin credentials; null leaves the dashboard open (development only, see env.ts). */
export type AdminCredentials = { user: string; password: string } | null;

export interface LoginThrottle {
  /** Failed sign-ins one client address may make per window. */
  maxFailures: number;
  /** Length of the window, and how long a client past it stays refused, s. */
  windowS: number;
}

/** The defaults of DASHBOARD_LOGIN_MAX_FAILURES and DASHBOARD_LOGIN_WINDOW_S. */
export const DEFAULT_LOGIN_THROTTLE: LoginThrottle = { maxFailures: 10, windowS: 900 };

/**
 * HTTP Basic authentication for every dashboard route. The browser asks once
 * and resends the credentials with every request, bull-board's own included;
 * basicAuth compares them in constant time. A refusal is an HTTPException
 * (401 with WWW-Authenticate) that the app renders as a problem document.
 *
 * Guessing is slowed per client address: after `maxFailures` wrong credentials
 * within `windowS`, every request from that address answers 429 `rate_limited`
 * without its credentials being checked, until the window ends. A request
 * without credentials (a browser's first, before it asks) is not a failure.
 * Counted in this process's memory: each dashboard process counts on its own.
 */
export function adminAuth(
  admin: AdminCredentials,
  throttle: LoginThrottle = DEFAULT_LOGIN_THROTTLE,
): MiddlewareHandler {
  if (!admin) {
    return async function openDashboard(_c, next) {
      await next();
    };
  }
  const verify = basicAuth({
    username: admin.user,
    password: admin.password,
    realm: 'Offload dashboard',
  });
  const failures = new RateLimiterMemory({
    points: throttle.maxFailures,
    duration: throttle.windowS,
    blockDuration: throttle.windowS,
  });
  return async function adminAuthThrottled(c, next) {
    // Behind a reverse proxy every client shares the proxy's address, and so its count.
    const client = getConnInfo(c).remote.address ?? 'unknown';
    const seen = await failures.get(client);
    if (seen && seen.consumedPoints >= throttle.maxFailures) {
      const retryAfterS = Math.max(1, Math.ceil(seen.msBeforeNext / 1000));
      throw new ApiError(
        'rate_limited',
        `Too many failed sign-ins from your address; try again in ${retryAfterS} s`,
        undefined,
        { 'retry-after': String(retryAfterS) },
      );
    }
    try {
      await verify(c, next);
    } catch (err) {
      const guessed = err instanceof HTTPException && err.status === 401;
      if (guessed && c.req.header('authorization')) {
        // Rejects once the points are spent; the next request is the one refused.
        await failures.consume(client).catch(() => {});
      }
      throw err;
    }
  };
}

import type { MiddlewareHandler } from 'hono';
import { basicAuth } from 'hono/basic-auth';

/** Admin credentials; null leaves the dashboard open (development only, see env.ts). */
export type AdminCredentials = { user: string; password: string } | null;

/**
 * HTTP Basic authentication for every dashboard route. The browser asks once
 * and resends the credentials with every request, bull-board's own included;
 * basicAuth compares them in constant time. A refusal is an HTTPException
 * (401 with WWW-Authenticate) that the app renders as a problem document.
 */
export function adminAuth(admin: AdminCredentials): MiddlewareHandler {
  if (!admin) {
    return async function openDashboard(_c, next) {
      await next();
    };
  }
  return basicAuth({
    username: admin.user,
    password: admin.password,
    realm: 'Offload dashboard',
  });
}

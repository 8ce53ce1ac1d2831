import { createHash, timingSafeEqual } from 'node:crypto';
import { ApiError } from '@offload/problem';
import type { MiddlewareHandler } from 'hono';

/** Tenant of every job while API keys are not configured (open development mode). */
export const DEV_TENANT = 'dev';

/** One entry of API_KEYS: the tenant a key acts for. */
export interface ApiKey {
  tenant: string;
  key: string;
}

export interface Caller {
  tenant: string;
  /** A short digest of the caller's key (never the key), for per-key limits; null in open development mode. */
  keyId: string | null;
}

/** What the API's middleware sets on every request's context. */
export type AppEnv = { Variables: { caller: Caller; requestId: string } };

const sha256 = (text: string) => createHash('sha256').update(text).digest();

/**
 * Bearer-key authentication: sets the caller's tenant, or answers 401.
 * Keys are held only as sha256 digests, and a presented key is compared with
 * every one of them in constant time, so neither memory dumps nor response
 * times give a key away. `keys` null: open development mode, tenant `dev`.
 */
export function apiKeyAuth(
  keys: readonly ApiKey[] | null,
): MiddlewareHandler<{ Variables: { caller: Caller } }> {
  const known = (keys ?? []).map(({ tenant, key }) => ({ tenant, digest: sha256(key) }));
  const challenge = { 'www-authenticate': 'Bearer realm="offload"' };
  return async function authenticate(c, next) {
    if (keys === null) {
      c.set('caller', { tenant: DEV_TENANT, keyId: null });
      return next();
    }
    const header = c.req.header('authorization') ?? '';
    const match = /^Bearer +(\S+) *$/i.exec(header);
    if (!match) {
      throw new ApiError(
        'unauthorized',
        'Send an API key as Authorization: Bearer <key>',
        undefined,
        challenge,
      );
    }
    const digest = sha256(match[1] as string);
    let tenant: string | null = null;
    // No early exit: the time taken does not depend on which key matched.
    for (const entry of known) {
      if (timingSafeEqual(entry.digest, digest)) tenant = entry.tenant;
    }
    if (tenant === null) {
      throw new ApiError('unauthorized', 'The API key is not valid', undefined, challenge);
    }
    c.set('caller', { tenant, keyId: digest.subarray(0, 12).toString('hex') });
    return next();
  };
}

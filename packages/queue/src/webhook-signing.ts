import { createHmac } from 'node:crypto';

/**
 * Standard Webhooks v1 signatures (standardwebhooks.com): the base64 HMAC-SHA256
 * of `<webhook-id>.<webhook-timestamp>.<body>`, under a secret written
 * `whsec_<base64 key>`. Written here (a few lines of node:crypto) so that the
 * tests verify deliveries with the reference library as an independent
 * receiver would, not with the code that signed them.
 */

/** What a `whsec_` secret must hold, bytes: the specification's range. */
const MIN_KEY_BYTES = 24;
const MAX_KEY_BYTES = 64;

/** The key bytes of a `whsec_<base64>` secret, or null when it is not one. */
export function secretKey(secret: string): Buffer | null {
  const match = /^whsec_([A-Za-z0-9+/]+={0,2})$/.exec(secret);
  if (!match) return null;
  const key = Buffer.from(match[1] as string, 'base64');
  return key.length >= MIN_KEY_BYTES && key.length <= MAX_KEY_BYTES ? key : null;
}

/**
 * The `webhook-signature` header: one `v1,<base64>` per secret, space-separated,
 * so a receiver holding either secret of a tenant rotating them accepts it.
 */
export function signatureHeader(
  keys: readonly Buffer[],
  id: string,
  timestampS: number,
  body: string,
): string {
  const signed = `${id}.${timestampS}.${body}`;
  return keys
    .map((key) => `v1,${createHmac('sha256', key).update(signed).digest('base64')}`)
    .join(' ');
}

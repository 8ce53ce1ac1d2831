import { secureHeaders } from 'hono/secure-headers';

/**
 * What every answer of the API carries besides its policy: no MIME sniffing,
 * no framing, no referrer, HSTS for deployments behind TLS.
 */
export const SECURITY_HEADERS = {
  xFrameOptions: 'DENY',
  referrerPolicy: 'no-referrer',
} satisfies Parameters<typeof secureHeaders>[0];

/**
 * JSON answers load nothing and are never framed: a strict policy for every
 * route except /docs, which has its own (docs.ts).
 */
export const apiSecurityHeaders = secureHeaders({
  ...SECURITY_HEADERS,
  contentSecurityPolicy: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] },
});

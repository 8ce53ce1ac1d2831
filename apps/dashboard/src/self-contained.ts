import type { MiddlewareHandler } from 'hono';
import { every } from 'hono/combine';
import { secureHeaders } from 'hono/secure-headers';

/**
 * Pages may load from this origin only: a dashboard behind a firewall has no
 * internet, and an admin page should not tell a third party it was opened.
 * Inline styles stay allowed (bull-board's UI and the dashboard's own layout
 * use them); scripts do not. Never framed, so no click-jacking of its buttons.
 */
const dashboardHeaders = secureHeaders({
  xFrameOptions: 'DENY',
  referrerPolicy: 'no-referrer',
  contentSecurityPolicy: {
    defaultSrc: ["'self'"],
    scriptSrc: ["'self'"],
    styleSrc: ["'self'", "'unsafe-inline'"],
    imgSrc: ["'self'", 'data:'],
    fontSrc: ["'self'", 'data:'],
    objectSrc: ["'none'"],
    baseUri: ["'self'"],
    formAction: ["'self'"],
    frameAncestors: ["'none'"],
  },
});

/** bull-board's page links web fonts from another origin; its own CSS names fallbacks. */
const REMOTE_STYLESHEET = /<link\b[^>]*href="https?:\/\/[^"]*"[^>]*>\s*/g;

export const selfContained: MiddlewareHandler = every(
  dashboardHeaders,
  async function withoutRemoteStylesheets(c, next) {
    await next();
    if (!c.res.headers.get('content-type')?.startsWith('text/html')) return;
    const page = await c.res.text();
    const headers = new Headers(c.res.headers);
    headers.delete('content-length');
    c.res = new Response(page.replace(REMOTE_STYLESHEET, ''), { status: c.res.status, headers });
  },
);

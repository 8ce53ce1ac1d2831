import type { MiddlewareHandler } from 'hono';

/**
 * Pages may load from this origin only: a dashboard behind a firewall has no
 * internet, and an admin page should not tell a third party it was opened.
 * Inline styles stay allowed (bull-board's UI uses them); scripts do not.
 */
const POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self' data:",
  "frame-ancestors 'none'",
].join('; ');

/** bull-board's page links web fonts from another origin; its own CSS names fallbacks. */
const REMOTE_STYLESHEET = /<link\b[^>]*href="https?:\/\/[^"]*"[^>]*>\s*/g;

export const selfContained: MiddlewareHandler = async function selfContained(c, next) {
  await next();
  c.res.headers.set('content-security-policy', POLICY);
  if (!c.res.headers.get('content-type')?.startsWith('text/html')) return;
  const page = await c.res.text();
  const headers = new Headers(c.res.headers);
  headers.delete('content-length');
  c.res = new Response(page.replace(REMOTE_STYLESHEET, ''), { status: c.res.status, headers });
};

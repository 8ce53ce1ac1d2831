import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { serveStatic } from '@hono/node-server/serve-static';
import { Hono } from 'hono';
import { html } from 'hono/html';
import { NONCE, secureHeaders } from 'hono/secure-headers';
import { SECURITY_HEADERS } from './security-headers.ts';

/** Swagger UI's prebuilt files, from the version pinned in package.json. */
const SWAGGER_UI = dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));

/**
 * The page may load from this origin only, so /docs works on a network without
 * internet and tells no third party it was opened. Its one inline script, the
 * setup below, runs by nonce.
 */
const docsHeaders = secureHeaders({
  ...SECURITY_HEADERS,
  contentSecurityPolicy: {
    defaultSrc: ["'none'"],
    scriptSrc: ["'self'", NONCE],
    styleSrc: ["'self'"],
    imgSrc: ["'self'", 'data:'],
    connectSrc: ["'self'"],
    baseUri: ["'none'"],
    formAction: ["'none'"],
    frameAncestors: ["'none'"],
  },
});

/**
 * GET /docs: an interactive reference of /openapi.json, with Swagger UI's
 * script and stylesheet served by the API itself.
 */
export const docs = new Hono<{ Variables: { secureHeadersNonce?: string } }>()
  .use(docsHeaders)
  .get('/swagger-ui.css', serveStatic({ path: join(SWAGGER_UI, 'swagger-ui.css') }))
  .get('/swagger-ui-bundle.js', serveStatic({ path: join(SWAGGER_UI, 'swagger-ui-bundle.js') }))
  .get('/', (c) =>
    c.html(html`<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>Offload API</title>
    <link rel="stylesheet" href="/docs/swagger-ui.css" />
  </head>
  <body>
    <div id="docs"></div>
    <script src="/docs/swagger-ui-bundle.js"></script>
    <script nonce="${c.get('secureHeadersNonce')}">
      SwaggerUIBundle({
        url: '/openapi.json',
        dom_id: '#docs',
        deepLinking: true,
        // Swagger UI would otherwise send the document to validator.swagger.io for a badge.
        validatorUrl: null,
      });
    </script>
  </body>
</html>`),
  );

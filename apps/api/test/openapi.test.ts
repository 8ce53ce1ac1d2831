import { registry } from '@offload/tasks';
import { Validator } from '@seriousme/openapi-schema-validator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type TestApi } from '../../../tests/support/api-server.ts';
import { testPrefix } from '../../../tests/support/processes.ts';
import { testRedisUrl } from '../../../tests/support/redis-url.ts';

// biome-ignore lint/suspicious/noExplicitAny: the document is walked by the assertions
type Doc = any;

let api: TestApi;
let doc: Doc;
beforeAll(async () => {
  api = await startApi({ redisUrl: testRedisUrl(), prefix: testPrefix(), registry, listen: false });
  const res = await api.app.request('/openapi.json');
  expect(res.status).toBe(200);
  doc = await res.json();
});
afterAll(() => api.close());

/** Routes that serve the documentation itself. */
const DOCUMENTATION = new Set(['/openapi.json', '/docs']);

describe('the OpenAPI document', () => {
  it('is a valid OpenAPI 3.1 document', async () => {
    expect(doc.openapi).toMatch(/^3\.1\./);
    const result = await new Validator().validate(doc);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
  });

  it('describes every route the app serves, with its method', () => {
    const routes = api.app.routes.filter((r) => r.method !== 'ALL' && !DOCUMENTATION.has(r.path));
    expect(routes.length).toBeGreaterThanOrEqual(9);
    for (const { method, path } of routes) {
      const documented = path.replace(/:([A-Za-z]+)/g, '{$1}');
      expect(doc.paths[documented]?.[method.toLowerCase()], `${method} ${path}`).toBeDefined();
    }
  });

  it("describes POST /v1/jobs as one request per task, each with that task's input schema", () => {
    const body = doc.paths['/v1/jobs'].post.requestBody.content['application/json'].schema;
    const union = body.$ref ? doc.components.schemas[body.$ref.split('/').pop()] : body;
    const variants = union.oneOf.map((v: Doc) =>
      v.$ref ? doc.components.schemas[v.$ref.split('/').pop()] : v,
    );
    const byTask = Object.fromEntries(
      variants.map((v: Doc) => [v.properties.task.const ?? v.properties.task.enum?.[0], v]),
    );
    expect(Object.keys(byTask).sort()).toEqual(
      registry
        .list()
        .map((t) => t.name)
        .sort(),
    );
    expect(byTask['primes.count'].additionalProperties).toBe(false);
    expect(byTask['primes.count'].properties.input).toMatchObject({
      type: 'object',
      properties: { below: { type: 'integer', minimum: 2, maximum: 2_000_000_000 } },
      required: ['below'],
      additionalProperties: false,
    });
    expect(byTask['crypto.pbkdf2'].properties.input.properties.digest.enum).toEqual([
      'sha256',
      'sha512',
    ]);
    const params = doc.paths['/v1/jobs'].post.parameters.map((p: Doc) => p.name);
    expect(params).toContain('idempotency-key');
    expect(Object.keys(doc.paths['/v1/jobs'].post.responses)).toEqual(
      expect.arrayContaining(['200', '202', '401', '409', '413', '422', '429']),
    );
  });

  it('serves an interactive reference at /docs that reads /openapi.json', async () => {
    const res = await api.app.request('/docs');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/html/);
    expect(await res.text()).toContain('/openapi.json');
  });
});

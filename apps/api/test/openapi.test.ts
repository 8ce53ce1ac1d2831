import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { registry } from '@offload/tasks';
import { Validator } from '@seriousme/openapi-schema-validator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type TestApi } from '../../../tests/support/api-server.ts';
import { ROOT, testPrefix } from '../../../tests/support/processes.ts';
import { testRedis } from '../../../tests/support/redis-url.ts';

// biome-ignore lint/suspicious/noExplicitAny: the document is walked by the assertions
type Doc = any;

const run = promisify(execFile);
const bin = (name: string) => join(ROOT, 'node_modules', '.bin', name);
/** Inside the repository, so the generated client's imports resolve from its node_modules. */
mkdirSync(join(ROOT, 'test-results'), { recursive: true });
const work = mkdtempSync(join(ROOT, 'test-results', 'openapi-'));

let api: TestApi;
let doc: Doc;
beforeAll(async () => {
  api = await startApi({ redis: testRedis(), prefix: testPrefix(), registry, listen: false });
  const res = await api.app.request('/openapi.json');
  expect(res.status).toBe(200);
  doc = await res.json();
});
afterAll(async () => {
  await api.close();
  rmSync(work, { recursive: true, force: true });
});

/** Routes that serve the documentation itself: the document, the /docs page and its files. */
const isDocumentation = (path: string) => path === '/openapi.json' || /^\/docs(\/|$)/.test(path);

describe('the OpenAPI document', () => {
  it('is a valid OpenAPI 3.1 document', async () => {
    expect(doc.openapi).toMatch(/^3\.1\./);
    const result = await new Validator().validate(doc);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
  });

  it('describes every route the app serves, with its method', () => {
    const routes = api.app.routes.filter((r) => r.method !== 'ALL' && !isDocumentation(r.path));
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

  it('describes GET /v1/jobs as a page of job summaries without a result, and 429 too_many_streams for streams and long-polls', () => {
    const page = doc.paths['/v1/jobs'].get.responses['200'].content['application/json'].schema;
    const pageSchema = page.$ref ? doc.components.schemas[page.$ref.split('/').pop()] : page;
    const item = pageSchema.properties.jobs.items;
    const summary = item.$ref ? doc.components.schemas[item.$ref.split('/').pop()] : item;
    expect(Object.keys(summary.properties)).toEqual(
      expect.arrayContaining(['id', 'task', 'state', 'progress', 'error', 'finishedAt']),
    );
    expect(summary.properties).not.toHaveProperty('result');
    expect(doc.components.schemas.JobView.properties).toHaveProperty('result');
    for (const path of ['/v1/jobs/{id}', '/v1/jobs/{id}/events']) {
      expect(doc.paths[path].get.responses['429'].description, path).toMatch(/too_many_streams/);
    }
  });

  it('passes redocly lint (recommended rules) with no error and no warning', async () => {
    const file = join(work, 'openapi.json');
    writeFileSync(file, JSON.stringify(doc));
    const { stdout } = await run(bin('redocly'), ['lint', file, '--format=json']).catch(
      (err: { stdout: string }) => ({ stdout: err.stdout }),
    );
    const report = JSON.parse(stdout) as { totals: { errors: number; warnings: number } };
    expect(report.totals).toMatchObject({ errors: 0, warnings: 0 });
  });

  it('generates, with openapi-typescript, a client that type-checks a submit-and-wait script and refuses a wrong input', async () => {
    writeFileSync(join(work, 'openapi.json'), JSON.stringify(doc));
    await run(bin('openapi-typescript'), [
      join(work, 'openapi.json'),
      '-o',
      join(work, 'api.d.ts'),
    ]);
    const script = (input: string) => `import createClient from 'openapi-fetch';
import type { paths } from './api.d.ts';
const api = createClient<paths>({ baseUrl: 'http://127.0.0.1:3000' });
const submitted = await api.POST('/v1/jobs', { body: { task: 'primes.count', input: ${input} } });
if (!submitted.data) throw new Error(submitted.error?.detail);
const done = await api.GET('/v1/jobs/{id}', {
  params: { path: { id: submitted.data.id }, query: { wait: '30' } },
});
const state: 'queued' | 'delayed' | 'blocked' | 'running' | 'completed' | 'failed' | 'canceled' | undefined =
  done.data?.state;
console.log(state, done.data?.result);
`;
    writeFileSync(join(work, 'good.ts'), script('{ below: 1000 }'));
    writeFileSync(join(work, 'bad.ts'), script("{ below: 'a thousand' }"));
    const tsc = (file: string) =>
      run(bin('tsc'), [
        '--noEmit',
        '--strict',
        '--module',
        'nodenext',
        '--target',
        'es2022',
        '--allowImportingTsExtensions',
        '--skipLibCheck',
        join(work, file),
      ]);
    await expect(tsc('good.ts')).resolves.toBeDefined();
    const bad = await tsc('bad.ts').catch((err: { stdout: string }) => err.stdout);
    expect(bad).toMatch(/bad\.ts.*error TS2322/s);
  }, 60_000);

  it('describes the webhook option of jobs and workflows, and its state in JobView and WorkflowView', () => {
    const schemas = doc.components.schemas;
    const url = schemas.WebhookOption.properties.url;
    expect(url.type).toBe('string');
    expect(schemas.WebhookOption.required).toEqual(['url']);
    expect(schemas.JobOptions.properties.webhook.$ref).toBe('#/components/schemas/WebhookOption');
    expect(JSON.stringify(schemas.WorkflowRequest.properties.webhook)).toContain(
      '#/components/schemas/WebhookOption',
    );
    expect(schemas.WebhookState.properties.state.enum).toEqual(['pending', 'delivered', 'failed']);
    for (const view of ['JobView', 'JobSummary', 'WorkflowView']) {
      expect(schemas[view].properties.webhook.$ref, view).toBe('#/components/schemas/WebhookState');
      expect(schemas[view].required, view).not.toContain('webhook');
    }
    expect(doc.paths['/v1/jobs'].post.responses['422'].description).toMatch(
      /webhook_secret_missing/,
    );
  });

  it('serves an interactive reference at /docs that reads /openapi.json', async () => {
    const res = await api.app.request('/docs');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/html/);
    expect(await res.text()).toContain('/openapi.json');
  });
});

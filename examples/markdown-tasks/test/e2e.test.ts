import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type TestApi } from '../../../tests/support/api-server.ts';
import { client } from '../../../tests/support/http.ts';
import {
  type RunningProcess,
  startWorkerProcess,
  testPrefix,
} from '../../../tests/support/processes.ts';
import { testRedis } from '../../../tests/support/redis-url.ts';

/**
 * The project as its README runs it: a real worker with OFFLOAD_TASKS naming
 * this folder, an API that knows nothing of it but the catalog.
 */
let api: TestApi;
let worker: RunningProcess;
let http: ReturnType<typeof client>;

beforeAll(async () => {
  const target = testRedis();
  const prefix = testPrefix();
  worker = await startWorkerProcess({
    redis: target,
    prefix,
    tasks: './examples/markdown-tasks',
    queues: 'markdown',
  });
  api = await startApi({ redis: target, prefix });
  http = client(api.url);
});
afterAll(async () => {
  await worker?.stop();
  await api?.close();
});

describe('markdown-tasks on a real worker', () => {
  it('renders a document submitted over HTTP', async () => {
    const job = await http.submit('markdown.render', {
      markdown: '# Hello\n\nRendered by *Offload*.\n\n## Hello',
    });
    expect(await http.get(job.id, 20)).toMatchObject({
      state: 'completed',
      result: {
        html: '<h1 id="hello">Hello</h1>\n<p>Rendered by <em>Offload</em>.</p>\n<h2 id="hello-1">Hello</h2>\n',
      },
    });
  });

  it('is listed on its own queue, and a wrong input is refused by the API from the catalog', async () => {
    const tasks = (await http.call('GET', '/v1/tasks')).body as unknown as {
      tasks: { name: string; queue: string; workers: number }[];
    };
    expect(tasks.tasks.map((t) => [t.name, t.queue, t.workers])).toEqual([
      ['markdown.render', 'markdown', 1],
      ['markdown.render-many', 'markdown', 1],
    ]);
    const bad = await http.call('POST', '/v1/jobs', {
      task: 'markdown.render',
      input: { markdown: 42 },
    });
    expect(bad.status).toBe(422);
    expect(bad.body).toMatchObject({ errors: [{ path: 'input.markdown' }] });
  });
});

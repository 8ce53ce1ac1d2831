import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TaskInfo } from '@offload/contract';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startApi, type TestApi } from '../support/api-server.ts';
import { client } from '../support/http.ts';
import {
  type RunningProcess,
  refusedWorker,
  startWorkerProcess,
  testPrefix,
} from '../support/processes.ts';
import { redisEnv, testRedis } from '../support/redis-url.ts';
import { TaskFolder } from '../support/task-files.ts';

/**
 * Python tasks (DESIGN.md §2): a tasks.py outside the repository, declared
 * with `@task` from the `offload` package the worker provides, published to
 * the catalog, validated by the API, run by a worker beside TypeScript tasks.
 */
const target = testRedis();
let prefix: string;
let api: TestApi;
let http: ReturnType<typeof client>;
const workers: RunningProcess[] = [];
const files = new TaskFolder();
const folder = mkdtempSync(join(tmpdir(), 'offload-py-tasks-'));
const pyFile = (name: string, source: string) => {
  const path = join(folder, name);
  writeFileSync(path, source);
  return path;
};

/** The task of DESIGN.md §2, word for word. */
const FIB = `from offload import task

@task(name="py.fib", input={"type": "object", "properties": {"n": {"type": "integer", "minimum": 0, "maximum": 90}},
      "required": ["n"], "additionalProperties": False}, output={"type": "object"}, timeout_ms=10_000, attempts=2)
def fib(input, ctx):
    a, b = 0, 1
    for i in range(input["n"]):
        a, b = b, a + b
        ctx.progress(100 * i // max(1, input["n"]))
    return {"value": a}
`;

beforeEach(async () => {
  prefix = testPrefix();
  api = await startApi({ redis: target, prefix });
  http = client(api.url);
});
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.stop('SIGKILL')));
  await api.close();
});
afterAll(() => {
  files.remove();
  rmSync(folder, { recursive: true, force: true });
});

async function tasks(): Promise<TaskInfo[]> {
  return ((await http.call('GET', '/v1/tasks')).body as unknown as { tasks: TaskInfo[] }).tasks;
}

describe('Python tasks', () => {
  it('run from a tasks.py beside TypeScript modules in one worker, published and validated like any task', async () => {
    const fib = pyFile('fib.py', FIB);
    const worker = await startWorkerProcess({
      redis: target,
      prefix,
      tasks: `${files.reverse()},${fib}`,
      concurrency: 2,
    });
    workers.push(worker);
    // The API learns the worker's catalog at its next refresh (REFRESH_MS).
    let list = await tasks();
    for (let i = 0; list.length < 2 && i < 100; i++) {
      await new Promise((r) => setTimeout(r, 50));
      list = await tasks();
    }
    expect(list.map((t) => t.name).sort()).toEqual(['py.fib', 'text.reverse']);
    expect(list.find((t) => t.name === 'py.fib')).toMatchObject({
      queue: 'default',
      workers: 1,
      defaults: { timeoutMs: 10_000, attempts: 2, backoff: { type: 'exponential', delay: 1000 } },
      input: { properties: { n: { maximum: 90 } }, required: ['n'] },
    });

    // fib(78) is the largest below 2^53, the largest integer JSON numbers keep exactly in JavaScript.
    const job = await http.submit('py.fib', { n: 78 });
    expect(await http.get(job.id, 20)).toMatchObject({
      state: 'completed',
      progress: 100,
      result: { value: 8944394323791464 },
    });
    const reverse = await http.submit('text.reverse', { text: 'py' });
    expect((await http.get(reverse.id, 20)).result).toEqual({ reversed: 'yp' });

    const invalid = await http.call('POST', '/v1/jobs', { task: 'py.fib', input: { n: 91, m: 1 } });
    expect(invalid.status).toBe(422);
    expect((invalid.body.errors as { path: string }[]).map((e) => e.path).sort()).toEqual([
      'input.m',
      'input.n',
    ]);
  });
});

describe('a Python tasks file that cannot serve', () => {
  const cases: [string, () => string, RegExp][] = [
    ['does not exist', () => join(folder, 'missing.py'), /missing\.py": no such file/],
    [
      'does not import',
      () => pyFile('broken.py', 'import no_such_module_here\n'),
      /broken\.py": failed to import: ModuleNotFoundError: No module named 'no_such_module_here'/,
    ],
    [
      'has a syntax error',
      () => pyFile('syntax.py', 'def (:\n'),
      /syntax\.py": failed to import: SyntaxError/,
    ],
    ['declares no task', () => pyFile('empty.py', 'ANSWER = 42\n'), /empty\.py": declares no task/],
    [
      'declares a name twice',
      () =>
        pyFile(
          'twice.py',
          `${FIB}\n${FIB.replace('def fib', 'def fib2').replace('from offload import task\n', '')}`,
        ),
      /twice\.py": failed to import: ValueError: task "py\.fib" is declared twice/,
    ],
    [
      'declares a name a TypeScript module declares',
      () => `${files.reverse()},${pyFile('clash.py', FIB.replace('py.fib', 'text.reverse'))}`,
      /clash\.py": task "text\.reverse" is also defined in/,
    ],
    [
      'gives an invalid JSON Schema',
      () => pyFile('schema.py', FIB.replace('"type": "integer"', '"type": "integr"')),
      /schema\.py": task "py\.fib": input is not a valid JSON Schema/,
    ],
    [
      'gives a bad option',
      () => pyFile('options.py', FIB.replace('attempts=2', 'attempts=0')),
      /options\.py": failed to import: ValueError: task "py\.fib": attempts must be an integer from 1 to 25/,
    ],
  ];
  it.each(cases)(
    'stops the worker at start with one line when the file %s',
    async (_, entry, line) => {
      const fatal = await refusedWorker({
        ...redisEnv(target),
        OFFLOAD_PREFIX: prefix,
        OFFLOAD_TASKS: entry(),
      });
      expect(fatal).toHaveLength(1);
      expect(fatal[0]).toMatch(line);
      expect(fatal[0]).not.toContain('\n');
    },
  );
});

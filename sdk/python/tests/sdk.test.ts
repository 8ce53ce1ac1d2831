import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startApi, type TestApi } from '../../../tests/support/api-server.ts';
import {
  type RunningProcess,
  startWorkerProcess,
  testPrefix,
} from '../../../tests/support/processes.ts';
import { testRedis } from '../../../tests/support/redis-url.ts';
import { PYTHON_TEST_TASKS } from '../../../tests/support/test-tasks.ts';

/**
 * The Python package's own tests (standard unittest), run by `npm test`:
 * with a real API and a worker serving the Python test tasks, so the
 * client's tests talk to Offload for real.
 */
const SDK = fileURLToPath(new URL('..', import.meta.url));
const target = testRedis();
const prefix = testPrefix();
/** Every event stream of the test API ends after this long, s: the client must reopen it. */
const STREAM_MAX_S = 1;
let api: TestApi;
let worker: RunningProcess;

beforeAll(async () => {
  api = await startApi({
    redis: target,
    prefix,
    workflows: true,
    streams: { maxLifetimeMs: STREAM_MAX_S * 1000 },
  });
  worker = await startWorkerProcess({
    redis: target,
    prefix,
    tasks: PYTHON_TEST_TASKS,
    concurrency: 2,
  });
});
afterAll(async () => {
  await worker?.stop('SIGTERM');
  await api?.close();
});

it('python3 -m unittest passes, every test run and none skipped', async () => {
  const child = spawn(
    process.env.OFFLOAD_PYTHON ?? 'python3',
    ['-m', 'unittest', 'discover', '-v', '-s', 'tests', '-t', '.'],
    {
      cwd: SDK,
      env: {
        ...process.env,
        OFFLOAD_TEST_URL: api.url,
        OFFLOAD_TEST_STREAM_MAX_S: String(STREAM_MAX_S),
      },
    },
  );
  let output = '';
  child.stdout.on('data', (chunk) => (output += chunk));
  child.stderr.on('data', (chunk) => (output += chunk));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  console.log(output.split('\n').slice(-4).join('\n'));
  expect(output).toMatch(/^OK$/m);
  console.log(output.match(/^Ran \d+ tests? in .*$/m)?.[0]);
  expect(output).not.toMatch(/skipped/);
  expect(code).toBe(0);
});

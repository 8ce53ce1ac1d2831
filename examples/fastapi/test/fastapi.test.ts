import { execFileSync, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { delimiter } from 'node:path';
import { fileURLToPath } from 'node:url';
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
 * examples/fastapi for real: uvicorn serving app.py, the Offload API, and a
 * worker with two Python executors running tasks.py.
 */
const EXAMPLE = fileURLToPath(new URL('..', import.meta.url));
const SDK = fileURLToPath(new URL('../../../sdk/python', import.meta.url));
const target = testRedis();
const prefix = testPrefix();
/** Samples per job: about a second of pure-Python CPU on this machine's kind. */
const SAMPLES = 8_000_000;

/** An interpreter that has FastAPI and uvicorn (Debian's python3-fastapi and python3-uvicorn). */
function fastapiPython(): string {
  for (const python of ['python3', '/usr/bin/python3']) {
    try {
      execFileSync(python, ['-c', 'import fastapi, uvicorn'], { stdio: 'ignore' });
      return python;
    } catch {
      // Try the next.
    }
  }
  throw new Error(
    'No python3 with fastapi and uvicorn: apt-get install python3-fastapi python3-uvicorn',
  );
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

let api: TestApi;
let worker: RunningProcess;
let uvicorn: ReturnType<typeof spawn>;
let app: string;
let output = '';

async function timed<T>(request: Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await request;
  return { value, ms: performance.now() - started };
}

async function post(
  path: string,
  body: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${app}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const ping = () => timed(fetch(`${app}/ping`).then((res) => res.json()));

beforeAll(async () => {
  api = await startApi({ redis: target, prefix });
  worker = await startWorkerProcess({
    redis: target,
    prefix,
    tasks: 'examples/fastapi/tasks.py',
    concurrency: 2,
    // The same interpreter as the app's, so the inline and offloaded figures compare.
    env: { OFFLOAD_PYTHON: fastapiPython() },
  });
  const port = await freePort();
  app = `http://127.0.0.1:${port}`;
  uvicorn = spawn(
    fastapiPython(),
    ['-m', 'uvicorn', 'app:app', '--host', '127.0.0.1', '--port', String(port)],
    {
      cwd: EXAMPLE,
      env: {
        ...process.env,
        OFFLOAD_URL: api.url,
        PYTHONPATH: [SDK, process.env.PYTHONPATH].filter(Boolean).join(delimiter),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  uvicorn.stderr?.on('data', (chunk) => {
    output += chunk;
  });
  uvicorn.stdout?.on('data', (chunk) => {
    output += chunk;
  });
  await new Promise<void>((resolve, reject) => {
    const check = () => (/Application startup complete/.test(output) ? resolve() : undefined);
    uvicorn.stderr?.on('data', check);
    uvicorn.once('exit', () => reject(new Error(`uvicorn exited:\n${output}`)));
  });
  // The API's first submit compiles the task's validator and loads its scripts (about 250 ms):
  // one warm-up job, so the figures below are those of a running system.
  const warm = await post('/simulations', { samples: 1 });
  await client(api.url).until(warm.body.jobId as string, (v) => v.state === 'completed');
});
afterAll(async () => {
  uvicorn?.kill('SIGTERM');
  await worker?.stop('SIGTERM');
  await api?.close();
});

describe('the FastAPI example', () => {
  it('before: computing inline, the server answers nobody, not even /ping, until it is done', async () => {
    const inline = timed(post('/simulations/inline', { samples: SAMPLES }));
    await new Promise((r) => setTimeout(r, 100));
    const blocked = await ping();
    const { value, ms } = await inline;
    console.log(
      `inline: the simulation took ${ms.toFixed(0)} ms; /ping sent meanwhile waited ${blocked.ms.toFixed(0)} ms`,
    );
    expect(value.body.pi).toBeCloseTo(3.14, 1);
    // /ping was sent 100 ms in, and answered only when the computation ended.
    expect(blocked.ms).toBeGreaterThan((ms - 100) / 2);
  });

  it('after: two requests answer in milliseconds, their jobs run at once on two executors, and /ping stays fast', async () => {
    const submits = await Promise.all([
      timed(post('/simulations', { samples: SAMPLES, seed: 1 })),
      timed(post('/simulations', { samples: SAMPLES, seed: 2 })),
    ]);
    for (const { value } of submits) expect(value.status).toBe(202);
    const http = client(api.url);
    const ids = submits.map(({ value }) => value.body.jobId as string);
    await Promise.all(ids.map((id) => http.until(id, (v) => v.state === 'running')));
    const pings: number[] = [];
    while (pings.length < 20) {
      const views = await Promise.all(ids.map((id) => http.get(id)));
      if (views.some((v) => v.state !== 'running')) break;
      pings.push((await ping()).ms);
    }
    const views = await Promise.all(
      ids.map((id) => http.until(id, (v) => v.state === 'completed', 60_000)),
    );
    const statuses = await Promise.all(
      ids.map((id) => fetch(`${app}/simulations/${id}?wait=5`).then((res) => res.json())),
    );
    const started = views.map((v) => Date.parse(v.startedAt as string));
    const finished = views.map((v) => Date.parse(v.finishedAt as string));
    const overlapMs = Math.min(...finished) - Math.max(...started);
    const worstPing = Math.max(...pings);
    console.log(
      `offloaded: submits answered in ${submits.map((s) => s.ms.toFixed(0)).join(' and ')} ms; ` +
        `the two jobs ran ${finished.map((f, i) => f - (started[i] as number)).join(' and ')} ms, overlapping ${overlapMs} ms; ` +
        `${pings.length} /ping meanwhile, slowest ${worstPing.toFixed(1)} ms`,
    );
    for (const { ms } of submits) expect(ms).toBeLessThan(500);
    expect(overlapMs).toBeGreaterThan(0);
    expect(pings.length).toBeGreaterThan(0);
    expect(worstPing).toBeLessThan(250);
    for (const status of statuses) {
      expect(status).toMatchObject({ state: 'completed', result: { samples: SAMPLES } });
      expect(status.result.pi).toBeCloseTo(3.14, 1);
    }
  });

  it('answers a bad request from FastAPI itself, and an Offload refusal with its problem', async () => {
    const res = await post('/simulations', { samples: 0 });
    expect(res.status).toBe(422);
  });
});

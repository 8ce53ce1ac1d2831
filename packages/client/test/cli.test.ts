import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { registry } from '@offload/tasks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type TestApi } from '../../../tests/support/api-server.ts';
import {
  ROOT,
  type RunningProcess,
  startWorkerProcess,
  testPrefix,
} from '../../../tests/support/processes.ts';
import { testRedis } from '../../../tests/support/redis-url.ts';

// The `offload` command as npm links it (node_modules/.bin/offload), run as a real process.
const BIN = `${ROOT}node_modules/.bin/offload`;
const KEY = 'cli-test-key-0123456789abc';

let api: TestApi;
let worker: RunningProcess;
beforeAll(async () => {
  const target = testRedis();
  const prefix = testPrefix();
  [api, worker] = await Promise.all([
    startApi({
      redis: target,
      prefix,
      registry,
      apiKeys: [{ tenant: 'cli', key: KEY }],
      maxBodyBytes: 1024 * 1024,
      workflows: true,
    }),
    startWorkerProcess({ redis: target, prefix, concurrency: 2 }),
  ]);
});
afterAll(async () => {
  await worker?.stop('SIGKILL');
  await api?.close();
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `offload ...args` with stdout a pipe (not a terminal), as a script would. */
function offload(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(BIN, args, {
      cwd: ROOT,
      env: { ...process.env, OFFLOAD_URL: api.url, OFFLOAD_API_KEY: KEY, ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/** `offload`, with stdout collected as bytes (a binary result piped to a file). */
function offloadBytes(args: string[]): Promise<{ code: number | null; stdout: Buffer }> {
  return new Promise((resolve) => {
    const child = spawn(BIN, args, {
      cwd: ROOT,
      env: { ...process.env, OFFLOAD_URL: api.url, OFFLOAD_API_KEY: KEY },
    });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
    child.on('exit', (code) => resolve({ code, stdout: Buffer.concat(chunks) }));
  });
}

const lines = (text: string) =>
  text
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line));

describe('offload (not on a terminal: JSON lines)', () => {
  it('submits with --wait and prints each event until the job completes, exit 0', async () => {
    const run = await offload(['submit', 'cpu.burn', '{"ms":600}', '--wait']);
    expect(run.code, run.stderr).toBe(0);
    const events = lines(run.stdout);
    expect(events[0]).toMatchObject({
      event: 'submitted',
      job: { task: 'cpu.burn', state: 'queued' },
    });
    expect(events.at(-1)).toMatchObject({ event: 'completed', job: { state: 'completed' } });
    expect(events.map((e) => e.event)).toContain('progress');
    expect(events.at(-1).job.result.burnedMs).toBeGreaterThanOrEqual(600);
  });

  it('submits, shows status, waits, lists and cancels', async () => {
    const submitted = await offload(['submit', 'primes.count', '{"below":100000}']);
    expect(submitted.code, submitted.stderr).toBe(0);
    const [job] = lines(submitted.stdout);
    const waited = await offload(['wait', job.id]);
    expect(waited.code, waited.stderr).toBe(0);
    expect(lines(waited.stdout).at(-1).job.result).toEqual({ count: 9592 });

    const status = await offload(['status', job.id]);
    expect(lines(status.stdout)[0]).toMatchObject({ id: job.id, state: 'completed' });

    const delayed = lines(
      (await offload(['submit', 'cpu.burn', '{"ms":1}', '--delay-ms', '60000'])).stdout,
    )[0];
    expect(delayed.state).toBe('delayed');
    const listed = lines((await offload(['list', '--limit', '2'])).stdout);
    // The jobs, then where the next page starts.
    expect(listed.slice(0, 2).map((j) => j.id)).toEqual([delayed.id, job.id]);
    expect(listed[2]).toEqual({ nextCursor: expect.any(String) });
    const canceled = await offload(['cancel', delayed.id]);
    expect(lines(canceled.stdout)[0]).toMatchObject({ id: delayed.id, state: 'canceled' });
    // A finished job cannot be canceled: the problem on stderr, exit 1.
    const refused = await offload(['cancel', job.id]);
    expect(refused.code).toBe(1);
    expect(JSON.parse(refused.stderr)).toMatchObject({ status: 409, code: 'job_finished' });
  });

  it('lists the tasks', async () => {
    const run = await offload(['tasks']);
    // The catalog lists tasks by name.
    expect(lines(run.stdout).map((t) => t.name)).toEqual(
      registry
        .list()
        .map((t) => t.name)
        .sort(),
    );
  });

  it('exits 1 with the problem for a refused job, 2 for bad usage, 3 when the API is unreachable', async () => {
    const bad = await offload(['submit', 'primes.count', '{"below":1}']);
    expect(bad.code).toBe(1);
    expect(JSON.parse(bad.stderr)).toMatchObject({
      code: 'validation_failed',
      errors: [{ path: 'input.below' }],
    });
    const wrongKey = await offload(['tasks'], { OFFLOAD_API_KEY: 'nope-nope-nope-nope-nope' });
    expect(wrongKey.code).toBe(1);
    expect(JSON.parse(wrongKey.stderr).code).toBe('unauthorized');
    expect((await offload(['submit', 'primes.count', '{nope'])).code).toBe(2);
    expect((await offload(['frobnicate'])).code).toBe(2);
    const offline = await offload(['tasks'], { OFFLOAD_URL: 'http://127.0.0.1:9' });
    expect(offline.code).toBe(3);
    expect(offline.stderr).toMatch(/Could not reach/);
  });

  it('sends --webhook as the job’s webhook option (this API gives tenant cli no secret: 422 by name)', async () => {
    const run = await offload([
      'submit',
      'primes.count',
      '{"below":100}',
      '--webhook',
      'https://93.184.215.14/hook',
    ]);
    expect(run.code).toBe(1);
    expect(JSON.parse(run.stderr)).toMatchObject({
      code: 'webhook_secret_missing',
      errors: [{ path: 'options.webhook' }],
    });
  });
});

describe('offload workflow', () => {
  it('runs a workflow file and follows it to the end, shows, and refuses what it cannot do', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'offload-workflow-'));
    try {
      const file = join(dir, 'workflow.json');
      // Two steps, the second taking `field` of the first's result.
      const writeChain = (field: string) =>
        writeFileSync(
          file,
          JSON.stringify({
            steps: {
              count: { task: 'primes.count', input: { below: 100 } },
              again: {
                task: 'primes.count',
                input: { below: { $result: `count.${field}` } },
                needs: ['count'],
              },
            },
          }),
        );
      writeChain('count');
      const run = await offload(['workflow', 'run', file, '--wait']);
      expect(run.code).toBe(0);
      const printed = lines(run.stdout);
      const [started, ended] = [printed[0], printed.at(-1)];
      expect(started).toMatchObject({ state: 'running', steps: { again: { state: 'blocked' } } });
      expect(ended).toMatchObject({
        state: 'completed',
        steps: { again: { result: { count: 9 } } },
      });
      // On the way, each step's change of state, in order: `again` completes after `count`.
      const changes = printed
        .slice(1, -1)
        .map((line) => [line.step, line.job.state] as [string, string]);
      expect(changes.every(([, state]) => state !== 'blocked')).toBe(true);
      expect(
        changes.findIndex(([step, state]) => step === 'again' && state === 'completed'),
      ).toBeGreaterThan(
        changes.findIndex(([step, state]) => step === 'count' && state === 'completed'),
      );
      expect(changes.at(-1)).toEqual(['again', 'completed']);

      const status = await offload(['workflow', 'status', started.id]);
      expect(lines(status.stdout)[0]).toMatchObject({ id: started.id, state: 'completed' });
      const cancel = await offload(['workflow', 'cancel', started.id]);
      expect(cancel.code).toBe(1);
      expect(JSON.parse(cancel.stderr)).toMatchObject({ code: 'workflow_finished' });

      // A step whose $result names a field the result lacks: the workflow fails, exit 1.
      writeChain('nope');
      const failed = await offload(['workflow', 'run', file, '--wait']);
      expect(failed.code).toBe(1);
      expect(lines(failed.stdout).at(-1)).toMatchObject({ state: 'failed' });

      writeFileSync(file, '{"steps": ');
      const bad = await offload(['workflow', 'run', file]);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toContain('not JSON');
      expect((await offload(['workflow', 'status'])).code).toBe(2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('offload result', () => {
  it('writes a binary result to the file -o names, pipes it to stdout, and prints a JSON result', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'offload-cli-result-'));
    try {
      const submitted = await offload([
        'submit',
        'image.mandelbrot',
        '{"width":200,"height":150}',
        '--wait',
      ]);
      expect(submitted.code, submitted.stderr).toBe(0);
      const done = lines(submitted.stdout).at(-1).job;
      const file = join(dir, 'mandelbrot.png');
      const written = await offload(['result', done.id, '-o', file]);
      expect(written.code, written.stderr).toBe(0);
      expect(lines(written.stdout)).toEqual([
        { file, contentType: 'image/png', size: done.result.size },
      ]);
      const png = readFileSync(file);
      expect(png.byteLength).toBe(done.result.size);
      expect(png.subarray(0, 8).toString('hex')).toBe('89504e470d0a1a0a');
      console.log(`offload result -o wrote a ${png.byteLength}-byte PNG (200×150)`);

      const piped = await offloadBytes(['result', done.id]);
      expect(piped.code).toBe(0);
      expect(piped.stdout.equals(png)).toBe(true);

      const count = lines(
        (await offload(['submit', 'primes.count', '{"below":100}', '--wait'])).stdout,
      ).at(-1).job;
      const printed = await offload(['result', count.id]);
      expect(printed.code, printed.stderr).toBe(0);
      expect(lines(printed.stdout)).toEqual([{ count: 25 }]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('offload submit --from', () => {
  it('queues every job of a JSON-lines file in batches and prints each', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'offload-cli-'));
    const file = join(dir, 'jobs.jsonl');
    const count = 1001;
    writeFileSync(
      file,
      `${Array.from({ length: count }, (_, i) => JSON.stringify({ task: 'primes.count', input: { below: i + 2 }, options: { delayMs: 60_000 } })).join('\n')}\n`,
    );
    const run = await offload(['submit', '--from', file]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const printed = lines(run.stdout);
    expect(printed).toHaveLength(count);
    expect(printed.every((job) => job.state === 'delayed' && job.task === 'primes.count')).toBe(
      true,
    );
    expect(new Set(printed.map((job) => job.id)).size).toBe(count);

    writeFileSync(file, '{"task":"primes.count","input":{"below":5}}\nnot json\n');
    const bad = await offload(['submit', '--from', file]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('line 2');
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('offload on a terminal', () => {
  it('draws a live progress bar with the elapsed time, then the result', async () => {
    // `script` gives the command a pseudo-terminal, as an interactive shell would.
    const command = `${BIN} submit cpu.burn '{"ms":1200}' --wait`;
    const run = await new Promise<Run>((resolve) => {
      const child = spawn('script', ['-qefc', command, '/dev/null'], {
        cwd: ROOT,
        env: { ...process.env, OFFLOAD_URL: api.url, OFFLOAD_API_KEY: KEY },
      });
      let stdout = '';
      child.stdout.on('data', (chunk) => (stdout += chunk));
      child.on('exit', (code) => resolve({ code, stdout, stderr: '' }));
    });
    expect(run.code).toBe(0);
    const frames = run.stdout.split('\r').filter((f) => f.includes('█') || f.includes('░'));
    // Redrawn in place many times (every 100 ms), the percentage and the seconds growing.
    expect(frames.length).toBeGreaterThan(5);
    expect(run.stdout).toMatch(/100%\s+completed/);
    // The elapsed seconds count up as the frames go by (how far they get depends on
    // when a loaded machine lets the last frame be drawn, so no fixed figure).
    const seconds = frames.map((f) => Number(/([\d.]+) s/.exec(f)?.[1]));
    expect(seconds.every((s) => Number.isFinite(s))).toBe(true);
    expect(seconds).toEqual([...seconds].sort((a, b) => a - b));
    expect(Math.max(...seconds)).toBeGreaterThan(Math.min(...seconds));
    expect(run.stdout).toMatch(/result: \{\s+"burnedMs"/);
  });
});

import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

/**
 * The container engine the containers tests drive, and the helpers they share.
 * CONTAINER_ENGINE (`docker` or `podman`) and CONTAINER_COMPOSE (the compose
 * command, words split on spaces) choose it. Unset: `podman` with
 * `podman-docker-compose` when that is on PATH, else `docker` with `docker compose`.
 */
export const root = fileURLToPath(new URL('../../', import.meta.url));
const run = promisify(execFile);

const hasCommand = async (name: string) =>
  run('sh', ['-c', `command -v ${name}`]).then(
    () => true,
    () => false,
  );
const podmanCompose = await hasCommand('podman-docker-compose');
const { CONTAINER_ENGINE, CONTAINER_COMPOSE } = process.env;
export const engine = CONTAINER_ENGINE ?? (podmanCompose ? 'podman' : 'docker');
const composeCommand = (
  CONTAINER_COMPOSE ??
  (engine === 'podman' && podmanCompose ? 'podman-docker-compose' : `${engine} compose`)
).split(' ');

declare module 'vitest' {
  export interface ProvidedContext {
    /** Offload's image, built once for every containers test file (global-image.ts). */
    offloadImage: string;
  }
}

/** Runs a command to its end; a failure carries the tail of its output. */
export async function sh(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const [command = '', ...args] = argv;
  try {
    const { stdout } = await run(command, args, { cwd: root, env, maxBuffer: 64 << 20 });
    return stdout;
  } catch (err) {
    const { stdout = '', stderr = '' } = err as { stdout?: string; stderr?: string };
    const tail = `${stdout}\n${stderr}`.trim().split('\n').slice(-40).join('\n');
    throw new Error(`${argv.join(' ')} failed:\n${tail}`);
  }
}

/**
 * The compose command for one stack: its files, and the environment that
 * names its project (COMPOSE_PROJECT_NAME) and sets its variables.
 */
export function composeOf(files: string[], env: () => NodeJS.ProcessEnv) {
  return (...args: string[]) =>
    sh([...composeCommand, ...files.flatMap((file) => ['-f', file]), ...args], env());
}

/** Runs one step and says how long it took, for deciding where these tests can run. */
export async function timed<T>(step: string, work: () => Promise<T>): Promise<T> {
  const started = performance.now();
  const value = await work();
  console.log(`${step}: ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return value;
}

/** Polls until `check` returns a value; ms. */
export async function until<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs: number,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/** One call to the stack's API over HTTP with a tenant's key, as a client makes it. */
export async function apiRequest(api: string, apiKey: string, path: string, body?: unknown) {
  const response = await fetch(`${api}${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

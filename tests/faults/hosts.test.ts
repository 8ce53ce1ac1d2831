import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  createRedis,
  HEARTBEAT_TTL_MS,
  type RedisClient,
  type WorkerHeartbeat,
} from '@offload/queue';
import { builtInTasks, createRegistry } from '@offload/tasks';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDashboard } from '../../apps/dashboard/src/app.ts';
import { type PrivateRedis, startRedisServer } from '../../scripts/redis-server.ts';
import { startApi, type TestApi } from '../support/api-server.ts';
import { completions } from '../support/bull-events.ts';
import { client } from '../support/http.ts';
import { isAlive, ROOT, testPrefix } from '../support/processes.ts';
import { TEST_TASK_MODULES, testTasks } from '../support/test-tasks.ts';
import { testHost } from './host-task.ts';

/**
 * Workers on separate machines. Each worker process runs on a host of its
 * own: a Linux network namespace with one veth link to this machine's root
 * namespace, its own address and its own hostname. They share one private
 * redis-server over those links. Cutting a link (`ip link set … down`) is a
 * lost machine; bringing it up again is the machine coming back.
 *
 * Only addresses in a /24 no route of this machine uses, all on links this
 * test makes; a blackhole route over the whole /24 keeps anything meant for
 * a cut link from leaving by the default route. Needs root and `ip netns`
 * (iproute2); without them the test fails and says so.
 */

/** README, "Delivery guarantees and faults": a lost worker's job runs elsewhere within lock (5 s) + stall check (2.5 s) + 2 s. */
const LOST_JOB_BOUND_MS = 5000 + 2500 + 2000;
/** How long the cut host's own attempt of the long job runs, ms: past the cut, the takeover and the rejoin. */
const LONG_JOB_MS = 30_000;

const HOST_TASK = fileURLToPath(new URL('./host-task.ts', import.meta.url));
const registry = createRegistry([...builtInTasks, ...testTasks, testHost]);

interface Host {
  /** Its hostname, as its worker's heartbeat reports it. */
  name: string;
  netns: string;
  /** The veth end in the root namespace: cut it and the host is gone. */
  link: string;
  /** The root namespace's address on the link: where this host reaches Redis. */
  gateway: string;
  /** The host's own address. */
  address: string;
}

interface HostWorker {
  host: Host;
  /** Its fleet id, from its `worker ready` line. */
  id: string;
  child: ChildProcess;
  output(): string;
  exited: Promise<unknown>;
}

/** Runs `ip …`; throws with ip's own message. */
function ip(...args: string[]): string {
  const run = spawnSync('ip', args, { encoding: 'utf8' });
  if (run.error) throw new Error(`ip ${args.join(' ')}: ${run.error.message}`);
  if (run.status !== 0) throw new Error(`ip ${args.join(' ')} failed: ${run.stderr.trim()}`);
  return run.stdout;
}

/** Runs `ip …` for cleanup: what is already gone is fine. */
function ipQuietly(...args: string[]): void {
  spawnSync('ip', args, { stdio: 'ignore' });
}

function requireNetworkNamespaces(): void {
  const problem = (() => {
    if (process.getuid?.() !== 0) return 'it must run as root';
    const netns = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
    if (netns.error) return `\`ip\` is missing (${netns.error.message}): apt-get install iproute2`;
    if (netns.status !== 0) return `\`ip netns list\` failed: ${netns.stderr.trim()}`;
    const unshare = spawnSync('unshare', ['--version'], { stdio: 'ignore' });
    if (unshare.error || unshare.status !== 0) return '`unshare` (util-linux) is missing';
    return null;
  })();
  if (problem) {
    throw new Error(
      `hosts.test.ts builds its hosts with Linux network namespaces (ip netns, veth) and cannot: ${problem}`,
    );
  }
}

const toInt = (dotted: string) =>
  dotted.split('.').reduce((sum, octet) => sum * 256 + Number(octet), 0) >>> 0;

/** Whether two IPv4 prefixes share an address. */
function overlaps([a, aLength]: [number, number], [b, bLength]: [number, number]): boolean {
  const length = Math.min(aLength, bLength);
  const mask = length === 0 ? 0 : (~0 << (32 - length)) >>> 0;
  return (a & mask) >>> 0 === (b & mask) >>> 0;
}

/** Every IPv4 prefix this machine routes to or holds an address in, the default route aside. */
function prefixesInUse(): [number, number][] {
  const routes = JSON.parse(ip('-j', '-4', 'route', 'show', 'table', 'all')) as { dst: string }[];
  const links = JSON.parse(ip('-j', '-4', 'address')) as {
    addr_info: { local: string; prefixlen: number }[];
  }[];
  const prefixes: [number, number][] = [];
  for (const { dst } of routes) {
    if (dst === 'default') continue;
    const [address, length] = dst.split('/');
    prefixes.push([toInt(address as string), length === undefined ? 32 : Number(length)]);
  }
  for (const link of links) {
    for (const { local, prefixlen } of link.addr_info) prefixes.push([toInt(local), prefixlen]);
  }
  return prefixes;
}

/**
 * A random 10.x.y.0/24 that nothing here routes or uses. The second octet
 * keeps clear of ranges container and Kubernetes tools take by default
 * (10.42–43, 10.88–89, 10.96, 10.244), which may appear while this runs.
 */
function freeSubnet(): string {
  const inUse = prefixesInUse();
  for (let tries = 0; tries < 50; tries++) {
    const base = `10.${randomInt(150, 240)}.${randomInt(0, 256)}`;
    if (!inUse.some((prefix) => overlaps(prefix, [toInt(`${base}.0`), 24]))) return base;
  }
  throw new Error('no free 10.x.y.0/24 found for the test hosts');
}

/** Host `index` of the subnet: a namespace, a veth pair, a /30 of the subnet. */
function makeHost(subnet: string, index: number): Host {
  const letter = String.fromCharCode(97 + index);
  const host: Host = {
    name: `host-${letter}-${process.pid}`,
    netns: `offload-${process.pid}-${letter}`,
    // Interface names stop at 15 characters.
    link: `ofl${process.pid}${letter}`,
    gateway: `${subnet}.${4 * index + 1}`,
    address: `${subnet}.${4 * index + 2}`,
  };
  // Left over from an earlier run of a process with this pid that could not clean up.
  ipQuietly('link', 'del', host.link);
  ipQuietly('netns', 'del', host.netns);
  ip('netns', 'add', host.netns);
  ip('link', 'add', host.link, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', host.netns);
  ip('address', 'add', `${host.gateway}/30`, 'dev', host.link);
  ip('link', 'set', host.link, 'up');
  ip('-n', host.netns, 'address', 'add', `${host.address}/30`, 'dev', 'eth0');
  ip('-n', host.netns, 'link', 'set', 'eth0', 'up');
  // The worker's /metrics listens on the host's own 127.0.0.1.
  ip('-n', host.netns, 'link', 'set', 'lo', 'up');
  return host;
}

function removeHost(host: Pick<Host, 'link' | 'netns'>): void {
  // Deleting one end of a veth pair deletes both, at once; a namespace's own removal is lazy.
  ipQuietly('link', 'del', host.link);
  ipQuietly('netns', 'del', host.netns);
}

/**
 * Removes what a run of this test killed before its cleanup left behind: its
 * namespaces, their links and its blackhole route (whose metric is its pid).
 */
function removeLeftovers(): void {
  for (const line of ip('netns', 'list').split('\n')) {
    const match = /^offload-(\d+)-([a-z])\b/.exec(line);
    if (!match || isAlive(Number(match[1]))) continue;
    removeHost({ netns: `offload-${match[1]}-${match[2]}`, link: `ofl${match[1]}${match[2]}` });
  }
  const routes = JSON.parse(ip('-j', '-4', 'route', 'show', 'type', 'blackhole')) as {
    dst: string;
    metric?: number;
  }[];
  for (const { dst, metric } of routes) {
    if (!/^10\.\d+\.\d+\.0\/24$/.test(dst) || !metric || isAlive(metric)) continue;
    ipQuietly('route', 'del', 'blackhole', dst, 'metric', String(metric));
  }
}

/**
 * Starts a worker process on `host`: inside its network namespace, with its
 * hostname set in a UTS namespace of its own, and waits until it takes jobs.
 */
async function startWorkerOn(host: Host, redisUrl: string, prefix: string): Promise<HostWorker> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    NODE_ENV: 'test',
    REDIS_URL: redisUrl,
    OFFLOAD_PREFIX: prefix,
    OFFLOAD_TASKS: `${TEST_TASK_MODULES},${HOST_TASK}`,
    WORKER_CONCURRENCY: '1',
    WORKER_SHUTDOWN_GRACE_MS: '1000',
    LOG_LEVEL: 'info',
  };
  delete env.REDIS_CLUSTER_NODES;
  delete env.REDIS_PASSWORD;
  // `ip netns exec`, `unshare` and `exec` each replace the process: the child's pid is the worker's.
  const child = spawn(
    'ip',
    [
      ...['netns', 'exec', host.netns, 'unshare', '--uts', 'sh', '-c'],
      'hostname "$1" && exec "$0" --import tsx apps/worker/src/index.ts',
      process.execPath,
      host.name,
    ],
    { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const exited = new Promise((resolve) => child.once('exit', resolve));
  spawned.push({ child, exited });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  let gone = false;
  void exited.then(() => {
    gone = true;
  });
  // Starting under tsx takes seconds, many more on a loaded machine.
  const ready = await eventually(
    async () => {
      if (gone) throw new Error(`the worker on ${host.name} exited:\n${output}`);
      return output.split('\n').find((line) => line.includes('worker ready'));
    },
    90_000,
    `the worker on ${host.name} to be ready`,
  ).catch((err: Error) => {
    throw new Error(`${err.message}\n${output}`);
  });
  const { workerId } = JSON.parse(ready) as { workerId: string };
  return { host, id: workerId, child, output: () => output, exited };
}

/** Every worker process started, ready or not, for the cleanup. */
const spawned: { child: ChildProcess; exited: Promise<unknown> }[] = [];

async function stopAll(): Promise<void> {
  for (const { child } of spawned) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  await Promise.all(spawned.splice(0).map(({ exited }) => exited));
}

/** Resolves with what `read` returns once it is not undefined, polling; rejects after `timeoutMs`. */
async function eventually<T>(
  read: () => Promise<T | undefined | false>,
  timeoutMs: number,
  what: string,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const ms = (iso: string | null) => Date.parse(iso as string);
const seconds = (value: number) => `${(value / 1000).toFixed(1)} s`;

let subnet: string | undefined;
let redisDir: string | undefined;
let redis: PrivateRedis | undefined;
let admin: ReturnType<typeof createRedis> | undefined;
let api: TestApi | undefined;
const hosts: Host[] = [];
const workers: HostWorker[] = [];
let prefix: string;
let http: ReturnType<typeof client>;
let dashboard: ReturnType<typeof createDashboard>;

/** Stops what setUp started, whatever it got to; safe to call twice. */
async function tearDown(): Promise<void> {
  // The processes go before their hosts.
  await stopAll();
  for (const host of hosts.splice(0)) removeHost(host);
  if (subnet) ipQuietly('route', 'del', 'blackhole', `${subnet}.0/24`, 'metric', `${process.pid}`);
  subnet = undefined;
  await api?.close();
  api = undefined;
  admin?.disconnect();
  admin = undefined;
  await redis?.stop();
  redis = undefined;
  if (redisDir) rmSync(redisDir, { recursive: true, force: true });
  redisDir = undefined;
}

async function setUp(): Promise<void> {
  requireNetworkNamespaces();
  removeLeftovers();
  subnet = freeSubnet();
  // Longest prefix wins: an up link's /30 routes to it; a cut link's traffic falls here and is
  // dropped. Its metric names this process, for removeLeftovers.
  ip('route', 'add', 'blackhole', `${subnet}.0/24`, 'metric', `${process.pid}`);
  hosts.push(makeHost(subnet, 0));
  hosts.push(makeHost(subnet, 1));

  redisDir = mkdtempSync(join(tmpdir(), 'offload-hosts-redis-'));
  redis = await startRedisServer({ dir: redisDir });
  admin = createRedis({ url: redis.url }, 'worker');
  // Listen on each link too. Without a password Redis' protected mode refuses every address but loopback.
  await admin.config('SET', 'bind', ['127.0.0.1', ...hosts.map((h) => h.gateway)].join(' '));
  await admin.config('SET', 'protected-mode', 'no');

  prefix = testPrefix();
  api = await startApi({ redis: { url: redis.url }, prefix, registry });
  http = client(api.url);
  dashboard = createDashboard({ jobs: api.jobs, logger: pino({ level: 'silent' }), admin: null });
  const { port } = redis;
  workers.push(
    ...(await Promise.all(
      hosts.map((host) => startWorkerOn(host, `redis://${host.gateway}:${port}`, prefix)),
    )),
  );
}

beforeAll(async () => {
  try {
    await setUp();
  } catch (err) {
    await tearDown();
    throw err;
  }
}, 180_000);
afterAll(tearDown);

const fleet = (): Promise<WorkerHeartbeat[]> => (api as TestApi).jobs.readFleet();

/** The fleet page's rows, by worker id: the host it shows and whether live or gone. */
async function fleetPage(): Promise<Map<string, { host: string; live: boolean }>> {
  const page = await (await dashboard.request('/fleet')).text();
  const rows = new Map<string, { host: string; live: boolean }>();
  const row =
    /<tr class="(live-row|gone)" data-worker="([^"]+)">\s*<td>.*?<\/td>\s*<td>([^<]*)<\/td>/gs;
  for (const [, state, id, host] of page.matchAll(row)) {
    rows.set(id as string, { host: host as string, live: state === 'live-row' });
  }
  return rows;
}

/** The worker, among `among`, whose heartbeat lists `jobId` as running. */
function runningOn(jobId: string, among: HostWorker[] = workers): Promise<HostWorker> {
  return eventually(
    async () => {
      const beats = await fleet();
      return among.find((w) =>
        beats.some((b) => b.id === w.id && b.running.some((job) => job.jobId === jobId)),
      );
    },
    30_000,
    `a heartbeat listing job ${jobId} as running`,
  );
}

/** Whether `worker` logged the end of its own attempt of `jobId` (its executor finished it). */
const attemptEnded = (worker: HostWorker, jobId: string) =>
  worker
    .output()
    .split('\n')
    .some((line) => line.includes(jobId) && line.includes('job completed'));

describe('workers on separate hosts sharing one Redis over the network', () => {
  it('shows each worker under its own host on the fleet page, and runs jobs on every host', async () => {
    const rows = await fleetPage();
    for (const w of workers) expect(rows.get(w.id)).toEqual({ host: w.host.name, live: true });
    expect(new Set((await fleet()).map((beat) => beat.host))).toEqual(
      new Set(hosts.map((h) => h.name)),
    );

    const jobs = await Promise.all(
      Array.from({ length: 6 }, () => http.submit('test.host', { ms: 300 })),
    );
    const done = await Promise.all(
      jobs.map((job) => http.until(job.id, (v) => v.state === 'completed', 30_000)),
    );
    const ranOn = done.map((view) => (view.result as { host: string }).host);
    console.log(
      `hosts ${hosts.map((h) => `${h.name} at ${h.address}`).join(', ')}; 6 jobs ran on ` +
        hosts.map((h) => `${h.name} ${ranOn.filter((name) => name === h.name).length}`).join(', '),
    );
    expect(new Set(ranOn)).toEqual(new Set(hosts.map((h) => h.name)));
  });

  it('runs a cut-off host’s job on another host within the bound, and takes the host back when its link returns', async () => {
    // Both hosts idle with one executor each: whichever takes the job is the one to lose.
    const job = await http.submit('test.host', { ms: LONG_JOB_MS });
    const lost = await runningOn(job.id);
    const other = workers.find((w) => w !== lost) as HostWorker;
    const firstStart = ms((await http.until(job.id, (v) => v.state === 'running')).startedAt);

    ip('link', 'set', lost.host.link, 'down');
    const cutAt = Date.now();
    const rerun = await http.until(
      job.id,
      (v) => v.state === 'running' && ms(v.startedAt) > firstStart,
      40_000,
    );
    const movedMs = ms(rerun.startedAt) - cutAt;
    console.log(
      `link of ${lost.host.name} cut: its job ran again on another host ${seconds(movedMs)} ` +
        `after the cut (bound ${seconds(LOST_JOB_BOUND_MS)})`,
    );
    expect(movedMs).toBeLessThan(LOST_JOB_BOUND_MS);
    expect(await runningOn(job.id, [other])).toBe(other);

    // The fleet page shows the lost host as gone once its heartbeat expires.
    await eventually(
      async () => (await fleetPage()).get(lost.id)?.live === false,
      HEARTBEAT_TTL_MS + 10_000,
      `the fleet page to show ${lost.host.name} as gone`,
    );
    const goneMs = Date.now() - cutAt;

    ip('link', 'set', lost.host.link, 'up');
    const restoredAt = Date.now();
    await eventually(
      async () => {
        const beat = (await fleet()).find((b) => b.id === lost.id);
        return beat && ms(beat.lastSeenAt) >= restoredAt;
      },
      90_000,
      `a heartbeat from ${lost.host.name} written after its link returned`,
    );
    const rejoinMs = Date.now() - restoredAt;
    expect((await fleetPage()).get(lost.id)).toEqual({ host: lost.host.name, live: true });
    // The same process all along: never restarted.
    expect(lost.child.exitCode).toBeNull();

    // Its executor never stopped: its own attempt of the job ends late, and must change nothing.
    await eventually(
      async () => attemptEnded(lost, job.id),
      LONG_JOB_MS + 30_000,
      `${lost.host.name}'s own attempt of job ${job.id} to end`,
    );
    const afterLateEnd = await http.get(job.id);
    // Still the other host's attempt: running, or completed with its result.
    expect(afterLateEnd).toMatchObject(
      afterLateEnd.state === 'running'
        ? { startedAt: rerun.startedAt }
        : { state: 'completed', startedAt: rerun.startedAt, result: { host: other.host.name } },
    );

    // Back in the fleet, it takes new jobs (while the other host still runs the long one, it is
    // the only free executor).
    const lateEndAt = Date.now();
    let tries = 0;
    for (;;) {
      tries++;
      const probe = await http.submit('test.host', { ms: 200 });
      const { result } = await http.until(probe.id, (v) => v.state === 'completed', 30_000);
      if ((result as { host: string }).host === lost.host.name) break;
      if (Date.now() - lateEndAt > 60_000) {
        throw new Error(`${lost.host.name} took none of ${tries} new jobs in 60 s`);
      }
    }
    const newJobMs = Date.now() - lateEndAt;

    const done = await http.until(job.id, (v) => v.state === 'completed', LONG_JOB_MS + 30_000);
    expect(done.result).toEqual({ host: other.host.name });
    expect(done.startedAt).toBe(rerun.startedAt);
    expect(ms(done.finishedAt) - ms(done.startedAt)).toBeGreaterThanOrEqual(LONG_JOB_MS);
    expect((await completions(admin as RedisClient, prefix)).get(job.id)).toBe(1);
    console.log(
      `${lost.host.name} shown gone ${seconds(goneMs)} after the cut; link restored: a heartbeat again ` +
        `after ${seconds(rejoinMs)}, without a restart; its late attempt ended and changed nothing ` +
        `(the job completed once, with ${other.host.name}'s result); it ran a new job ` +
        `${seconds(newJobMs)} after that (${tries} submitted)`,
    );
  });
});

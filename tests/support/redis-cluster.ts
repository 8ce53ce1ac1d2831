import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { RedisTarget } from '@offload/queue';
import { freePort, type PrivateRedis, startRedisServer } from '../../scripts/redis-server.ts';

const run = promisify(execFile);

/**
 * How long a primary may be unreachable before the cluster fails it over, ms.
 * Redis' default is 15 s; a test waits for its failovers.
 */
export const NODE_TIMEOUT_MS = 2000;

export interface ClusterNode {
  port: number;
  dir: string;
  server: PrivateRedis | null;
}

/**
 * A real Redis Cluster on this machine: `primaries` redis-server processes in
 * cluster mode, each with `replicas` replicas, joined by `redis-cli --cluster
 * create`, each with its own port, bus port and data directory (AOF on).
 */
export interface LocalCluster {
  readonly target: RedisTarget;
  readonly nodes: ClusterNode[];
  /** `CLUSTER NODES`-style view: port → role and slots served, read from a live node. */
  topology(): Promise<{ port: number; role: 'master' | 'slave'; slots: number; failed: boolean }[]>;
  /** The port of the primary serving `key`, read from a live node. */
  primaryOf(key: string): Promise<number>;
  /**
   * Moves one slot to the primary on `to` the way redis-cli --cluster reshard
   * does (IMPORTING/MIGRATING, MIGRATE keys `batch` at a time, SETSLOT NODE),
   * pausing `pauseMs` between batches so clients meet ASK and TRYAGAIN answers
   * for a while. Answers how many keys moved.
   */
  moveSlot(
    slot: number,
    to: number,
    options?: { batch?: number; pauseMs?: number },
  ): Promise<number>;
  /** SIGKILL one node: no shutdown, no final fsync. */
  kill(port: number): Promise<void>;
  /** Starts a killed node again on its port and data directory; it rejoins as its nodes.conf says. */
  restart(port: number): Promise<void>;
  /** Resolves once every live node says `cluster_state:ok` and every slot is served. */
  waitHealthy(timeoutMs?: number): Promise<void>;
  cli(port: number, ...args: string[]): Promise<string>;
  stop(): Promise<void>;
}

export async function startLocalCluster({
  primaries = 3,
  replicas = 1,
} = {}): Promise<LocalCluster> {
  const root = mkdtempSync(join(tmpdir(), 'offload-cluster-'));
  const count = primaries * (1 + replicas);
  const nodes: ClusterNode[] = [];
  for (let i = 0; i < count; i++) {
    nodes.push({ port: await freePort(), dir: join(root, `node-${i}`), server: null });
  }
  const busPorts = new Map<number, number>();
  for (const node of nodes) busPorts.set(node.port, await freePort());

  const start = async (node: ClusterNode) => {
    node.server = await startRedisServer({
      dir: node.dir,
      port: node.port,
      appendOnly: true,
      extraArgs: [
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        'nodes.conf',
        '--cluster-port',
        String(busPorts.get(node.port)),
        '--cluster-node-timeout',
        String(NODE_TIMEOUT_MS),
        // A replica whose primary died long ago may still be promoted: the test restarts nodes late.
        '--cluster-replica-validity-factor',
        '0',
      ],
    });
  };
  await Promise.all(nodes.map(start));

  const cli = async (port: number, ...args: string[]) =>
    (await run('redis-cli', ['-p', String(port), ...args], { maxBuffer: 16 << 20 })).stdout;
  const live = () =>
    nodes.filter(
      (node) => node.server?.process.exitCode === null && node.server.process.signalCode === null,
    );

  const cluster: LocalCluster = {
    target: { clusterNodes: nodes.map(({ port }) => ({ host: '127.0.0.1', port })) },
    nodes,
    cli,
    async topology() {
      const [any] = live();
      if (!any) throw new Error('no live node');
      return (await cli(any.port, 'cluster', 'nodes'))
        .trim()
        .split('\n')
        .map((line) => {
          const [, address = '', flags = '', , , , , , ...slots] = line.split(' ');
          return {
            port: Number(address.split('@')[0]?.split(':')[1]),
            role: flags.includes('master') ? ('master' as const) : ('slave' as const),
            failed: flags.includes('fail'),
            slots: slots.reduce((sum, range) => {
              const [from, to = from] = range.split('-').map(Number);
              return sum + ((to as number) - (from as number) + 1);
            }, 0),
          };
        });
    },
    async primaryOf(key) {
      const [any] = live();
      if (!any) throw new Error('no live node');
      const slot = Number((await cli(any.port, 'cluster', 'keyslot', key)).trim());
      for (const line of (await cli(any.port, 'cluster', 'nodes')).trim().split('\n')) {
        const [, address = '', flags = '', , , , , , ...ranges] = line.split(' ');
        if (!flags.includes('master') || flags.includes('fail')) continue;
        for (const range of ranges) {
          const [from, to = from] = range.split('-').map(Number);
          if (slot >= (from as number) && slot <= (to as number)) {
            return Number(address.split('@')[0]?.split(':')[1]);
          }
        }
      }
      throw new Error(`no primary serves slot ${slot}`);
    },
    async moveSlot(slot, to, { batch = 10, pauseMs = 20 } = {}) {
      const owner = async () => {
        const [any] = live();
        if (!any) throw new Error('no live node');
        const ranges = (await cli(any.port, 'cluster', 'nodes')).trim().split('\n');
        for (const line of ranges) {
          const [id = '', address = '', flags = '', , , , , , ...slots] = line.split(' ');
          if (!flags.includes('master')) continue;
          const serves = slots.some((range) => {
            const [from, last = from] = range.split('-').map(Number);
            return slot >= (from as number) && slot <= (last as number);
          });
          if (serves) return { id, port: Number(address.split('@')[0]?.split(':')[1]) };
        }
        throw new Error(`no primary serves slot ${slot}`);
      };
      const from = await owner();
      const toId = (await cli(to, 'cluster', 'myid')).trim();
      await cli(to, 'cluster', 'setslot', String(slot), 'importing', from.id);
      await cli(from.port, 'cluster', 'setslot', String(slot), 'migrating', toId);
      let moved = 0;
      for (;;) {
        const keys = (await cli(from.port, 'cluster', 'getkeysinslot', String(slot), String(batch)))
          .split('\n')
          .filter(Boolean);
        if (keys.length === 0) break;
        await cli(from.port, 'migrate', '127.0.0.1', String(to), '', '0', '5000', 'KEYS', ...keys);
        moved += keys.length;
        await new Promise((r) => setTimeout(r, pauseMs));
      }
      for (const node of live()) {
        await cli(node.port, 'cluster', 'setslot', String(slot), 'node', toId);
      }
      return moved;
    },
    async kill(port) {
      const child = nodes.find((node) => node.port === port)?.server?.process;
      if (!child || child.exitCode !== null || child.signalCode !== null) return;
      await new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      });
    },
    async restart(port) {
      const node = nodes.find((n) => n.port === port);
      if (!node) throw new Error(`no node on ${port}`);
      await start(node);
    },
    async waitHealthy(timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const states = await Promise.all(
          live().map((node) => cli(node.port, 'cluster', 'info').catch(() => '')),
        );
        const ok = states.every(
          (info) => /cluster_state:ok/.test(info) && /cluster_slots_ok:16384/.test(info),
        );
        if (ok && states.length > 0) return;
        if (Date.now() > deadline) {
          throw new Error(`cluster not healthy within ${timeoutMs} ms:\n${states.join('\n')}`);
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async stop() {
      await Promise.all(nodes.map((node) => node.server?.stop()));
      rmSync(root, { recursive: true, force: true });
    },
  };

  try {
    await run('redis-cli', [
      '--cluster',
      'create',
      ...nodes.map(({ port }) => `127.0.0.1:${port}`),
      '--cluster-replicas',
      String(replicas),
      '--cluster-yes',
    ]);
    await cluster.waitHealthy();
    // Every replica attached and in sync with its primary, so a failover has one to promote.
    const deadline = Date.now() + 30_000;
    for (;;) {
      const infos = await Promise.all(nodes.map((node) => cli(node.port, 'info', 'replication')));
      const replicasUp = infos.filter(
        (info) => /role:slave/.test(info) && /master_link_status:up/.test(info),
      ).length;
      if (replicasUp === primaries * replicas) break;
      if (Date.now() > deadline) throw new Error(`replicas did not sync:\n${infos.join('\n')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return cluster;
}

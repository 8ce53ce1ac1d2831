import type { TestProject } from 'vitest/node';
import { startLocalCluster } from './redis-cluster.ts';
import './redis-url.ts';

/**
 * The `cluster` test project's Redis: a local Redis Cluster of 3 primaries and
 * 3 replicas (redis-server in cluster mode, joined by redis-cli --cluster
 * create), stopped when the run ends. The tests it runs take it as they take
 * one server (testRedis()), so the same tests prove Offload on both.
 */
export default async function setup(project: TestProject) {
  const cluster = await startLocalCluster({ primaries: 3, replicas: 1 });
  project.provide('redisTarget', cluster.target);
  return () => cluster.stop();
}

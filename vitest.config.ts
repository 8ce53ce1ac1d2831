import { defineConfig } from 'vitest/config';

const redis = ['tests/support/global-redis.ts'];

/**
 * The core, API, worker-fault and `npm start` tests again, against a local Redis Cluster
 * of 3 primaries and 3 replicas (tests/support/global-cluster.ts), with the
 * cluster's own tests: slots, spread over shards, failover.
 */
const CLUSTER_TESTS = [
  'packages/queue/test/**/*.test.ts',
  'apps/api/test/**/*.test.ts',
  'tests/e2e/jobs.test.ts',
  'tests/e2e/binary-results.test.ts',
  'tests/e2e/workflows.test.ts',
  'tests/e2e/webhooks.test.ts',
  'tests/e2e/schedules.test.ts',
  'tests/faults/workers.test.ts',
  'tests/repo/npm-start.test.ts',
  'tests/cluster/**/*.test.ts',
];

export default defineConfig({
  test: {
    // Tests spawn real processes and a real Redis; keep failures readable.
    reporters: ['default'],
    projects: [
      { test: { name: 'tasks', include: ['packages/tasks/test/**/*.test.ts'] } },
      { test: { name: 'contract', include: ['packages/contract/test/**/*.test.ts'] } },
      {
        test: {
          name: 'queue',
          include: ['packages/queue/test/**/*.test.ts'],
          globalSetup: redis,
        },
      },
      {
        test: {
          name: 'worker',
          include: ['apps/worker/test/**/*.test.ts'],
          globalSetup: redis,
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'api',
          include: ['apps/api/test/**/*.test.ts'],
          globalSetup: redis,
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'abuse',
          include: ['tests/abuse/**/*.test.ts'],
          globalSetup: redis,
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['tests/e2e/**/*.test.ts', 'tests/repo/**/*.test.ts'],
          globalSetup: redis,
          testTimeout: 60_000,
          hookTimeout: 60_000,
          // These start worker processes that use every core; one file at a time.
          fileParallelism: false,
        },
      },
      {
        test: {
          name: 'client',
          include: ['packages/client/test/**/*.test.ts'],
          globalSetup: redis,
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      {
        test: {
          name: 'dashboard',
          include: ['apps/dashboard/test/**/*.test.ts'],
          globalSetup: redis,
          testTimeout: 60_000,
          hookTimeout: 60_000,
          fileParallelism: false,
        },
      },
      {
        test: {
          name: 'faults',
          include: ['tests/faults/**/*.test.ts'],
          globalSetup: redis,
          testTimeout: 120_000,
          hookTimeout: 60_000,
          // Each scenario kills processes or Redis and measures recovery: one file at a time.
          fileParallelism: false,
        },
      },
      {
        test: {
          name: 'cluster',
          include: CLUSTER_TESTS,
          globalSetup: ['tests/support/global-cluster.ts'],
          testTimeout: 120_000,
          hookTimeout: 60_000,
          // One cluster for the run, and worker processes that use every core: one file at a time.
          fileParallelism: false,
        },
      },
      {
        test: {
          name: 'python',
          include: ['sdk/python/tests/**/*.test.ts'],
          globalSetup: redis,
          testTimeout: 120_000,
          hookTimeout: 60_000,
        },
      },
      {
        test: {
          name: 'examples',
          include: ['examples/*/test/**/*.test.ts'],
          globalSetup: redis,
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
});

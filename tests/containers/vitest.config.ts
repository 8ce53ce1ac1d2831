import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

/**
 * `npm run test:containers`: builds Offload's image once (global-image.ts) and
 * runs the compose stacks with Docker or podman. Kept out of `npm test`, whose
 * machines need no container engine; the root vitest.config.ts does not include
 * this folder. .ci/run runs it after `npm test`, bounded in time.
 */
export default defineConfig({
  test: {
    name: 'containers',
    root: fileURLToPath(new URL('../..', import.meta.url)),
    include: ['tests/containers/**/*.test.ts'],
    globalSetup: ['tests/containers/global-image.ts'],
    // One stack at a time: on 2 cores two stacks starting together slow each other,
    // and podman-docker-compose stops its API service whenever a command ends with no
    // container running, which could cut off the other file's command in flight.
    fileParallelism: false,
    reporters: ['default'],
    // The task project's image build: seconds from cache, about a minute cold.
    hookTimeout: 300_000,
    testTimeout: 120_000,
  },
});

import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

/**
 * `npm run test:containers`: builds the images and runs the compose stack with
 * Docker or podman. Kept out of `npm test`, whose machines need no container
 * engine; the root vitest.config.ts does not include this folder.
 */
export default defineConfig({
  test: {
    name: 'containers',
    root: fileURLToPath(new URL('../..', import.meta.url)),
    include: ['tests/containers/**/*.test.ts'],
    reporters: ['default'],
    // Image builds: about a minute with a warm npm cache, several on a cold machine.
    hookTimeout: 900_000,
    testTimeout: 120_000,
  },
});

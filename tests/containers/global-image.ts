import type { TestProject } from 'vitest/node';
import { composeOf, engine, sh, timed } from './engine.ts';

/**
 * Offload's image, built once for every containers test file, the way
 * `docker compose up --build` builds it (compose's build of the api service,
 * tagged OFFLOAD_IMAGE), under a name of this run's own. Removed at the end;
 * the engine's build cache keeps its layers for the next run.
 */
export default async function buildOffloadImage(project: TestProject) {
  const image = `offload:containers-test-${process.pid}`;
  const env = { ...process.env, COMPOSE_PROJECT_NAME: `offloadimage${process.pid}` };
  const compose = composeOf(['docker-compose.yml'], () => ({ ...env, OFFLOAD_IMAGE: image }));
  await timed('the image, built once (compose build)', () => compose('build', 'api'));
  project.provide('offloadImage', image);
  return async () => {
    await sh([engine, 'rmi', '-f', image]).catch((err) => console.error(String(err)));
  };
}

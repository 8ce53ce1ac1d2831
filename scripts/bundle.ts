import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';

/**
 * Bundles an app for production (`npm run build` in apps/api or apps/worker):
 * the workspace packages, which export TypeScript source, go inside the
 * bundle; npm dependencies stay external and load from node_modules.
 * Usage, from the app's folder: node --import tsx ../../scripts/bundle.ts src/index.ts [src/other.ts …]
 */
const app = process.cwd();
const external = new Set<string>();
for (const dir of ['.', '../../packages/queue', '../../packages/tasks']) {
  const manifest = JSON.parse(readFileSync(join(app, dir, 'package.json'), 'utf8')) as {
    dependencies?: Record<string, string>;
  };
  for (const name of Object.keys(manifest.dependencies ?? {})) {
    if (!name.startsWith('@offload/')) external.add(name);
  }
}

await build({
  entryPoints: process.argv.slice(2),
  outdir: join(app, 'dist'),
  bundle: true,
  platform: 'node',
  target: 'node22',
  format: 'esm',
  sourcemap: true,
  external: [...external],
  logLevel: 'info',
});

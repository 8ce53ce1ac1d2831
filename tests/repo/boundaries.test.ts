import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../support/processes.ts';

/**
 * DESIGN.md §1: the API never imports task code; it knows tasks only from the
 * catalog workers publish, so adding a task never restarts it. The dashboard
 * reads the same catalog.
 */
function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.ts'))
    .map((file) => join(dir, file));
}

describe('the API and the dashboard', () => {
  for (const app of ['apps/api', 'apps/dashboard']) {
    it(`${app} neither depends on nor imports @offload/tasks`, () => {
      const manifest = JSON.parse(readFileSync(join(ROOT, app, 'package.json'), 'utf8'));
      expect(Object.keys({ ...manifest.dependencies, ...manifest.devDependencies })).not.toContain(
        '@offload/tasks',
      );
      const importers = sources(join(app, 'src')).filter((file) =>
        /from '@offload\/tasks/.test(readFileSync(join(ROOT, file), 'utf8')),
      );
      expect(importers).toEqual([]);
    });
  }
});

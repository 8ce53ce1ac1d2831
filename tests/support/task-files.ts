import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Task files a team would write, in a temporary folder outside this
 * repository with no package.json and no node_modules: they import
 * `@offload/tasks` and `zod` and get Offload's own copies.
 */
export class TaskFolder {
  readonly path = mkdtempSync(join(tmpdir(), 'offload-task-files-'));

  /** Writes a file into the folder and returns its absolute path. */
  write(name: string, source: string): string {
    const path = join(this.path, name);
    writeFileSync(path, source);
    return path;
  }

  /** `text.reverse` on queue `default`, the README's first task. */
  reverse(): string {
    return this.write(
      'reverse.ts',
      `import { defineTask } from '@offload/tasks';
import { z } from 'zod';
export const reverse = defineTask({
  name: 'text.reverse', description: 'Reverses a text.', queue: 'default',
  input: z.strictObject({ text: z.string().max(1000) }), output: z.object({ reversed: z.string() }),
  defaults: { timeoutMs: 10_000, attempts: 1, backoff: { type: 'fixed', delay: 1000 } },
  run: ({ text }) => ({ reversed: [...text].reverse().join('') }),
});
`,
    );
  }

  /**
   * One version of `text.shout` on queue `shout`: version 2 also accepts
   * `times`, so its schema and fingerprint differ; the result says which ran.
   */
  shout(version: 1 | 2): string {
    const times = version === 2;
    return this.write(
      `shout-v${version}.ts`,
      `import { defineTask } from '@offload/tasks';
import { z } from 'zod';
export const shout = defineTask({
  name: 'text.shout', description: 'Shouts a text (version ${version}).', queue: 'shout',
  input: z.strictObject({ text: z.string()${times ? ', times: z.number().int().min(1).max(5).optional()' : ''} }),
  output: z.object({ shouted: z.string(), version: z.number() }),
  defaults: { timeoutMs: 10_000, attempts: 1, backoff: { type: 'fixed', delay: 100 } },
  run: (input) => ({ shouted: input.text.toUpperCase()${times ? '.repeat(input.times ?? 1)' : ''}, version: ${version} }),
});
`,
    );
  }

  remove(): void {
    rmSync(this.path, { recursive: true, force: true });
  }
}

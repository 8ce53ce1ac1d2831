import { defineTask, type TaskContext } from '@offload/tasks';
import { z } from 'zod';

/**
 * A task file as a user writes one: no package.json beside it and no install,
 * only @offload/tasks and zod, which the worker provides. The type annotations
 * are there on purpose: the worker's image loads this file by stripping them.
 */
export const wordCount = defineTask({
  name: 'text.word-count',
  description: 'Counts the words of a text and names the most frequent one.',
  queue: 'text',
  input: z.strictObject({ text: z.string().max(1_000_000) }),
  output: z.object({ words: z.number().int(), top: z.string().nullable() }),
  defaults: { timeoutMs: 10_000, attempts: 1, backoff: { type: 'fixed', delay: 0 } },
  run({ text }, ctx: TaskContext) {
    const counts: Map<string, number> = new Map();
    for (const word of text.toLowerCase().match(/[\p{L}\p{N}']+/gu) ?? []) {
      counts.set(word, (counts.get(word) ?? 0) + 1);
    }
    let top: string | null = null;
    for (const [word, count] of counts) if (count > (counts.get(top ?? '') ?? 0)) top = word;
    ctx.log(`${counts.size} distinct words`);
    return { words: [...counts.values()].reduce((sum, n) => sum + n, 0), top };
  },
});

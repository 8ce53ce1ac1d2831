import { defineTask } from '@offload/tasks';
import { z } from 'zod';
import {
  MARKDOWN_QUEUE,
  renderedMarkdown,
  renderMarkdown,
  renderOptionFields,
} from '../render-markdown.ts';

export const markdownRender = defineTask({
  name: 'markdown.render',
  description:
    'Renders one Markdown document to HTML (GitHub Flavored by default) and lists its headings with their anchor ids. The HTML is not sanitized.',
  queue: MARKDOWN_QUEUE,
  input: z.strictObject({
    /**
     * The document, at most 5 000 000 UTF-16 code units (5 MB of ASCII, ~1.3 s of prose
     * on one core). The API's body limit (API_MAX_BODY_BYTES, 1 MiB by default) is
     * usually the tighter bound.
     */
    markdown: z.string().max(5_000_000),
    ...renderOptionFields,
  }),
  output: renderedMarkdown,
  // Ordinary prose renders at ~4 MB/s, but marked is quadratic in nesting depth: a
  // list nested 2000 levels deep (4 MB) takes ~50 s. The timeout, not the size
  // bound, is what stops such an input from holding an executor. Rendering is
  // deterministic, so an input that failed once fails again: one attempt.
  defaults: { timeoutMs: 60_000, attempts: 1, backoff: { type: 'fixed', delay: 1000 } },
  // No progress: marked lexes the whole document in one synchronous call, which
  // is nearly all of the time (parsing the tokens is the last ~10%).
  run({ markdown, ...options }) {
    return renderMarkdown(markdown, options);
  },
});

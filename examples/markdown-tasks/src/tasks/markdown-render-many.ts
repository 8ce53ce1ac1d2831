import { setImmediate as nextTurn } from 'node:timers/promises';
import { defineTask } from '@offload/tasks';
import { z } from 'zod';
import {
  MARKDOWN_QUEUE,
  renderedMarkdown,
  renderMarkdown,
  renderOptionFields,
} from '../render-markdown.ts';

/** Documents per job. At both limits a job is 20 M characters: ~3 s of prose on one core. */
const MAX_DOCUMENTS = 200;
/** Characters (UTF-16 code units) per document; larger ones go to markdown.render alone. */
const MAX_DOCUMENT_LENGTH = 100_000;

const renderedDocument = z.object({
  /** The `id` the document was submitted with. */
  id: z.string(),
  ...renderedMarkdown.shape,
});
type RenderedDocument = z.infer<typeof renderedDocument>;

/**
 * Many documents in one job: a page of a few KB renders in about a millisecond,
 * less than a job's own round trips through Redis, so a site or a changelog is
 * cheaper as one job than as one job per page.
 */
export const markdownRenderMany = defineTask({
  name: 'markdown.render-many',
  description:
    'Renders up to 200 Markdown documents to HTML in one job, in the order given, each with its headings; reports progress after each document. The HTML is not sanitized.',
  queue: MARKDOWN_QUEUE,
  input: z.strictObject({
    documents: z
      .array(
        z.strictObject({
          /** The caller's name for the document (a path, a slug); echoed in the result. */
          id: z.string().min(1).max(500),
          markdown: z.string().max(MAX_DOCUMENT_LENGTH),
        }),
      )
      .min(1)
      .max(MAX_DOCUMENTS),
    ...renderOptionFields,
  }),
  output: z.object({
    /** One per input document, in the same order. */
    documents: z.array(renderedDocument),
  }),
  // A full batch of lists nested as deep as 100 000 characters allow (~300 levels)
  // takes ~50 s, as marked is quadratic in nesting depth; 120 s leaves room for a
  // busy host. One attempt, as rendering is deterministic.
  defaults: { timeoutMs: 120_000, attempts: 1, backoff: { type: 'fixed', delay: 1000 } },
  async run({ documents, ...options }, ctx) {
    // Work is about linear in length; +1 per document so that empty ones count too.
    const total = documents.reduce((sum, d) => sum + d.markdown.length + 1, 0);
    let done = 0;
    const rendered: RenderedDocument[] = [];
    for (const [index, { id, markdown }] of documents.entries()) {
      rendered.push({ id, ...renderMarkdown(markdown, options) });
      done += markdown.length + 1;
      ctx.progress({
        percent: Math.floor((done / total) * 100),
        rendered: index + 1,
        documents: documents.length,
      });
      // An event-loop turn between documents lets a cancel or timeout arrive as an
      // abort. A full-size page of prose takes ~16 ms, well within the 200 ms an
      // executor waits before it is killed, so a canceled job leaves it warm.
      await nextTurn();
      ctx.signal.throwIfAborted();
    }
    return { documents: rendered };
  },
});

import { Marked } from 'marked';
import { z } from 'zod';
import { createHeadingSlugger } from './heading-slugger.ts';

/**
 * The queue these tasks go to. Their own, not the built-ins' `default`: a fleet
 * can then give Markdown its own workers (WORKER_QUEUES=markdown) and scale them
 * on this queue's depth alone.
 */
export const MARKDOWN_QUEUE = 'markdown';

/** Rendering options every task of this project takes, each with its default. */
export const renderOptionFields = {
  /** GitHub Flavored Markdown: tables, strikethrough, task lists, bare URLs as links. */
  gfm: z.boolean().default(true),
  /** A single line break becomes `<br>`, as in GitHub comments; only with `gfm`. */
  breaks: z.boolean().default(false),
  /** Each heading carries `id="<slug>"`, the slug listed in `headings`, so `#slug` links reach it. */
  headingIds: z.boolean().default(true),
};
const renderOptions = z.object(renderOptionFields);
export type RenderOptions = z.output<typeof renderOptions>;

export const heading = z.object({
  /** 1 for `#`, 6 for `######`. */
  depth: z.number().int().min(1).max(6),
  /** The heading's text without Markdown syntax; HTML entities and inline HTML kept as written. */
  text: z.string(),
  /** Its anchor id, unique within the document. */
  slug: z.string(),
});
export type Heading = z.infer<typeof heading>;

export const renderedMarkdown = z.object({
  /**
   * The document as HTML. Not sanitized: raw HTML and `javascript:` links in the
   * Markdown pass through, so untrusted input needs a sanitizer before display.
   */
  html: z.string(),
  /** Every heading, in document order, nested ones (in lists, quotes) included. */
  headings: z.array(heading),
});
export type RenderedMarkdown = z.infer<typeof renderedMarkdown>;

/**
 * Renders one document. A Marked instance per document: the heading renderer
 * closes over this document's slugs, so two documents never share suffixes.
 */
export function renderMarkdown(markdown: string, options: RenderOptions): RenderedMarkdown {
  const slugger = createHeadingSlugger();
  const headings: Heading[] = [];
  const marked = new Marked({
    gfm: options.gfm,
    breaks: options.breaks,
    renderer: {
      heading({ tokens, depth }) {
        const text = this.parser.parseInline(tokens, this.parser.textRenderer);
        const slug = slugger.slug(text);
        headings.push({ depth, text, slug });
        const id = options.headingIds ? ` id="${slug}"` : '';
        return `<h${depth}${id}>${this.parser.parseInline(tokens)}</h${depth}>\n`;
      },
    },
  });
  // lexer + parser rather than parse(): the same work without hooks or async
  // extensions, so the result is typed string rather than string | Promise<string>.
  const html = marked.parser(marked.lexer(markdown));
  return { html, headings };
}

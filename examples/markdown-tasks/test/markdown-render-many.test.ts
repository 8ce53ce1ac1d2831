import type { TaskProgress } from '@offload/tasks';
import { describe, expect, it } from 'vitest';
import { markdownRenderMany } from '../src/tasks/markdown-render-many.ts';
import { recordingContext } from './support.ts';

const percentOf = (value: TaskProgress) => (typeof value === 'number' ? value : value.percent);

describe('markdown.render-many', () => {
  it('renders every document in the order given, each with its own heading ids', async () => {
    const { context } = recordingContext();
    const input = markdownRenderMany.input.parse({
      documents: [
        { id: 'docs/intro.md', markdown: '# Intro\n\nHello *world*.' },
        { id: 'docs/empty.md', markdown: '' },
        { id: 'docs/again.md', markdown: '# Intro\n# Intro' },
      ],
    });
    expect(await markdownRenderMany.run(input, context)).toEqual({
      documents: [
        {
          id: 'docs/intro.md',
          html: '<h1 id="intro">Intro</h1>\n<p>Hello <em>world</em>.</p>\n',
          headings: [{ depth: 1, text: 'Intro', slug: 'intro' }],
        },
        { id: 'docs/empty.md', html: '', headings: [] },
        {
          // Suffixes count within one document: this one's first "Intro" is plain `intro`.
          id: 'docs/again.md',
          html: '<h1 id="intro">Intro</h1>\n<h1 id="intro-1">Intro</h1>\n',
          headings: [
            { depth: 1, text: 'Intro', slug: 'intro' },
            { depth: 1, text: 'Intro', slug: 'intro-1' },
          ],
        },
      ],
    });
  });

  it('reports progress after each document, weighted by length, ending at 100', async () => {
    const { context, progress } = recordingContext();
    const documents = [1_000, 9_000, 0].map((length, i) => ({
      id: `page-${i}`,
      markdown: 'x'.repeat(length),
    }));
    await markdownRenderMany.run(markdownRenderMany.input.parse({ documents }), context);
    expect(progress).toEqual([
      // (1 000 + 1) of 10 003 characters, each document counting one more.
      { percent: 10, rendered: 1, documents: 3 },
      { percent: 99, rendered: 2, documents: 3 },
      { percent: 100, rendered: 3, documents: 3 },
    ]);
    expect(progress.map(percentOf)).toEqual([...progress.map(percentOf)].sort((a, b) => a - b));
  });

  it('stops between documents once its signal aborts', async () => {
    const { context, progress, abort } = recordingContext();
    const documents = Array.from({ length: 50 }, (_, i) => ({ id: `${i}`, markdown: '# Page' }));
    const run = markdownRenderMany.run(markdownRenderMany.input.parse({ documents }), context);
    abort('canceled');
    await expect(run).rejects.toThrow('canceled');
    // The first document was already rendering when the abort came; no later one started.
    expect(progress).toHaveLength(1);
  });

  it('refuses input outside its schema', () => {
    const page = { id: 'a', markdown: '# A' };
    const refused = [
      { documents: [] },
      { documents: Array.from({ length: 201 }, () => page) },
      { documents: [{ markdown: '# A' }] },
      { documents: [{ id: '', markdown: '# A' }] },
      { documents: [{ id: 'a', markdown: 'x'.repeat(100_001) }] },
      { documents: [{ ...page, extra: 1 }] },
      { documents: [page], breaks: 1 },
      { documents: [page], extra: true },
    ];
    for (const input of refused) {
      expect(
        markdownRenderMany.input.safeParse(input).success,
        JSON.stringify(input).slice(0, 60),
      ).toBe(false);
    }
    const full = Array.from({ length: 200 }, (_, i) => ({
      id: `${i}`,
      markdown: 'x'.repeat(100_000),
    }));
    expect(markdownRenderMany.input.safeParse({ documents: full }).success).toBe(true);
  });
});

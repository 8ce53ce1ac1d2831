import { describe, expect, it } from 'vitest';
import { markdownRender } from '../src/tasks/markdown-render.ts';
import { recordingContext } from './support.ts';

/** What the API and the worker do before `run`: parse, which fills in the defaults. */
function render(input: unknown) {
  return markdownRender.run(markdownRender.input.parse(input), recordingContext().context);
}

const README = [
  '# Getting started',
  '',
  'Install with `npm install`, then *run* it:',
  '',
  '## Getting started',
  '',
  '| task | queue |',
  '| --- | --- |',
  '| markdown.render | markdown |',
  '',
  '- [x] ~~old~~ done',
  '',
  "## Tom & Jerry's <b> API!",
].join('\n');

describe('markdown.render', () => {
  it('renders GitHub Flavored Markdown with an anchor id on every heading', async () => {
    const { html, headings } = await render({ markdown: README });
    expect(html).toBe(
      [
        '<h1 id="getting-started">Getting started</h1>',
        '<p>Install with <code>npm install</code>, then <em>run</em> it:</p>',
        '<h2 id="getting-started-1">Getting started</h2>',
        '<table>',
        '<thead>',
        '<tr>',
        '<th>task</th>',
        '<th>queue</th>',
        '</tr>',
        '</thead>',
        '<tbody><tr>',
        '<td>markdown.render</td>',
        '<td>markdown</td>',
        '</tr>',
        '</tbody></table>',
        '<ul>',
        '<li><input checked="" disabled="" type="checkbox"> <del>old</del> done</li>',
        '</ul>',
        // Raw HTML passes through unsanitized; text is escaped.
        '<h2 id="tom--jerrys-b-api">Tom &amp; Jerry&#39;s <b> API!</h2>',
        '',
      ].join('\n'),
    );
    expect(headings).toEqual([
      { depth: 1, text: 'Getting started', slug: 'getting-started' },
      { depth: 2, text: 'Getting started', slug: 'getting-started-1' },
      { depth: 2, text: "Tom & Jerry's <b> API!", slug: 'tom--jerrys-b-api' },
    ]);
  });

  it('makes ids the way GitHub does, unique within the document', async () => {
    const { headings } = await render({
      markdown: '> # Quoted *title*\n\nSetext\n---\n\n# Setup\n# Setup\n# Setup 1\n# 🎉\n# ✨',
    });
    expect(headings.map((h) => [h.depth, h.slug])).toEqual([
      [1, 'quoted-title'],
      [2, 'setext'],
      [1, 'setup'],
      [1, 'setup-1'],
      // Its own base is taken by the second "Setup", so it gets a suffix too.
      [1, 'setup-1-1'],
      [1, 'section'],
      [1, 'section-1'],
    ]);
  });

  it('follows gfm, breaks and headingIds when asked', async () => {
    const plain = await render({
      markdown: '# Title\n\n| a |\n| - |\n| 1 |\n\nwww.example.com ~~x~~',
      gfm: false,
      headingIds: false,
    });
    expect(plain.html).toBe(
      '<h1>Title</h1>\n<p>| a |\n| - |\n| 1 |</p>\n<p>www.example.com ~~x~~</p>\n',
    );
    expect(plain.headings).toEqual([{ depth: 1, text: 'Title', slug: 'title' }]);

    expect((await render({ markdown: 'one\ntwo' })).html).toBe('<p>one\ntwo</p>\n');
    expect((await render({ markdown: 'one\ntwo', breaks: true })).html).toBe('<p>one<br>two</p>\n');
  });

  it('gives an empty document an empty page', async () => {
    expect(await render({ markdown: '' })).toEqual({ html: '', headings: [] });
  });

  it('answers what its output schema describes', async () => {
    const result = await render({ markdown: README });
    expect(markdownRender.output.parse(result)).toEqual(result);
  });

  it('refuses input outside its schema', () => {
    const refused = [
      {},
      { markdown: 42 },
      { markdown: 'x', extra: true },
      { markdown: 'x', gfm: 'yes' },
      { markdown: 'x'.repeat(5_000_001) },
    ];
    for (const input of refused) {
      expect(
        markdownRender.input.safeParse(input).success,
        JSON.stringify(input).slice(0, 60),
      ).toBe(false);
    }
    expect(markdownRender.input.safeParse({ markdown: 'x'.repeat(5_000_000) }).success).toBe(true);
  });
});

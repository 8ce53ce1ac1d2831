import { OffloadClient } from '@offload/client';
import { describe, expect, it } from 'vitest';

/** The client a team writes against its own tasks: typed by the very module OFFLOAD_TASKS names. */
type MarkdownTasks = typeof import('../src/index.ts');

/** A network double that answers every request with one queued job and records what was sent. */
function recordingFetch() {
  const sent: { url: string; body: unknown }[] = [];
  const fetch: typeof globalThis.fetch = async (url, init) => {
    sent.push({ url: String(url), body: JSON.parse(String(init?.body)) });
    const job = { id: 'AAAAAAAAAAAAAAAAAAAAAA', state: 'queued', result: null };
    return new Response(JSON.stringify(job), {
      status: 202,
      headers: { 'content-type': 'application/json' },
    });
  };
  return { fetch, sent };
}

describe('a client typed by the task module', () => {
  it('sends the task name and the input as written, defaults left to the server', async () => {
    const { fetch, sent } = recordingFetch();
    const offload = new OffloadClient<MarkdownTasks>({ baseUrl: 'http://api.test', fetch });
    await offload.submit('markdown.render', { markdown: '# Hi' });
    expect(sent).toEqual([
      {
        url: 'http://api.test/v1/jobs',
        body: { task: 'markdown.render', input: { markdown: '# Hi' } },
      },
    ]);
  });
});

// Compile-time checks, run by the example's `typecheck` (and so by the root `npm run typecheck`).
async function typeChecks(baseUrl: string) {
  const offload = new OffloadClient<typeof import('../src/index.ts')>({ baseUrl });

  // Options with defaults may be left out; the result has the output schema's type.
  const job = await offload.wait(await offload.submit('markdown.render', { markdown: '# Hi' }));
  const html: string | undefined = job.result?.html;
  const firstSlug: string | undefined = job.result?.headings[0]?.slug;
  const many = await offload.submit('markdown.render-many', {
    documents: [{ id: 'a.md', markdown: '# A' }],
    breaks: true,
  });
  const ids: string[] | undefined = many.result?.documents.map((d) => d.id);

  // @ts-expect-error markdown must be a string
  await offload.submit('markdown.render', { markdown: 42 });
  // @ts-expect-error unknown fields are refused, as the schema refuses them
  await offload.submit('markdown.render', { markdown: '# Hi', sanitize: true });
  // @ts-expect-error every document needs an id
  await offload.submit('markdown.render-many', { documents: [{ markdown: '# A' }] });
  // @ts-expect-error this catalog has no such task, built-ins included
  await offload.submit('primes.count', { below: 10 });
  // @ts-expect-error a misspelt task name
  await offload.submit('markdown.rendr', { markdown: '# Hi' });
  // @ts-expect-error a render result has html and headings, not text
  job.result?.text;
  // @ts-expect-error a heading's depth is a number
  const depth: string | undefined = job.result?.headings[0]?.depth;

  return { html, firstSlug, ids, depth };
}
void typeChecks;

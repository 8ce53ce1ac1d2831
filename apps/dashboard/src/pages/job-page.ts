import type { JobView } from '@offload/contract';
import type { BlobRecord, DeliveryRecord } from '@offload/queue';
import { html } from 'hono/html';
import { type Html, layout, QUEUES_PATH } from './layout.ts';
import { webhookDeliveries } from './webhook-page.ts';

/** Where the dashboard shows one job, and serves its result alone. */
export const jobPath = (id: string) => `/jobs/${encodeURIComponent(id)}`;
export const jobResultPath = (id: string) => `${jobPath(id)}/result`;

/**
 * Media types a browser only ever draws: the dashboard shows these inline
 * (and previews them on the job page). Any other binary result is served as
 * a download: an HTML or SVG result made by a tenant's task must never run
 * as a page of the dashboard, which holds an operator's credentials.
 */
const DRAWN_INLINE = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp', 'image/avif']);
export function showsInline(contentType: string): boolean {
  return DRAWN_INLINE.has(contentType.split(';')[0]?.trim().toLowerCase() ?? '');
}

/** Results longer than this many characters of JSON are cut on the page, bytes. */
const SHOWN_JSON_CHARS = 20_000;

export function jobPage(options: {
  view: JobView;
  blob: BlobRecord | null;
  /** Its webhook's delivery, when it was submitted with one. */
  delivery?: DeliveryRecord | null;
  open: boolean;
}): Html {
  const { view, blob } = options;
  const json = blob ? '' : JSON.stringify(view.result, null, 2);
  const result = blob
    ? html`<p>Binary result: <a id="result-link" href="${jobResultPath(view.id)}">${blob.contentType}, ${blob.size} bytes</a>${showsInline(blob.contentType) ? '' : ' (downloads)'}</p>
${showsInline(blob.contentType) ? html`<img id="result-preview" src="${jobResultPath(view.id)}" alt="The result of job ${view.id}" style="max-width:100%;background:#fff">` : ''}`
    : view.state === 'completed'
      ? html`<pre id="result-json">${json.length > SHOWN_JSON_CHARS ? `${json.slice(0, SHOWN_JSON_CHARS)}…` : json}</pre>
<p><a id="result-link" href="${jobResultPath(view.id)}">The result alone (JSON)</a></p>`
      : html`<p class="muted">No result: the job is ${view.state}.</p>`;
  const body = html`<h1>Job <code>${view.id}</code></h1>
<table id="job">
<tr><th>Task</th><td>${view.task}</td></tr>
<tr><th>State</th><td>${view.state}${view.error ? html` · <code>${view.error.code}</code> ${view.error.message}` : ''}</td></tr>
<tr><th>Progress</th><td>${view.progress}%</td></tr>
<tr><th>Attempts</th><td>${view.attempts.made} of ${view.attempts.max}</td></tr>
<tr><th>Created</th><td>${view.createdAt}</td></tr>
<tr><th>Started</th><td>${view.startedAt ?? '–'}</td></tr>
<tr><th>Finished</th><td>${view.finishedAt ?? '–'}</td></tr>
</table>
<h2>Result</h2>
${result}
${options.delivery ? webhookDeliveries(options.delivery) : ''}
<p class="muted">Its queue, logs and data: <a href="${QUEUES_PATH}">Queues</a>.</p>`;
  return layout({ title: `Job ${view.id}`, path: '', open: options.open, body });
}

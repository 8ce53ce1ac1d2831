import type { DeliveryRecord } from '@offload/queue';
import { html } from 'hono/html';
import { duration, type Html, layout, stateTag, WORKFLOWS_PATH } from './layout.ts';
import { workflowPath } from './workflow-page.ts';

/** The page of a job's (or a workflow's) webhook deliveries: `/webhooks/{id}`. */
export const WEBHOOKS_PATH = '/webhooks';
export const webhookPath = (id: string) => `${WEBHOOKS_PATH}/${encodeURIComponent(id)}`;

const iso = (ms: number) => new Date(ms).toISOString();

/**
 * Every attempt to deliver a job's (or a workflow's) webhook: when, the
 * receiver's status, how long it took, why it failed. Refreshed while the
 * delivery is still pending.
 */
export function webhookPage(options: { delivery: DeliveryRecord; open: boolean }): Html {
  const { delivery } = options;
  const pending = delivery.state === 'pending';
  const shown = delivery.log.length;
  const first = delivery.attempts - shown + 1;
  const body = html`<h1>Webhook of ${delivery.kind} <code>${delivery.id}</code> <span class="state ${delivery.state === 'delivered' ? 'completed' : delivery.state === 'failed' ? 'failed' : 'running'}">${delivery.state}</span></h1>
${delivery.kind === 'workflow' ? html`<p><a href="${workflowPath(delivery.id)}">← Workflow</a></p>` : ''}
<table id="webhook" class="facts">
<tr><th>URL</th><td><code>${delivery.url}</code></td></tr>
<tr><th>Tenant</th><td>${delivery.tenant}</td></tr>
${delivery.queue ? html`<tr><th>Queue</th><td>${delivery.queue}</td></tr>` : ''}
<tr><th>Attempts</th><td>${delivery.attempts}</td></tr>
</table>
<h2>Attempts</h2>
${
  shown === 0
    ? html`<p id="no-attempts" class="muted">None yet: the ${delivery.kind} has not ended.</p>`
    : html`<p class="muted">${shown < delivery.attempts ? `The latest ${shown} of ${delivery.attempts}` : `${shown}`} attempt${shown === 1 ? '' : 's'}, oldest first${pending ? ' · refreshed every 5 s' : ''}.</p>
<table id="attempts">
<thead><tr><th>#</th><th>At</th><th>Status</th><th>Took</th><th>Error</th></tr></thead>
<tbody>
${delivery.log.map(
  (attempt, i) => html`<tr>
<td>${first + i}</td>
<td>${iso(attempt.at)}</td>
<td>${attempt.status === null ? html`<span class="muted">no answer</span>` : attempt.status >= 200 && attempt.status < 300 ? html`${stateTag('completed')} ${attempt.status}` : html`${stateTag('failed')} ${attempt.status}`}</td>
<td>${duration(attempt.ms)}</td>
<td>${attempt.error ?? ''}</td>
</tr>`,
)}
</tbody>
</table>`
}`;
  return layout({
    title: `Webhook of ${delivery.id}`,
    path: delivery.kind === 'workflow' ? WORKFLOWS_PATH : '',
    open: options.open,
    ...(pending && { refreshSeconds: 5 }),
    body,
  });
}

/** The answer to an id without a webhook delivery: no webhook asked, or past its retention. */
export function webhookMissingPage(options: { id: string; open: boolean }): Html {
  const body = html`<h1>No webhook</h1>
<p id="missing">No job or workflow with the id <code>${options.id}</code> has a webhook delivery: none was asked for, or it ended longer ago than its record is kept.</p>`;
  return layout({ title: 'No webhook', path: '', open: options.open, body });
}

import type { DeliveryRecord } from '@offload/queue';
import { html } from 'hono/html';
import { jobPath } from './job-page.ts';
import { duration, type Html, layout, stateTag, WORKFLOWS_PATH } from './layout.ts';
import { workflowPath } from './workflow-page.ts';

/** The page of a workflow's (or a job's) webhook deliveries: `/webhooks/{id}`; a job's page shows its own. */
export const WEBHOOKS_PATH = '/webhooks';
export const webhookPath = (id: string) => `${WEBHOOKS_PATH}/${encodeURIComponent(id)}`;

const iso = (ms: number) => new Date(ms).toISOString();

/**
 * A webhook's delivery: where it goes, its state, and every attempt (when, the
 * receiver's status, how long it took, why it failed), oldest first. On a
 * job's page and on a workflow's webhook page.
 */
export function webhookDeliveries(delivery: DeliveryRecord): Html {
  const shown = delivery.log.length;
  const first = delivery.attempts - shown + 1;
  const badge =
    delivery.state === 'delivered'
      ? 'completed'
      : delivery.state === 'failed'
        ? 'failed'
        : 'running';
  return html`<h2>Webhook <span id="webhook-state" class="state ${badge}">${delivery.state}</span></h2>
<table id="webhook" class="facts">
<tr><th>URL</th><td><code>${delivery.url}</code></td></tr>
<tr><th>Tenant</th><td>${delivery.tenant}</td></tr>
<tr><th>Attempts</th><td>${delivery.attempts}</td></tr>
</table>
${
  shown === 0
    ? html`<p id="no-attempts" class="muted">No attempt yet: the ${delivery.kind} has not ended.</p>`
    : html`<p class="muted">${shown < delivery.attempts ? `The latest ${shown} of ${delivery.attempts}` : `${shown}`} attempt${shown === 1 ? '' : 's'}, oldest first.</p>
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
}

/** A webhook's deliveries on a page of their own, refreshed while pending. */
export function webhookPage(options: { delivery: DeliveryRecord; open: boolean }): Html {
  const { delivery } = options;
  const owner = delivery.kind === 'workflow' ? workflowPath(delivery.id) : jobPath(delivery.id);
  const body = html`<h1>Webhook of ${delivery.kind} <a href="${owner}"><code>${delivery.id}</code></a></h1>
${webhookDeliveries(delivery)}`;
  return layout({
    title: `Webhook of ${delivery.id}`,
    path: delivery.kind === 'workflow' ? WORKFLOWS_PATH : '',
    open: options.open,
    ...(delivery.state === 'pending' && { refreshSeconds: 5 }),
    body,
  });
}

/** The answer to an id without a webhook delivery: no webhook asked, or past its retention. */
export function webhookMissingPage(options: { id: string; open: boolean }): Html {
  const body = html`<h1>No webhook</h1>
<p id="missing">No job or workflow with the id <code>${options.id}</code> has a webhook delivery: none was asked for, or it ended longer ago than its record is kept.</p>`;
  return layout({ title: 'No webhook', path: '', open: options.open, body });
}

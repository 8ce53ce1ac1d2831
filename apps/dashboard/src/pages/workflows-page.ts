import type { RunningWorkflow } from '@offload/queue';
import { html } from 'hono/html';
import { duration, type Html, layout, WORKFLOWS_PATH } from './layout.ts';
import { workflowPath } from './workflow-page.ts';

export function workflowsPage(options: {
  /** Workflows not yet ended (at most the page's limit), newest first; `total` counts them all. */
  workflows: RunningWorkflow[];
  total: number;
  now: number;
  open: boolean;
  /** A workflow just canceled from this page. */
  canceled?: string;
}): Html {
  const { workflows, now } = options;
  const body = html`<h1>Workflows</h1>
${options.canceled ? html`<div class="note" role="status">Canceled workflow <code>${options.canceled}</code>: its unfinished steps were stopped.</div>` : ''}
<form method="get" action="${WORKFLOWS_PATH}" role="search" class="lookup"><label>Any workflow, running or ended, by its id: <input name="id" required size="30"></label> <button type="submit" class="go">Open</button></form>
<p class="muted">${options.total} workflow${options.total === 1 ? '' : 's'} running, every tenant's${options.total > workflows.length ? ` (${workflows.length} of them shown)` : ''} · refreshed every 5 s. Each step is a job: see it in Queues.</p>
<table id="workflows">
<thead><tr><th>Workflow</th><th>Tenant</th><th>Started</th><th>Steps</th><th></th></tr></thead>
<tbody>
${workflows.length === 0 ? html`<tr><td colspan="5" class="muted">No workflow running. Start one with <code>POST /v1/workflows</code>.</td></tr>` : ''}
${workflows.map(
  (workflow) => html`<tr data-workflow="${workflow.id}">
<td><a href="${workflowPath(workflow.id)}"><code>${workflow.id}</code></a></td>
<td>${workflow.tenant}</td>
<td>${new Date(workflow.createdAt).toISOString()}<br><span class="muted">${duration(Math.max(0, now - workflow.createdAt))} ago</span></td>
<td>${workflow.steps ?? '?'} steps · ${workflow.started} started · ${workflow.finished} finished${workflow.canceling ? html` <span class="flag">canceling</span>` : ''}</td>
<td class="fit"><form method="post" action="${WORKFLOWS_PATH}/${encodeURIComponent(workflow.id)}/cancel"><button type="submit" aria-label="Cancel workflow ${workflow.id}">Cancel</button></form></td>
</tr>`,
)}
</tbody>
</table>`;
  return layout({
    title: 'Workflows',
    path: WORKFLOWS_PATH,
    open: options.open,
    refreshSeconds: 5,
    body,
  });
}

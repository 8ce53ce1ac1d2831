import type { StoredSchedule } from '@offload/queue';
import { html } from 'hono/html';
import { duration, type Html, jobLink, layout, SCHEDULES_PATH } from './layout.ts';

/** Latest jobs shown per schedule; the API's recentJobs holds more. */
const JOBS_SHOWN = 5;

export function schedulesPage(options: {
  /** The first schedules to fire; `total` counts them all. */
  schedules: StoredSchedule[];
  total: number;
  /** Task name → its queue, from the catalog, for the job links. */
  queues: ReadonlyMap<string, string>;
  now: number;
  open: boolean;
  /** A schedule just deleted from this page. */
  deleted?: string;
}): Html {
  const { schedules, now } = options;
  const body = html`<h1>Schedules</h1>
${options.deleted ? html`<div class="note" role="status">Deleted schedule <code>${options.deleted}</code>; it fires no more.</div>` : ''}
<p class="muted">${options.total} schedule${options.total === 1 ? '' : 's'}, every tenant's, by next firing${options.total > schedules.length ? ` (the first ${schedules.length} shown)` : ''} · refreshed every 5 s.</p>
<table id="schedules">
<thead><tr><th>Schedule</th><th>Tenant</th><th>Task</th><th>When</th><th>Next firing</th><th>Latest jobs</th><th></th></tr></thead>
<tbody>
${schedules.length === 0 ? html`<tr><td colspan="7" class="muted">No schedule. Create one with <code>POST /v1/schedules</code>.</td></tr>` : ''}
${schedules.map(({ record, nextRunAt, recentJobs }) => {
  const { timing } = record;
  const queue = options.queues.get(record.task);
  return html`<tr data-schedule="${record.id}">
<td><code>${record.id}</code></td>
<td>${record.tenant}</td>
<td>${record.task}</td>
<td>${'everyMs' in timing ? html`every ${duration(timing.everyMs)}` : html`<code>${timing.cron}</code> ${timing.timezone}`}</td>
<td>${new Date(nextRunAt).toISOString()}<br><span class="muted">in ${duration(Math.max(0, nextRunAt - now))}</span></td>
<td>${
    recentJobs.length === 0
      ? html`<span class="muted">none yet</span>`
      : html`${recentJobs.slice(0, JOBS_SHOWN).map((id) => html`${jobLink(queue, id)}<br>`)}`
  }${record.lastError ? html`<div class="flag no-worker">${record.lastError}</div>` : ''}</td>
<td class="fit"><form method="post" action="${SCHEDULES_PATH}/${encodeURIComponent(record.id)}/delete"><button type="submit" aria-label="Delete schedule ${record.id}">Delete</button></form></td>
</tr>`;
})}
</tbody>
</table>`;
  return layout({
    title: 'Schedules',
    path: SCHEDULES_PATH,
    open: options.open,
    refreshSeconds: 5,
    body,
  });
}

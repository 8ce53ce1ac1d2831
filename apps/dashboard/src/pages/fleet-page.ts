import type { WorkerHeartbeat } from '@offload/queue';
import { html } from 'hono/html';
import { jobPath } from './job-page.ts';
import { duration, FLEET_PATH, type Html, layout, QUEUES_PATH } from './layout.ts';

export interface FleetRow {
  beat: WorkerHeartbeat;
  /** false: its heartbeat expired or it said goodbye. */
  live: boolean;
}

export function fleetPage(options: {
  rows: FleetRow[];
  now: number;
  open: boolean;
  /** A job just canceled from this page. */
  canceled?: { id: string; task: string };
}): Html {
  const { rows, now } = options;
  const live = rows.filter((row) => row.live);
  const executors = live.reduce((sum, row) => sum + row.beat.concurrency, 0);
  const busy = live.reduce((sum, row) => sum + row.beat.running.length, 0);
  const body = html`<h1>Fleet</h1>
${options.canceled ? html`<div class="note" role="status">Canceled job <code>${options.canceled.id}</code> (${options.canceled.task}). Its executor is stopped within a second.</div>` : ''}
<p class="muted">${live.length} live worker${live.length === 1 ? '' : 's'} · ${busy} of ${executors} executors busy · refreshed every 2 s; a worker whose heartbeat stops shows as gone within 15 s.</p>
<table id="fleet">
<thead><tr><th>Worker</th><th>Host</th><th>PID</th><th>Queues</th><th>Busy</th><th>Running jobs</th><th>Jobs done</th><th>Uptime</th><th>Last seen</th></tr></thead>
<tbody>
${rows.length === 0 ? html`<tr><td colspan="9" class="muted">No worker has sent a heartbeat. Start one with <code>npm run worker</code>.</td></tr>` : ''}
${rows.map(({ beat, live }) => {
  const seen = Date.parse(beat.lastSeenAt);
  return html`<tr class="${live ? 'live-row' : 'gone'}" data-worker="${beat.id}">
<td><span class="tag ${live ? 'live' : 'dead'}">${live ? 'live' : 'gone'}</span></td>
<td>${beat.host}</td><td>${beat.pid}</td><td>${beat.queues.join(', ')}</td>
<td>${live ? `${beat.running.length} / ${beat.concurrency}` : '–'}</td>
<td>${
    live && beat.running.length > 0
      ? html`<table class="jobs">${beat.running.map(
          (
            job,
          ) => html`<tr data-job="${job.jobId}"><td><a href="${QUEUES_PATH}">${job.task}</a><br><a href="${jobPath(job.jobId)}"><code>${job.jobId}</code></a></td><td>${duration(now - Date.parse(job.startedAt))}</td>
<td><form method="post" action="/jobs/${job.jobId}/cancel"><button type="submit" aria-label="Cancel job ${job.jobId}">Cancel</button></form></td></tr>`,
        )}</table>`
      : html`<span class="muted">idle</span>`
  }</td>
<td>${beat.jobsDone}</td>
<td>${duration(seen - Date.parse(beat.startedAt))}</td>
<td>${duration(Math.max(0, now - seen))} ago</td>
</tr>`;
})}
</tbody>
</table>`;
  return layout({ title: 'Fleet', path: FLEET_PATH, open: options.open, refreshSeconds: 2, body });
}

import { isFinal, type JobView } from '@offload/contract';
import { stepOrder } from '@offload/contract/workflow';
import type { WorkflowDetail } from '@offload/queue';
import { html } from 'hono/html';
import { duration, type Html, jobLink, layout, stateTag, WORKFLOWS_PATH } from './layout.ts';

/** A workflow's page: `${WORKFLOWS_PATH}/{id}`. */
export const workflowPath = (id: string) => `${WORKFLOWS_PATH}/${encodeURIComponent(id)}`;

/** The timeline's size, px: step ids on the left, bars on a shared time axis. */
const WIDTH = 900;
const LABEL_W = 170;
const RIGHT_PAD = 70;
const ROW_H = 22;
const AXIS_H = 22;

/** Bar colors by state, as the throughput charts color the same outcomes. */
const BAR_COLORS: Record<string, string> = {
  running: '#5b8def',
  completed: '#2e9d4a',
  failed: '#d23c32',
  canceled: '#8a8f9c',
};

const ms = (iso: string | null) => (iso === null ? null : Date.parse(iso));

/** When a step stopped taking time: its end, or now while it runs; null when it never started or ended. */
function endOf(step: JobView, now: number): number | null {
  if (step.finishedAt !== null) return Date.parse(step.finishedAt);
  return step.startedAt !== null ? now : null;
}

/**
 * The chain of steps that decided when the workflow ended (or will end): the
 * step that ends last, then, each time, the step it needs that ended last.
 */
function criticalPath(
  steps: Record<string, JobView>,
  needs: Record<string, string[]>,
  now: number,
): Set<string> {
  const latest = (names: readonly string[]) => {
    let best: string | null = null;
    let bestEnd = Number.NEGATIVE_INFINITY;
    for (const name of names) {
      const step = steps[name];
      const end = step ? endOf(step, now) : null;
      if (end !== null && end > bestEnd) [best, bestEnd] = [name, end];
    }
    return best;
  };
  const path = new Set<string>();
  for (let step = latest(Object.keys(steps)); step !== null; step = latest(needs[step] ?? [])) {
    path.add(step);
  }
  return path;
}

/** A step that has a job to show under Queues: it was added, and did not end before it ran. */
const hasJob = (step: JobView) =>
  step.state !== 'blocked' && (step.startedAt !== null || !isFinal(step.state));

function timeline(options: {
  order: string[];
  steps: Record<string, JobView>;
  critical: ReadonlySet<string>;
  start: number;
  /** The workflow's end, or now while it runs. */
  until: number;
  now: number;
}): Html {
  const { order, steps, critical, start, now } = options;
  const ends = order.map((name) => endOf(steps[name] as JobView, now) ?? start);
  const span = Math.max(1, options.until - start, ...ends.map((end) => end - start));
  const plotW = WIDTH - LABEL_W - RIGHT_PAD;
  const x = (at: number) => LABEL_W + (Math.max(0, at - start) / span) * plotW;
  const height = AXIS_H + order.length * ROW_H + 4;
  const bar = (from: number, to: number) => ({
    x: x(from).toFixed(1),
    width: Math.max(2, x(to) - x(from)).toFixed(1),
  });
  return html`<figure class="chart"><svg id="timeline" role="img" aria-label="Timeline of the steps" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" xmlns="http://www.w3.org/2000/svg" font-size="11" font-family="system-ui,sans-serif">
${[0, 0.5, 1].map(
  (f) =>
    html`<line x1="${x(start + span * f)}" x2="${x(start + span * f)}" y1="${AXIS_H - 6}" y2="${height}" stroke="#e4e7ec"/><text x="${x(start + span * f)}" y="${AXIS_H - 10}" text-anchor="middle" fill="#6b7385">+${duration(span * f)}</text>`,
)}
${order.map((name, i) => {
  const step = steps[name] as JobView;
  const y = AXIS_H + i * ROW_H;
  const created = Date.parse(step.createdAt);
  const started = ms(step.startedAt);
  const end = endOf(step, now);
  const color = BAR_COLORS[step.state] ?? '#8a8f9c';
  const onPath = critical.has(name);
  // Waiting in its queue: from its job's creation until it started (or until now).
  const waitedUntil = started ?? (!isFinal(step.state) && step.state !== 'blocked' ? now : null);
  const waited = waitedUntil === null ? null : bar(created, waitedUntil);
  const ran = started !== null && end !== null ? bar(started, end) : null;
  // Ended without running (canceled or failed before it could start): a mark where it ended.
  const endedAt = started === null ? ms(step.finishedAt) : null;
  const mark = endedAt === null ? null : bar(endedAt, endedAt);
  return html`<g class="lane${onPath ? ' critical' : ''}" data-step="${name}">
<text x="${LABEL_W - 8}" y="${y + 15}" text-anchor="end"${onPath ? html` font-weight="700"` : ''}>${name}</text>
${waited ? html`<rect class="waited" x="${waited.x}" y="${y + 7}" width="${waited.width}" height="8" fill="#d5dbe5"><title>${name}: queued ${duration((waitedUntil as number) - created)}</title></rect>` : ''}
${ran ? html`<rect class="ran" x="${ran.x}" y="${y + 4}" width="${ran.width}" height="14" rx="2" fill="${color}"${onPath ? html` stroke="#1d2330" stroke-width="1.5"` : ''}><title>${name}: ${step.state}, ${duration((end as number) - (started as number))}</title></rect>` : ''}
${mark ? html`<rect class="ended" x="${mark.x}" y="${y + 4}" width="${mark.width}" height="14" fill="${color}"><title>${name}: ${step.state} without running</title></rect>` : ''}
</g>`;
})}
</svg><figcaption class="muted">Light: waiting in its queue · solid: running, colored by outcome · outlined and bold: the critical path (the chain of steps, each the last to end of those the next needs, that held up the workflow's end).</figcaption></figure>`;
}

export function workflowPage(options: {
  workflow: WorkflowDetail;
  /** Task name → its queue, from the catalog, for the job links. */
  queues: ReadonlyMap<string, string>;
  now: number;
  open: boolean;
}): Html {
  const { workflow, now } = options;
  const { view, needs } = workflow;
  const start = Date.parse(view.createdAt);
  const ordered = stepOrder(needs);
  // A stored workflow's needs were checked for cycles when it was submitted.
  const order = 'order' in ordered ? ordered.order : Object.keys(view.steps);
  const critical = criticalPath(view.steps, needs, now);
  const finished = ms(view.finishedAt);
  const running = view.state === 'running';
  const body = html`<h1>Workflow <code>${view.id}</code> ${stateTag(view.state)}</h1>
<p><a href="${WORKFLOWS_PATH}">← Workflows</a></p>
<table id="workflow" class="facts">
<tr><th>Tenant</th><td>${workflow.tenant}</td></tr>
<tr><th>Created</th><td>${view.createdAt}</td></tr>
<tr><th>Finished</th><td>${finished === null ? html`<span class="muted">not yet · ${duration(Math.max(0, now - start))} so far</span>` : html`${view.finishedAt} <span class="muted">after ${duration(finished - start)}</span>`}</td></tr>
<tr><th>On step failure</th><td><code>${workflow.onStepFailure}</code></td></tr>
${view.webhook ? html`<tr><th>Webhook</th><td><a id="webhook-link" href="/webhooks/${encodeURIComponent(view.id)}">${view.webhook.state}</a> <span class="muted">${view.webhook.attempts} attempt${view.webhook.attempts === 1 ? '' : 's'}</span></td></tr>` : ''}
</table>
${running ? html`<form method="post" action="${workflowPath(view.id)}/cancel"><input type="hidden" name="back" value="workflow"><button type="submit" aria-label="Cancel workflow ${view.id}">Cancel workflow</button></form>` : ''}
<h2>Steps</h2>
<p class="muted">${order.length} step${order.length === 1 ? '' : 's'}, each after the steps it needs · started: from the workflow's creation · marked on the left: the critical path${running ? ' · refreshed every 5 s' : ''}.</p>
<table id="steps">
<thead><tr><th>Step</th><th>Task</th><th>State</th><th>Needs</th><th>Attempts</th><th>Started</th><th>Duration</th><th>Error</th><th>Job</th></tr></thead>
<tbody>
${order.map((name) => {
  const step = view.steps[name] as JobView;
  const started = ms(step.startedAt);
  const ended = ms(step.finishedAt);
  return html`<tr data-step="${name}"${critical.has(name) ? html` class="critical"` : ''}>
<td><code>${name}</code></td>
<td>${step.task}</td>
<td>${stateTag(step.state)}</td>
<td>${(needs[name] ?? []).length === 0 ? html`<span class="muted">–</span>` : (needs[name] ?? []).map((need, i) => html`${i > 0 ? ', ' : ''}<code>${need}</code>`)}</td>
<td>${step.attempts.made} / ${step.attempts.max}</td>
<td>${started === null ? html`<span class="muted">–</span>` : `+${duration(started - start)}`}</td>
<td>${started === null ? html`<span class="muted">–</span>` : ended === null ? html`${duration(now - started)} <span class="muted">so far</span>` : duration(ended - started)}</td>
<td>${step.error ? html`<code>${step.error.code}</code> ${step.error.message}` : ''}</td>
<td>${hasJob(step) ? jobLink(options.queues.get(step.task), step.id) : html`<span class="muted">none</span>`}${step.webhook ? html` · <a href="/jobs/${encodeURIComponent(step.id)}">webhook</a>` : ''}</td>
</tr>`;
})}
</tbody>
</table>
<h2>Timeline</h2>
${timeline({ order, steps: view.steps, critical, start, until: finished ?? now, now })}`;
  return layout({
    title: `Workflow ${view.id}`,
    path: WORKFLOWS_PATH,
    open: options.open,
    ...(running && { refreshSeconds: 5 }),
    body,
  });
}

/** The answer to a workflow id with no record: never created, or past its retention. */
export function workflowMissingPage(options: { id: string; open: boolean }): Html {
  const body = html`<h1>No such workflow</h1>
<p id="missing">No workflow has the id <code>${options.id}</code>: it never existed, or it ended longer ago than its record is kept.</p>
<p><a href="${WORKFLOWS_PATH}">← Workflows</a></p>`;
  return layout({ title: 'No such workflow', path: WORKFLOWS_PATH, open: options.open, body });
}

import type { History, HistorySeries } from '@offload/queue';
import { html } from 'hono/html';
import { lineChart } from './chart.ts';
import { duration, type Html, layout, THROUGHPUT_PATH } from './layout.ts';

/** Spans the page offers, hours. */
export const HISTORY_SPANS = [1, 3, 6] as const;

const clock = (ms: number) => new Date(ms).toISOString().slice(11, 16);
const rate = (v: number) => (v >= 10 || v === 0 ? String(Math.round(v)) : v.toFixed(1));

function seriesCharts(series: HistorySeries, stepMinutes: number): Html {
  const { points } = series;
  const first = points[0]?.at ?? 0;
  const last = (points.at(-1)?.at ?? 0) + stepMinutes * 60_000;
  const xLabels: [string, string] = [`${clock(first)} UTC`, clock(last)];
  const name = series.task ?? `queue ${series.queue} (every task)`;
  return html`<section data-series="${series.queue}/${series.task ?? '*'}">
<h2>${name}${series.task ? html` <span class="muted">on queue ${series.queue}</span>` : ''}</h2>
<div class="charts">
${lineChart({
  title: 'Finished per minute',
  xLabels,
  format: rate,
  lines: [
    { label: 'completed', color: '#2e9d4a', values: points.map((p) => p.completedPerMinute) },
    { label: 'failed', color: '#d23c32', values: points.map((p) => p.failedPerMinute) },
    { label: 'canceled', color: '#8a8f9c', values: points.map((p) => p.canceledPerMinute) },
  ],
})}
${lineChart({
  title: 'Wait and run time',
  xLabels,
  format: duration,
  lines: [
    { label: 'wait p50', color: '#8fb3f5', values: points.map((p) => p.waitP50Ms) },
    { label: 'wait p95', color: '#2f5fc4', values: points.map((p) => p.waitP95Ms) },
    { label: 'run p50', color: '#f3b36b', values: points.map((p) => p.runP50Ms) },
    { label: 'run p95', color: '#c96a0c', values: points.map((p) => p.runP95Ms) },
  ],
})}
</div></section>`;
}

export function throughputPage(options: { history: History; hours: number; open: boolean }): Html {
  const { history, hours } = options;
  const body = html`<h1>Throughput and latency</h1>
<p>${HISTORY_SPANS.map((span) =>
    span === hours
      ? html`<b>last ${span} h</b> `
      : html`<a href="${THROUGHPUT_PATH}?hours=${span}">last ${span} h</a> `,
  )}<span class="muted">· one point per ${history.stepMinutes} min · wait: from queued to started · run: from started to finished · kept 6 h in Redis, written by the workers</span></p>
${history.series.length === 0 ? html`<p class="muted" id="no-history">No job finished in the last ${hours} h.</p>` : history.series.map((series) => seriesCharts(series, history.stepMinutes))}`;
  return layout({ title: 'Throughput', path: THROUGHPUT_PATH, open: options.open, body });
}

import type { JobState } from '@offload/contract';
import { html } from 'hono/html';
import type { HtmlEscapedString } from 'hono/utils/html';

export type Html = HtmlEscapedString | Promise<HtmlEscapedString>;

/** Where the dashboard's pages live; bull-board serves its own UI under QUEUES_PATH. */
export const QUEUES_PATH = '/queues';
export const TASKS_PATH = '/tasks';
export const FLEET_PATH = '/fleet';
export const THROUGHPUT_PATH = '/throughput';
export const SCHEDULES_PATH = '/schedules';
export const WORKFLOWS_PATH = '/workflows';

const NAV = [
  { href: QUEUES_PATH, label: 'Queues' },
  { href: TASKS_PATH, label: 'Tasks' },
  { href: FLEET_PATH, label: 'Fleet' },
  { href: THROUGHPUT_PATH, label: 'Throughput' },
  { href: SCHEDULES_PATH, label: 'Schedules' },
  { href: WORKFLOWS_PATH, label: 'Workflows' },
];

// Inline and small: the dashboard loads nothing from other origins.
const STYLE = `
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1d2330;background:#f5f6f8}
header{background:#1d2330;color:#fff;padding:10px 24px;display:flex;gap:24px;align-items:center}
header b{font-size:16px}header a{color:#c9d2e3;text-decoration:none}header a.on{color:#fff;border-bottom:2px solid #5b8def}
main{padding:16px 24px}h1{font-size:20px;margin:4px 0 12px}h2{font-size:16px;margin:20px 0 8px}
table{border-collapse:collapse;background:#fff;width:100%;box-shadow:0 1px 2px #0001}
th,td{text-align:left;padding:6px 10px;border-bottom:1px solid #e4e7ec;vertical-align:top}th{background:#eef1f5;font-weight:600}
.gone td{color:#98a1b3}.tag{display:inline-block;padding:0 6px;border-radius:8px;font-size:12px}
.live{background:#dff5e3;color:#17692b}.dead{background:#fde2e1;color:#a02820}
.warn{background:#fff4d6;border:1px solid #f0c040;padding:8px 12px;margin-bottom:12px}
.note{background:#e6f0ff;border:1px solid #5b8def;padding:8px 12px;margin-bottom:12px}
button{cursor:pointer;border:1px solid #c33;background:#fff;color:#c33;border-radius:4px;padding:1px 8px}
button.go{border-color:#5b8def;color:#2f5fc4}.lookup{margin-bottom:12px}
table.facts{width:auto}tr.critical td:first-child{box-shadow:inset 3px 0 #1d2330}
#steps td:is(:nth-child(1),:nth-child(6),:nth-child(7)){white-space:nowrap}
.charts{display:flex;flex-wrap:wrap;gap:16px}.chart{background:#fff;padding:8px;box-shadow:0 1px 2px #0001}
.muted{color:#6b7385}code{font-size:12px}
.flag{display:inline-block;white-space:nowrap;margin:2px 0;padding:1px 8px;border-radius:8px;font-size:12px;font-weight:600;background:#fff4d6;color:#7a5200;border:1px solid #f0c040}
.flag.no-worker{background:#fde2e1;color:#a02820;border-color:#e8a09b}
tr.mismatched td{background:#fffbeb}
.versions{margin:0;padding:0;list-style:none}td.fit{width:1%;white-space:nowrap}
.state{display:inline-block;padding:0 6px;border-radius:8px;font-size:12px;font-weight:600;background:#eef1f5;color:#4a5468}
.state.running{background:#e6f0ff;color:#2f5fc4}.state.completed{background:#dff5e3;color:#17692b}
.state.failed{background:#fde2e1;color:#a02820}.state.canceled{background:#e9eaee;color:#5a6070}
`;

export function layout(options: {
  title: string;
  path: string;
  /** No admin credentials configured: say so on every page. */
  open: boolean;
  /** Reload the page this often, seconds; unset: never. */
  refreshSeconds?: number;
  body: Html;
}): Html {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${options.title} · Offload</title>
${options.refreshSeconds ? html`<meta http-equiv="refresh" content="${options.refreshSeconds}">` : ''}
<style>${STYLE}</style>
</head>
<body>
<header><b>Offload</b>${NAV.map(
    (item) =>
      html`<a href="${item.href}" class="${item.href === options.path ? 'on' : ''}">${item.label}</a>`,
  )}</header>
<main>
${options.open ? html`<div class="warn">Open dashboard: ADMIN_USER and ADMIN_PASSWORD are not set, so anyone who reaches this port can cancel and remove jobs.</div>` : ''}
${options.body}
</main>
</body>
</html>`;
}

/** A job's (or a workflow's) state as a badge; the CSS above colors each. */
export const stateTag = (state: JobState) => html`<span class="state ${state}">${state}</span>`;

/** bull-board's page of one job, when its queue is known. */
export const jobLink = (queue: string | undefined, id: string) =>
  queue
    ? html`<a href="${QUEUES_PATH}/queue/${encodeURIComponent(queue)}/${encodeURIComponent(id)}"><code>${id}</code></a>`
    : html`<code>${id}</code>`;

/** 1234 ms → "1.2 s", 75000 → "1 min 15 s". */
export function duration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const minutes = Math.floor(ms / 60_000);
  if (minutes < 60) return `${minutes} min ${Math.floor((ms % 60_000) / 1000)} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

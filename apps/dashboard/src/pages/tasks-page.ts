import type { TaskInfo, TaskVersion } from '@offload/contract';
import { html } from 'hono/html';
import { duration, type Html, layout, TASKS_PATH } from './layout.ts';

/** Heartbeats come every 5 s: refreshing faster would show nothing new. */
const REFRESH_SECONDS = 5;

const count = (n: number, noun: string) => `${n} ${noun}${n === 1 ? '' : 's'}`;

/**
 * Versions of a task that some live worker runs. More than one means workers
 * run different code for the same task name: a rolling deploy under way, or a
 * worker left behind on old code. New jobs are validated against the newest
 * live version and run only on its workers while one lives (see the worker's
 * hand-back), so a mismatch that lasts leaves the other workers idle for the task.
 */
export function liveVersions(task: TaskInfo): TaskVersion[] {
  return task.versions.filter((version) => version.workers > 0);
}

function versionItem(task: TaskInfo, version: TaskVersion, now: number): Html {
  const published = Date.parse(version.publishedAt);
  return html`<li data-fingerprint="${version.fingerprint}" class="${version.workers > 0 ? '' : 'muted'}">
<code>${version.fingerprint}</code> · ${count(version.workers, 'live worker')} · published <time datetime="${version.publishedAt}" title="${version.publishedAt}">${duration(Math.max(0, now - published))} ago</time>${version.fingerprint === task.fingerprint ? html` · <b>validates submits</b>` : ''}
</li>`;
}

function flags(task: TaskInfo): Html {
  const live = liveVersions(task).length;
  if (task.workers === 0) {
    return html`<span class="flag no-worker" title="Submits are still accepted; they wait in queue ${task.queue} until a worker serving this task starts.">no live worker</span>`;
  }
  if (live > 1) {
    return html`<span class="flag mismatch" title="Workers run different code for this task. New jobs go only to workers of the version that validates submits; when a rolling deploy ends one version stays. If this lasts, redeploy the workers on the other versions.">${live} versions live — mismatch or rolling deploy</span>`;
  }
  return html`<span class="tag live">ok</span>`;
}

export function tasksPage(options: {
  tasks: TaskInfo[];
  /** Catalog fields that did not parse; they are ignored everywhere. */
  malformed: string[];
  now: number;
  open: boolean;
}): Html {
  const { tasks, now } = options;
  const mismatched = tasks.filter((task) => liveVersions(task).length > 1).length;
  const unserved = tasks.filter((task) => task.workers === 0).length;
  const body = html`<h1>Tasks</h1>
<p class="muted">${count(tasks.length, 'task')} published by the workers · ${mismatched} with more than one version live · ${unserved} with no live worker · refreshed every ${REFRESH_SECONDS} s. A version is the fingerprint of a task's input and output schemas; submits are validated against the newest version a live worker runs.</p>
${options.malformed.length > 0 ? html`<div class="warn" id="malformed">${count(options.malformed.length, 'catalog entry')} did not parse and ${options.malformed.length === 1 ? 'is' : 'are'} ignored: ${options.malformed.map((field, i) => html`${i > 0 ? ', ' : ''}<code>${field}</code>`)}</div>` : ''}
<table id="tasks">
<thead><tr><th>Task</th><th>Queue</th><th>Live workers</th><th>Status</th><th>Validates against</th><th>Versions, newest first</th></tr></thead>
<tbody>
${tasks.length === 0 ? html`<tr><td colspan="6" class="muted">No worker has published a task. Start one with <code>npm run worker</code>; it publishes the tasks <code>OFFLOAD_TASKS</code> names.</td></tr>` : ''}
${tasks.map(
  (
    task,
  ) => html`<tr data-task="${task.name}" class="${liveVersions(task).length > 1 ? 'mismatched' : ''}">
<td><b>${task.name}</b><br><span class="muted">${task.description}</span></td>
<td class="queue fit">${task.queue}</td>
<td class="workers fit">${task.workers}</td>
<td class="status fit">${flags(task)}</td>
<td class="fingerprint fit"><code>${task.fingerprint}</code></td>
<td><ul class="versions">${task.versions.map((version) => versionItem(task, version, now))}</ul></td>
</tr>`,
)}
</tbody>
</table>`;
  return layout({
    title: 'Tasks',
    path: TASKS_PATH,
    open: options.open,
    refreshSeconds: REFRESH_SECONDS,
    body,
  });
}

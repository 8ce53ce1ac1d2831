import { createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { isFinal } from '@offload/contract';
import { OffloadClient } from './client.ts';
import { loadCliEnv } from './env.ts';
import { OfflineError, ProblemError } from './errors.ts';
import {
  type BatchJob,
  type BuiltInTasks,
  type Job,
  type JobState,
  MAX_BATCH_JOBS,
  type Schedule,
  type ScheduleRequest,
  type StepFailurePolicy,
  type SubmitOptions,
  type TaskName,
  type Workflow,
} from './types.ts';

const USAGE = `Usage: offload <command> [options]

Commands:
  tasks                          the tasks the server runs
  submit <task> <input-json>     queue a job (--wait to follow it to the end)
  submit --from <file>           queue every job of a JSON-lines file ('-': stdin), each line
                                 { "task", "input", "options"?, "idempotencyKey"? }, in
                                 batches of ${MAX_BATCH_JOBS}: each batch all or none
  status <id>                    a job as it is now
  wait <id>                      follow a job until it finishes
  cancel <id>                    cancel a job
  result <id> [-o <file>]        a completed job's result alone: JSON is printed, a
                                 binary result (an image, a file) written to <file>
                                 or, without -o, to stdout when it is not a terminal
  list                           your jobs, newest first
  schedule create <task> <input-json> --cron <expr> [--timezone <zone>]
  schedule create <task> <input-json> --every-ms <ms>
                                 submit a job on a 5-field cron expression (in an IANA
                                 time zone, default UTC) or an interval, once per firing
  schedule list                  your schedules
  schedule get <id>              a schedule, with its latest jobs
  schedule delete <id>           delete a schedule: it fires no more
  workflow run <file>            start the workflow a JSON file holds ('-': stdin):
                                 { "steps": { "<id>": { "task", "input", "needs"? } },
                                   "onStepFailure"? } (--wait to follow it to the end;
                                 --idempotency-key to make retrying it safe)
  workflow status <id>           a workflow and each step's job, as they are now
  workflow wait <id>             follow a workflow until it ends
  workflow cancel <id>           cancel every unfinished step of a workflow

Options:
  --wait                 (submit) follow the job until it finishes
  --json                 plain JSON lines, also when stdout is a terminal
  --timeout <s>          (wait, submit --wait) give up after this many seconds
  --priority <n>  --delay-ms <ms>  --attempts <n>  --timeout-ms <ms>  --idempotency-key <key>
  --webhook <url>        POST the job's end there, signed (README, Webhooks)
  --state <state>  --task <name>  --limit <n>  --cursor <c>     (list)
  --cron <expr>  --timezone <zone>  --every-ms <ms>               (schedule create)

Environment: OFFLOAD_URL (default http://127.0.0.1:3000), OFFLOAD_API_KEY.
Exit status: 0 done (a followed job or workflow completed), 1 it failed or was
canceled or the API refused, 2 bad usage, 3 the API could not be reached.`;

class UsageError extends Error {}

/**
 * The jobs of a JSON-lines file (or stdin for '-'), in batches of at most
 * MAX_BATCH_JOBS; blank lines are skipped. A line that is not a JSON object
 * with a `task` is a usage error naming its line: nothing is sent.
 */
async function readJobLines(path: string): Promise<BatchJob<BuiltInTasks>[][]> {
  const text =
    path === '-'
      ? await new Response(Readable.toWeb(process.stdin) as ReadableStream).text()
      : await readFile(path, 'utf8').catch((err: Error) => {
          throw new UsageError(`--from ${path}: ${err.message}`);
        });
  const jobs: BatchJob<BuiltInTasks>[] = [];
  for (const [i, line] of text.split('\n').entries()) {
    if (line.trim() === '') continue;
    let job: unknown;
    try {
      job = JSON.parse(line);
    } catch (err) {
      throw new UsageError(`--from ${path}, line ${i + 1}: not JSON: ${(err as Error).message}`);
    }
    if (
      typeof job !== 'object' ||
      job === null ||
      typeof (job as { task?: unknown }).task !== 'string'
    ) {
      throw new UsageError(`--from ${path}, line ${i + 1}: not an object with a "task"`);
    }
    const { idempotencyKey, options, ...rest } = job as {
      idempotencyKey?: string;
      options?: SubmitOptions;
    };
    jobs.push({
      ...rest,
      options: { ...options, ...(idempotencyKey !== undefined && { idempotencyKey }) },
    } as BatchJob<BuiltInTasks>);
  }
  if (jobs.length === 0) throw new UsageError(`--from ${path}: no job in it`);
  const batches: BatchJob<BuiltInTasks>[][] = [];
  for (let at = 0; at < jobs.length; at += MAX_BATCH_JOBS)
    batches.push(jobs.slice(at, at + MAX_BATCH_JOBS));
  return batches;
}

const { values: flags, positionals } = (() => {
  try {
    return parseArgs({
      allowPositionals: true,
      options: {
        wait: { type: 'boolean' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        timeout: { type: 'string' },
        priority: { type: 'string' },
        'delay-ms': { type: 'string' },
        attempts: { type: 'string' },
        'timeout-ms': { type: 'string' },
        webhook: { type: 'string' },
        'idempotency-key': { type: 'string' },
        from: { type: 'string' },
        state: { type: 'string' },
        task: { type: 'string' },
        limit: { type: 'string' },
        cursor: { type: 'string' },
        cron: { type: 'string' },
        timezone: { type: 'string' },
        'every-ms': { type: 'string' },
        output: { type: 'string', short: 'o' },
      },
    });
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${USAGE}\n`);
    process.exit(2);
  }
})();

/** Pretty output with a live progress bar on a terminal; JSON lines otherwise. */
const pretty = process.stdout.isTTY === true && !flags.json;
const env = (() => {
  try {
    return loadCliEnv();
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(2);
  }
})();
const client = new OffloadClient({
  baseUrl: env.OFFLOAD_URL,
  ...(env.OFFLOAD_API_KEY && { apiKey: env.OFFLOAD_API_KEY }),
});

function number(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const parsed = Number(value);
  if (!Number.isFinite(parsed)) throw new UsageError(`--${name} must be a number`);
  return parsed;
}

function jsonLine(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

/** Long strings (a PNG in base64) shortened for a terminal; JSON output keeps them whole. */
function forTerminal(value: unknown): string {
  return JSON.stringify(
    value,
    (_key, v) =>
      typeof v === 'string' && v.length > 120 ? `${v.slice(0, 60)}… (${v.length} characters)` : v,
    2,
  );
}

function printJob(job: Job): void {
  if (!pretty) {
    jsonLine(job);
    return;
  }
  const lines = [`${job.id}  ${job.task}  ${job.state}  ${job.progress}%`];
  if (job.result !== null) lines.push(`result: ${forTerminal(job.result)}`);
  if (job.error) lines.push(`error: ${job.error.code}: ${job.error.message}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

const BAR_WIDTH = 30;
/** One line, redrawn in place: bar, percent, state, seconds since following began. */
function progressLine(job: Job, startedAt: number): string {
  const filled = Math.round((job.progress / 100) * BAR_WIDTH);
  const bar = `${'█'.repeat(filled)}${'░'.repeat(BAR_WIDTH - filled)}`;
  const elapsed = ((Date.now() - startedAt) / 1000).toFixed(1);
  return `\r\x1b[2K${bar} ${String(Math.round(job.progress)).padStart(3)}%  ${job.state.padEnd(9)} ${elapsed} s`;
}

/** Follows a job to its end over the event stream; the exit status says how it ended. */
async function follow(id: string, timeoutS: number | undefined): Promise<number> {
  const startedAt = Date.now();
  const controller = new AbortController();
  const timer =
    timeoutS === undefined ? undefined : setTimeout(() => controller.abort(), timeoutS * 1000);
  let last: Job | undefined;
  const ticker = pretty
    ? setInterval(() => last && process.stdout.write(progressLine(last, startedAt)), 100)
    : undefined;
  try {
    for await (const event of client.events(id, { signal: controller.signal })) {
      last = event.job;
      if (pretty) process.stdout.write(progressLine(event.job, startedAt));
      else jsonLine({ event: event.type, job: event.job });
    }
  } catch (err) {
    if (!controller.signal.aborted) throw err;
  } finally {
    clearInterval(ticker);
    clearTimeout(timer);
  }
  if (pretty) process.stdout.write('\n');
  if (!last || !isFinal(last.state)) {
    process.stderr.write(`job ${id} is still ${last?.state ?? 'unknown'} after ${timeoutS} s\n`);
    return 1;
  }
  if (pretty) printJob(last);
  return last.state === 'completed' ? 0 : 1;
}

function printSchedule(schedule: Schedule): void {
  if (!pretty) {
    jsonLine(schedule);
    return;
  }
  const when =
    schedule.cron !== undefined
      ? `cron "${schedule.cron}" ${schedule.timezone}`
      : `every ${schedule.everyMs} ms`;
  const lines = [`${schedule.id}  ${schedule.task}  ${when}  next ${schedule.nextRunAt}`];
  if (schedule.recentJobs)
    lines.push(`recent jobs: ${schedule.recentJobs.join(' ') || 'none yet'}`);
  if (schedule.lastError) lines.push(`last error: ${schedule.lastError}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

/** The job options the flags give (--priority, --delay-ms, --attempts, --timeout-ms, --webhook). */
function jobOptionFlags(): SubmitOptions {
  const options: SubmitOptions = {};
  const set = <K extends keyof SubmitOptions>(key: K, value: SubmitOptions[K] | undefined) => {
    if (value !== undefined) options[key] = value;
  };
  set('priority', number('priority', flags.priority));
  set('delayMs', number('delay-ms', flags['delay-ms']));
  set('attempts', number('attempts', flags.attempts));
  set('timeoutMs', number('timeout-ms', flags['timeout-ms']));
  if (flags.webhook !== undefined) options.webhook = { url: flags.webhook };
  return options;
}

/** `offload schedule create|list|get|delete`. */
async function schedule(action: string | undefined, args: string[]): Promise<number> {
  const arg = (index: number, name: string) => {
    const value = args[index];
    if (value === undefined) throw new UsageError(`schedule ${action} needs <${name}>`);
    return value;
  };
  switch (action) {
    case 'create': {
      const everyMs = number('every-ms', flags['every-ms']);
      if ((flags.cron === undefined) === (everyMs === undefined)) {
        throw new UsageError('schedule create takes either --cron or --every-ms');
      }
      const options = jobOptionFlags();
      const request = {
        task: arg(0, 'task'),
        input: jsonArg(arg(1, 'input-json')),
        ...(Object.keys(options).length > 0 && { options }),
        ...(everyMs !== undefined
          ? { everyMs }
          : { cron: flags.cron, ...(flags.timezone && { timezone: flags.timezone }) }),
      };
      // The server checks the task, input, cron and zone; a wrong one answers 422 with paths.
      printSchedule(await client.schedules.create(request as ScheduleRequest<BuiltInTasks>));
      return 0;
    }
    case 'list':
      for (const each of await client.schedules.list()) printSchedule(each);
      return 0;
    case 'get':
      printSchedule(await client.schedules.get(arg(0, 'id')));
      return 0;
    case 'delete': {
      const id = arg(0, 'id');
      await client.schedules.delete(id);
      if (pretty) process.stdout.write(`deleted ${id}\n`);
      else jsonLine({ deleted: id });
      return 0;
    }
    default:
      throw new UsageError(`schedule takes create, list, get or delete, not "${action ?? ''}"`);
  }
}

function jsonArg(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new UsageError(`<input-json> is not JSON: ${(err as Error).message}`);
  }
}

async function run(): Promise<number> {
  const [command, ...args] = positionals;
  if (flags.help || !command) {
    process.stdout.write(`${USAGE}\n`);
    return command || flags.help ? 0 : 2;
  }
  const arg = (index: number, name: string) => {
    const value = args[index];
    if (value === undefined) throw new UsageError(`${command} needs <${name}>`);
    return value;
  };
  const timeoutS = number('timeout', flags.timeout);

  switch (command) {
    case 'tasks': {
      const tasks = await client.tasks();
      for (const task of tasks) {
        if (pretty) process.stdout.write(`${task.name.padEnd(20)} ${task.description}\n`);
        else jsonLine(task);
      }
      return 0;
    }
    case 'submit': {
      if (flags.from !== undefined) {
        if (flags.wait || args.length > 0) {
          throw new UsageError('submit --from takes no <task>, <input-json> or --wait');
        }
        for (const batch of await readJobLines(flags.from)) {
          for (const job of await client.submitMany(batch)) printJob(job);
        }
        return 0;
      }
      const task = arg(0, 'task');
      const input = jsonArg(arg(1, 'input-json'));
      const options = jobOptionFlags();
      if (flags['idempotency-key'] !== undefined) options.idempotencyKey = flags['idempotency-key'];
      // The server validates the input against the task's schema; a wrong one answers 422.
      const job = await client.submit(task as TaskName<never>, input as never, options);
      if (!flags.wait) {
        printJob(job);
        return 0;
      }
      if (!pretty) jsonLine({ event: 'submitted', job });
      else process.stdout.write(`${job.id}  ${job.task}\n`);
      return follow(job.id, timeoutS);
    }
    case 'status':
      printJob(await client.get(arg(0, 'id')));
      return 0;
    case 'wait':
      return follow(arg(0, 'id'), timeoutS);
    case 'cancel':
      printJob(await client.cancel(arg(0, 'id')));
      return 0;
    case 'result':
      return resultCommand(arg(0, 'id'), flags.output);
    case 'list': {
      const limit = number('limit', flags.limit);
      const page = await client.list({
        ...(flags.state && { state: flags.state as JobState }),
        ...(flags.task && { task: flags.task }),
        ...(limit !== undefined && { limit }),
        ...(flags.cursor && { cursor: flags.cursor }),
      });
      if (!pretty) {
        for (const job of page.jobs) jsonLine(job);
        if (page.nextCursor) jsonLine({ nextCursor: page.nextCursor });
        return 0;
      }
      for (const job of page.jobs) {
        process.stdout.write(
          `${job.id}  ${job.task.padEnd(18)} ${job.state.padEnd(9)} ${String(job.progress).padStart(3)}%  ${job.createdAt}\n`,
        );
      }
      if (page.nextCursor) process.stdout.write(`more: offload list --cursor ${page.nextCursor}\n`);
      return 0;
    }
    case 'schedule':
      return schedule(args[0], args.slice(1));
    case 'workflow':
      return workflowCommand(args, timeoutS);
    default:
      throw new UsageError(`Unknown command "${command}"`);
  }
}

/**
 * `offload result <id> [-o file]`: the bytes as the API sends them, to the
 * file (or stdout), never held whole in memory. A JSON result without -o is
 * printed like any other answer; a binary one is not written to a terminal.
 */
async function resultCommand(id: string, file: string | undefined): Promise<number> {
  const { contentType, size, stream } = await client.resultStream(id);
  const json = /^application\/json\b/.test(contentType);
  if (file === undefined && json) {
    const value: unknown = await new Response(stream).json();
    if (pretty) process.stdout.write(`${forTerminal(value)}\n`);
    else jsonLine(value);
    return 0;
  }
  if (file === undefined && process.stdout.isTTY) {
    await stream.cancel();
    throw new UsageError(
      `job ${id} has a binary result (${contentType}, ${size ?? '?'} bytes): give -o <file>, or redirect stdout`,
    );
  }
  const body = Readable.fromWeb(stream);
  if (file === undefined) await pipeline(body, process.stdout, { end: false });
  else await pipeline(body, createWriteStream(file));
  if (file !== undefined) {
    if (pretty) process.stdout.write(`${file}: ${size ?? '?'} bytes, ${contentType}\n`);
    else jsonLine({ file, contentType, size });
  }
  return 0;
}

/** `offload workflow run|status|wait|cancel`. */
async function workflowCommand(args: string[], timeoutS: number | undefined): Promise<number> {
  const [action, target] = args;
  if (target === undefined || args.length > 2) {
    throw new UsageError('workflow takes run <file>, status <id>, wait <id> or cancel <id>');
  }
  /** Follows the workflow to its end, printing each step's change of state since `workflow` (or its first view). */
  const waitFor = (workflow: string | Workflow) => {
    const seen = new Map<string, string>(
      typeof workflow === 'string'
        ? []
        : Object.entries(workflow.steps).map(([step, job]) => [step, job.state]),
    );
    return client.workflows.wait(workflow, {
      ...(timeoutS !== undefined && { timeoutMs: timeoutS * 1000 }),
      onUpdate: (view) => {
        for (const [step, job] of Object.entries(view.steps)) {
          if (seen.get(step) === job.state) continue;
          const first = !seen.has(step);
          seen.set(step, job.state);
          // States known before were printed with the workflow (or are about to be).
          if (first) continue;
          if (!pretty) jsonLine({ event: 'step', step, job });
          else
            process.stdout.write(
              `  ${step.padEnd(16)} ${job.state.padEnd(9)} ${stepOutcome(job)}\n`,
            );
        }
      },
    });
  };
  switch (action) {
    case 'run': {
      const [steps, options] = await readWorkflowFile(target);
      const key = flags['idempotency-key'];
      const started = await client.workflows.submit(steps, {
        ...options,
        ...(key !== undefined && { idempotencyKey: key }),
      });
      printWorkflow(started);
      if (!flags.wait) return 0;
      const ended = await waitFor(started);
      printWorkflow(ended);
      return ended.state === 'completed' ? 0 : 1;
    }
    case 'status':
      printWorkflow(await client.workflows.get(target));
      return 0;
    case 'wait': {
      const ended = await waitFor(target);
      printWorkflow(ended);
      return ended.state === 'completed' ? 0 : 1;
    }
    case 'cancel':
      printWorkflow(await client.workflows.cancel(target));
      return 0;
    default:
      throw new UsageError(`Unknown workflow command "${action}"`);
  }
}

/** The body of a workflow file: steps and onStepFailure; anything else is a usage error, and nothing is sent. */
async function readWorkflowFile(
  path: string,
): Promise<Parameters<OffloadClient['workflows']['submit']>> {
  const text =
    path === '-'
      ? await new Response(Readable.toWeb(process.stdin) as ReadableStream).text()
      : await readFile(path, 'utf8').catch((err: Error) => {
          throw new UsageError(`workflow run ${path}: ${err.message}`);
        });
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`workflow run ${path}: not JSON: ${(err as Error).message}`);
  }
  const { steps, onStepFailure } = (body ?? {}) as {
    steps?: unknown;
    onStepFailure?: StepFailurePolicy;
  };
  if (typeof steps !== 'object' || steps === null) {
    throw new UsageError(`workflow run ${path}: not an object with "steps"`);
  }
  // The server checks every step (tasks, inputs, needs); a wrong one answers 422 naming it.
  return [
    steps as Parameters<OffloadClient['workflows']['submit']>[0],
    onStepFailure === undefined ? {} : { onStepFailure },
  ];
}

/** A workflow: a JSON line, or on a terminal a line for it and one per step. */
function printWorkflow(workflow: Workflow): void {
  if (!pretty) {
    jsonLine(workflow);
    return;
  }
  process.stdout.write(`${workflow.id}  ${workflow.state}\n`);
  for (const [name, job] of Object.entries(workflow.steps)) {
    process.stdout.write(
      `  ${name.padEnd(16)} ${job.id}  ${job.task.padEnd(18)} ${job.state.padEnd(9)} ${stepOutcome(job)}\n`,
    );
  }
}

/** A step's error, or how long it ran once finished. */
function stepOutcome(job: Job): string {
  if (job.error) return `${job.error.code}: ${job.error.message}`;
  if (job.startedAt && job.finishedAt) {
    return `${Date.parse(job.finishedAt) - Date.parse(job.startedAt)} ms`;
  }
  return '';
}

try {
  process.exitCode = await run();
} catch (err) {
  if (err instanceof UsageError) {
    process.stderr.write(`${err.message}\n\n${USAGE}\n`);
    process.exitCode = 2;
  } else if (err instanceof ProblemError) {
    if (pretty) {
      const fields = (err.problem.errors ?? []).map((e) => `\n  ${e.path}: ${e.message}`).join('');
      process.stderr.write(`error: ${err.message}${fields}\n`);
    } else {
      process.stderr.write(`${JSON.stringify(err.problem)}\n`);
    }
    process.exitCode = 1;
  } else if (err instanceof OfflineError) {
    process.stderr.write(`error: ${err.message}\n`);
    process.exitCode = 3;
  } else {
    throw err;
  }
}

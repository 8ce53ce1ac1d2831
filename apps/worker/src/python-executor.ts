import { spawn } from 'node:child_process';
import { delimiter } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import {
  type ChannelListener,
  ExecutionError,
  type ExecutorBackend,
  type ExecutorChannel,
  type FromExecutor,
} from './executor-protocol.ts';
import { readFrames } from './python-frames.ts';

/**
 * Executors for Python tasks (DESIGN.md §2): each a warm `python3 -m
 * offload.executor tasks.py …` process, reused across jobs, speaking the line
 * protocol of sdk/python/PROTOCOL.md over fds 3 and 4. Its stdout and stderr
 * are the job's log, never the protocol.
 */

/** sdk/python, which holds the `offload` package: the same place from src/ and from a bundle's dist/. */
export const PYTHON_SDK = fileURLToPath(new URL('../../../sdk/python', import.meta.url));

export interface PythonOptions {
  /** The .py OFFLOAD_TASKS entries, as given. */
  files: readonly string[];
  /** Folder relative entries are resolved from. */
  cwd: string;
  /** The interpreter, OFFLOAD_PYTHON. */
  python: string;
  /** Address-space cap of each process, MB (RLIMIT_AS). */
  memoryLimitMb?: number;
  /** The environment executors inherit (env.ts inheritedEnvironment), and PYTHONPATH from it. */
  environment: NodeJS.ProcessEnv;
  pythonPath?: string | undefined;
  /** WORKER_MAX_RESULT_BYTES: a binary result's bytes past it are dropped as they arrive (the job fails by its length). */
  maxResultBytes?: number;
}

/** What `ready` carries from a Python executor: its tasks, with the file that declared each, and its interpreter. */
export interface PythonReady {
  type: 'ready';
  tasks: (Record<string, unknown> & { file: string })[];
  /** sys.executable: the interpreter itself, where OFFLOAD_PYTHON may name a launcher. */
  python: string;
}

/** A tasks file that cannot serve: the executor's only message before it exits. */
interface Fatal {
  type: 'fatal';
  file: string;
  message: string;
}

export function pythonBackend(
  options: PythonOptions & { tasks: Iterable<string> },
): ExecutorBackend {
  return {
    kind: 'python',
    tasks: new Set(options.tasks),
    launch: (listener) => launchPython(options, listener),
  };
}

/** The first fatal message of an executor that could not load its files, if any. */
export type FatalListener = (fatal: Fatal) => void;

export function launchPython(
  options: PythonOptions,
  listener: ChannelListener,
  onFatal?: FatalListener,
): ExecutorChannel {
  const child = spawn(options.python, ['-m', 'offload.executor', ...options.files], {
    cwd: options.cwd,
    // Its own process group: a kill reaches the child processes a task started, too.
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe'],
    env: {
      ...options.environment,
      PYTHONPATH: [PYTHON_SDK, options.pythonPath].filter(Boolean).join(delimiter),
      ...(options.memoryLimitMb && { OFFLOAD_EXECUTOR_MEMORY_MB: String(options.memoryLimitMb) }),
    },
  });
  const requests = child.stdio[3] as Writable;
  const messages = child.stdio[4] as Readable;
  // A dead executor's pipes fail writes with EPIPE; its exit reports why it died.
  requests.on('error', () => {});
  messages.on('error', () => {});
  let killed = false;
  let fatal: Fatal | undefined;
  let reported = false;
  const report = (cause: ExecutionError) => {
    if (reported) return;
    reported = true;
    killGroup();
    listener.exited(cause);
  };
  const killGroup = () => {
    try {
      if (child.pid) process.kill(-child.pid, 'SIGKILL');
    } catch {
      // The group is gone already.
    }
  };

  readFrames(
    messages,
    (parsed) => {
      const message = parsed as FromExecutor | Fatal;
      if (message.type === 'fatal') {
        fatal = message;
        onFatal?.(message);
      } else listener.message(message);
    },
    options.maxResultBytes,
  );
  for (const output of [child.stdout, child.stderr]) {
    if (!output) continue;
    createInterface({ input: output, crlfDelay: Number.POSITIVE_INFINITY }).on('line', (line) =>
      listener.message({ type: 'log', line }),
    );
  }

  child.on('error', (err) => {
    report(new ExecutionError('task_error', `Could not start ${options.python}: ${err.message}`));
  });
  const messagesEnded = new Promise<void>((resolve) => {
    if (messages.readableEnded) resolve();
    else messages.once('close', resolve);
  });
  child.on('exit', (code, signal) => {
    // What it wrote before it died (its last failure, a fatal) is read before its end is reported.
    void messagesEnded.then(() => report(causeOfExit(code, signal, killed, fatal)));
  });

  return {
    send(message) {
      if (requests.writable) requests.write(`${JSON.stringify(message)}\n`);
    },
    kill() {
      killed = true;
      killGroup();
    },
  };
}

function causeOfExit(
  code: number | null,
  signal: NodeJS.Signals | null,
  killed: boolean,
  fatal: Fatal | undefined,
): ExecutionError {
  if (fatal) return new ExecutionError('task_error', fatal.message);
  if (killed) return new ExecutionError('task_error', 'The executor was stopped');
  if (signal === 'SIGKILL') {
    return new ExecutionError(
      'out_of_memory',
      'The executor was killed (SIGKILL), most likely by the system for lack of memory',
    );
  }
  if (signal) return new ExecutionError('task_error', `The task crashed its executor (${signal})`);
  return new ExecutionError('task_error', `The task ended its executor (exit code ${code})`);
}

/** How long a tasks file may take to import when the worker starts, ms. */
const DESCRIBE_TIMEOUT_MS = 30_000;

/**
 * Asks Python for what the files declare: starts one executor, takes the
 * tasks of its ready message and stops it. Rejects with the file and the
 * problem when a file does not load.
 */
export function describePythonTasks(options: PythonOptions): Promise<PythonReady> {
  return new Promise((resolve, reject) => {
    let channel: ExecutorChannel | undefined;
    const timer = setTimeout(() => {
      channel?.kill();
      reject(
        new PythonLoadError(
          options.files.join(', '),
          `did not load within ${DESCRIBE_TIMEOUT_MS / 1000} s`,
        ),
      );
    }, DESCRIBE_TIMEOUT_MS);
    channel = launchPython(
      options,
      {
        message(message) {
          if (message.type !== 'ready') return;
          clearTimeout(timer);
          resolve(message as unknown as PythonReady);
          channel?.kill();
        },
        exited(cause) {
          clearTimeout(timer);
          reject(new PythonLoadError(options.files.join(', '), cause.message));
        },
      },
      (fatal) => {
        clearTimeout(timer);
        reject(new PythonLoadError(fatal.file, fatal.message));
      },
    );
  });
}

export class PythonLoadError extends Error {
  override readonly name = 'PythonLoadError';
  constructor(
    readonly file: string,
    message: string,
  ) {
    super(message);
  }
}

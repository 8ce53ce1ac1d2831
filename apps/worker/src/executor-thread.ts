import { parentPort, workerData } from 'node:worker_threads';
import {
  type BinaryResult,
  createRegistry,
  isBinaryResult,
  type TaskProgress,
} from '@offload/tasks';
import type { ExecutorData, FromExecutor, ToExecutor } from './executor-protocol.ts';
import { loadTaskModules } from './task-modules.ts';

/**
 * One executor: a worker thread that runs one task at a time, so CPU-bound
 * work never blocks the worker's main thread (lock renewal, heartbeats, cancels).
 */

/** At most one progress message per this many ms; tasks may call progress() in tight loops. */
const PROGRESS_EVERY_MS = 100;

const port = parentPort;
if (!port) throw new Error('executor-thread.ts runs only as a worker thread');
const { taskModules, cwd } = workerData as ExecutorData;
const registry = createRegistry(await loadTaskModules(taskModules, cwd));

const send = (message: FromExecutor) => {
  // A binary result's memory moves to the main thread rather than being copied.
  const transfer = message.type === 'done' && message.binary ? [message.binary.data.buffer] : [];
  port.postMessage(message, transfer);
};
let abort: AbortController | null = null;

function describe(err: unknown): string {
  if (err instanceof Error) return err.message || err.name;
  return String(err);
}

async function run(jobId: string, taskName: string, rawInput: unknown): Promise<FromExecutor> {
  const task = registry.get(taskName);
  if (!task) return { type: 'failed', message: `Unknown task "${taskName}"`, final: true };
  const input = task.input.safeParse(rawInput);
  if (!input.success) {
    const issues = input.error.issues.map((i) => `${['input', ...i.path].join('.')}: ${i.message}`);
    return {
      type: 'failed',
      code: 'invalid_input',
      message: `The input does not fit task ${taskName}: ${issues.join('; ')}`,
      final: true,
    };
  }
  abort = new AbortController();
  let lastProgressAt = 0;
  const ctx = {
    signal: abort.signal,
    progress(value: TaskProgress) {
      const now = Date.now();
      if (now - lastProgressAt < PROGRESS_EVERY_MS) return;
      lastProgressAt = now;
      send({ type: 'progress', value });
    },
    log(line: string) {
      send({ type: 'log', line: String(line) });
    },
  };
  try {
    const result = await task.run(input.data, ctx);
    const output = task.output.safeParse(result);
    if (!output.success) {
      return {
        type: 'failed',
        code: 'invalid_output',
        message: `Task ${taskName} (job ${jobId}) returned an invalid result: ${output.error.message}`,
        final: true,
      };
    }
    if (isBinaryResult(output.data)) return binaryDone(output.data);
    // Measured here, in the executor's thread: the worker's main thread only compares.
    return {
      type: 'done',
      result: output.data,
      bytes: Buffer.byteLength(JSON.stringify(output.data) ?? 'null'),
    };
  } catch (err) {
    return { type: 'failed', message: describe(err), final: false };
  } finally {
    abort = null;
  }
}

/**
 * A binary result's bytes in an ArrayBuffer of their own, to be transferred
 * (no copy, no JSON). A view on part of a larger buffer (a Buffer from Node's
 * pool, a slice) is copied first: transferring its buffer would move memory
 * the task may still use, and Node refuses to move its pool.
 */
function binaryDone(result: BinaryResult): FromExecutor {
  const { data, contentType } = result;
  const { buffer } = data;
  const whole =
    buffer instanceof ArrayBuffer && data.byteOffset === 0 && data.byteLength === buffer.byteLength;
  const own = whole ? new Uint8Array(buffer) : new Uint8Array(data);
  return { type: 'done', result: null, bytes: own.byteLength, binary: { data: own, contentType } };
}

port.on('message', (message: ToExecutor) => {
  if (message.type === 'abort') {
    abort?.abort(new Error(message.reason));
    return;
  }
  run(message.jobId, message.task, message.input).then(send);
});

send({ type: 'ready' });

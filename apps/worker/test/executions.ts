import { ExecutionError } from '../src/executor-protocol.ts';

/** The ExecutionError an execution fails with; throws if it succeeds or fails otherwise. */
export async function failureOf(promise: Promise<unknown>): Promise<ExecutionError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof ExecutionError) return err;
    throw err;
  }
  throw new Error('expected the execution to fail');
}

/** An execution of `task` with a fresh job id. */
export const job = (task: string, input: unknown = {}, timeoutMs = 10_000) => ({
  jobId: `${task}-${Math.random()}`,
  task,
  input,
  timeoutMs,
});

import { fillResults } from '@offload/contract/workflow';
import type { RedisClient } from './connection.ts';
import { JobFailure } from './failure.ts';
import type { StepResults } from './job-view.ts';
import type { OffloadKeys } from './keys.ts';

/**
 * A workflow step's input as its task gets it: each `{ "$result": … }`
 * placeholder replaced by the result (or the field of it) it names, read
 * from the needed step's job when this step starts. Results are passed by
 * reference: a fan-out of 50 steps over one large result stores it once,
 * in its own job, not in 50 inputs; and a step retried reads it again.
 *
 * A result that is gone (its job passed its retention) or lacks the named
 * field fails the step with `invalid_input`, final: no retry can bring it
 * back. The task's own schema then checks the filled input in its executor,
 * as for any job (`invalid_input` too).
 */
export async function stepInput(
  redis: RedisClient,
  keys: OffloadKeys,
  input: unknown,
  results: StepResults,
): Promise<unknown> {
  // One HGET per needed step, each in its own queue's slot: no command crosses slots.
  const read = await Promise.all(
    Object.entries(results).map(async ([step, { queue, jobId }]) => {
      const text = await redis.hget(keys.bullKey(queue, jobId), 'returnvalue');
      if (text === null) {
        throw new JobFailure(
          'invalid_input',
          `The result of step "${step}" is no longer kept: its job passed its retention before this step started`,
          true,
        );
      }
      return [step, JSON.parse(text) as unknown] as const;
    }),
  );
  const resultOf = new Map<string, unknown>(read);
  const filled = fillResults(input, (step) => resultOf.get(step));
  if ('error' in filled) throw new JobFailure('invalid_input', filled.error, true);
  return filled.input;
}

import { JOB_ERROR_CODES, type JobError, type JobErrorCode } from '@offload/contract';

/**
 * Why a job failed, as the public API names it. BullMQ keeps only a message
 * string per failure (`failedReason`), so the code travels at its head:
 * `"timeout: Task exceeded its 5000 ms time limit"`. Encoded and decoded here only.
 */

/**
 * Thrown by a job's runner to fail the attempt with a public code.
 * `final` failures are not retried whatever `attempts` says (a timeout will
 * time out again; a canceled job must not run again).
 */
export class JobFailure extends Error {
  override readonly name = 'JobFailure';
  constructor(
    readonly code: JobErrorCode,
    message: string,
    readonly final: boolean,
  ) {
    super(message);
  }
}

export function encodeFailure(code: JobErrorCode, message: string): string {
  return `${code}: ${message}`;
}

// BullMQ's own message when the stalled checker gives up on a job whose worker vanished.
const STALLED_REASON = /stalled more than allowable limit/;
const ENCODED = /^([a-z_]+): ([\s\S]*)$/;

export function decodeFailure(reason: string | undefined): JobError {
  const text = reason ?? '';
  if (STALLED_REASON.test(text)) {
    return { code: 'worker_lost', message: 'The worker running this job was lost too many times' };
  }
  const match = ENCODED.exec(text);
  const code = match?.[1] as JobErrorCode | undefined;
  if (match && code && (JOB_ERROR_CODES as readonly string[]).includes(code)) {
    return { code, message: match[2] ?? '' };
  }
  return { code: 'task_error', message: text || 'The task failed' };
}

import type { Problem } from './types.ts';

/** The API answered with an error: its problem document, code and status. */
export class ProblemError extends Error {
  override readonly name = 'ProblemError';
  readonly status: number;
  readonly code: string;
  constructor(readonly problem: Problem) {
    super(`${problem.status} ${problem.code}: ${problem.detail}`);
    this.status = problem.status;
    this.code = problem.code;
  }
}

/** The API could not be reached at all (refused, reset, DNS, timeout): nothing was answered. */
export class OfflineError extends Error {
  override readonly name = 'OfflineError';
}

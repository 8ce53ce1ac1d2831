import { ZxcvbnFactory } from '@zxcvbn-ts/core';
import { adjacencyGraphs, dictionary } from '@zxcvbn-ts/language-common';

/** Shortest admin password accepted in production, characters. */
export const MIN_PASSWORD_LENGTH = 12;
/** Least zxcvbn score accepted (0–4): 3 is "safely unguessable" against an online attack. */
const MIN_SCORE = 3;

/**
 * Why `password` is too weak for a dashboard that can cancel and remove jobs,
 * or null when it is fine. `context`: words an attacker would try first (the
 * user name). zxcvbn knows the common passwords, keyboard walks, repeats and
 * dates that a plain length rule lets through.
 */
export function passwordWeakness(password: string, context: string[] = []): string | null {
  if (password.length < MIN_PASSWORD_LENGTH) {
    return `use at least ${MIN_PASSWORD_LENGTH} characters (it has ${password.length})`;
  }
  const zxcvbn = new ZxcvbnFactory({ dictionary, graphs: adjacencyGraphs });
  const { score, feedback } = zxcvbn.check(password, ['offload', 'dashboard', 'admin', ...context]);
  if (score >= MIN_SCORE) return null;
  const why = feedback.warning ? ` (zxcvbn: ${feedback.warning})` : '';
  return `it is a common or easily guessed password${why}; use a longer passphrase of unrelated words`;
}

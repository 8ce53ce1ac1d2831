import { resolve, sep } from 'node:path';
import { z } from 'zod';

/**
 * Where the pipeline's images live: THUMBS_DIR (default `data/thumbnails`
 * under the worker's working directory). Every path a task takes or returns
 * is relative to it, so workers on several machines share one volume (or a
 * bucket, in a real deployment) and a path never escapes it.
 */
export function filesRoot(): string {
  return resolve(process.env.THUMBS_DIR ?? 'data/thumbnails');
}

/**
 * A path under the root: relative segments of letters, digits, `_`, `-`
 * and `.`, none starting with `.` (so no `..`). A pattern, not a check in
 * code, so the API refuses a bad path at submit from the published schema.
 */
export const relativePath = z
  .string()
  .min(1)
  .max(512)
  .regex(
    /^[A-Za-z0-9_-][A-Za-z0-9_.-]*(\/[A-Za-z0-9_-][A-Za-z0-9_.-]*)*$/,
    'a relative path: segments of letters, digits, _ - and ., none starting with .',
  );

/** The absolute path of a relative one, checked to stay under the root. */
export function underRoot(path: string): string {
  const root = filesRoot();
  const full = resolve(root, path);
  if (!full.startsWith(root + sep)) throw new Error(`${path} is not under ${root}`);
  return full;
}

import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readlinkSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A clean copy of one commit to benchmark, so uncommitted edits in the
 * checkout (someone's work in progress) neither break nor colour the run.
 * The files come from `git archive`; node_modules entries link to the
 * checkout's installed packages, except the workspace links, which point
 * into the copy (their relative targets resolve there).
 */
export function snapshotCommit(root: string, rev: string): { dir: string; commit: string } {
  const commit = execFileSync('git', ['rev-parse', '--verify', `${rev}^{commit}`], {
    cwd: root,
    encoding: 'utf8',
  }).trim();
  const dir = mkdtempSync(join(tmpdir(), `offload-bench-${commit.slice(0, 8)}-`));
  execFileSync('sh', ['-c', `git archive --format=tar ${commit} | tar -x -C "${dir}"`], {
    cwd: root,
  });
  const modules = join(root, 'node_modules');
  mkdirSync(join(dir, 'node_modules'));
  for (const name of readdirSync(modules)) {
    if (name === '@offload') continue;
    symlinkSync(join(modules, name), join(dir, 'node_modules', name));
  }
  mkdirSync(join(dir, 'node_modules', '@offload'));
  for (const name of readdirSync(join(modules, '@offload'))) {
    const target = readlinkSync(join(modules, '@offload', name));
    symlinkSync(target, join(dir, 'node_modules', '@offload', name));
  }
  return { dir, commit };
}

/** The commit checked out and how many tracked files differ from it: which code a run measured. */
export function describeCheckout(root: string): { commit: string; changedFiles: number } {
  const git = (...args: string[]) => execFileSync('git', args, { cwd: root, encoding: 'utf8' });
  try {
    return {
      commit: git('rev-parse', 'HEAD').trim(),
      changedFiles: git('status', '--porcelain', '--untracked-files=no').split('\n').filter(Boolean)
        .length,
    };
  } catch {
    return { commit: 'unknown', changedFiles: 0 };
  }
}

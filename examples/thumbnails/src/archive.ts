import { mkdir, rename, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { defineTask } from '@offload/tasks';
import { create } from 'tar';
import { z } from 'zod';
import { filesRoot, relativePath, underRoot } from './files.ts';
import { THUMBS_QUEUE } from './resize.ts';

/** Packs files under THUMBS_DIR into one .tar.gz there. */
export const thumbsArchive = defineTask({
  name: 'thumbs.archive',
  description: 'Packs files under THUMBS_DIR into one .tar.gz there.',
  queue: THUMBS_QUEUE,
  input: z.strictObject({
    /** The files to pack, relative to THUMBS_DIR. */
    files: z.array(relativePath).min(1).max(1000),
    /** The archive to write, relative to THUMBS_DIR. */
    archive: relativePath.regex(/\.tar\.gz$/, 'ends in .tar.gz'),
  }),
  output: z.object({ path: z.string(), files: z.number(), bytes: z.number() }),
  defaults: { timeoutMs: 60_000, attempts: 3, backoff: { type: 'exponential', delay: 1000 } },
  async run({ files, archive }) {
    for (const file of files) underRoot(file);
    const full = underRoot(archive);
    await mkdir(dirname(full), { recursive: true });
    await create({ gzip: true, portable: true, cwd: filesRoot(), file: `${full}.tmp` }, files);
    await rename(`${full}.tmp`, full);
    return { path: archive, files: files.length, bytes: (await stat(full)).size };
  },
});

import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import { defineTask } from '@offload/tasks';
import { PNG } from 'pngjs';
import { z } from 'zod';
import { relativePath, underRoot } from './files.ts';

export const THUMBS_QUEUE = 'thumbnails';

/**
 * Scales a PNG down to `width` pixels wide (its aspect kept) by averaging
 * each block of source pixels a target pixel covers (a box filter: sharp
 * enough for thumbnails, and pure JavaScript), and writes it beside the
 * source as `<name>-<width>.png`.
 */
export const thumbsResize = defineTask({
  name: 'thumbs.resize',
  description:
    'Scales a PNG under THUMBS_DIR down to a width; writes <name>-<width>.png beside it.',
  queue: THUMBS_QUEUE,
  input: z.strictObject({
    /** The source PNG, relative to THUMBS_DIR. */
    source: relativePath,
    /** Width of the thumbnail, px; never wider than the source. */
    width: z.number().int().min(1).max(4096),
  }),
  output: z.object({ path: z.string(), width: z.number(), height: z.number(), bytes: z.number() }),
  defaults: { timeoutMs: 60_000, attempts: 3, backoff: { type: 'exponential', delay: 1000 } },
  async run({ source, width }, ctx) {
    const image = PNG.sync.read(await readFile(underRoot(source)));
    if (width > image.width)
      throw new Error(`${source} is ${image.width} px wide, less than ${width}`);
    const height = Math.max(1, Math.round((image.height * width) / image.width));
    const out = new PNG({ width, height });
    for (let y = 0; y < height; y++) {
      const y0 = Math.floor((y * image.height) / height);
      const y1 = Math.max(y0 + 1, Math.floor(((y + 1) * image.height) / height));
      for (let x = 0; x < width; x++) {
        const x0 = Math.floor((x * image.width) / width);
        const x1 = Math.max(x0 + 1, Math.floor(((x + 1) * image.width) / width));
        const sum = [0, 0, 0, 0];
        for (let sy = y0; sy < y1; sy++) {
          for (let sx = x0; sx < x1; sx++) {
            const at = (sy * image.width + sx) * 4;
            for (let c = 0; c < 4; c++)
              sum[c] = (sum[c] as number) + (image.data[at + c] as number);
          }
        }
        const count = (y1 - y0) * (x1 - x0);
        for (let c = 0; c < 4; c++)
          out.data[(y * width + x) * 4 + c] = Math.round((sum[c] as number) / count);
      }
      if (y % 64 === 0) ctx.progress((100 * y) / height);
    }
    const path = join(dirname(source), `${basename(source, extname(source))}-${width}.png`);
    const bytes = PNG.sync.write(out);
    const full = underRoot(path);
    await mkdir(dirname(full), { recursive: true });
    // Written whole, then renamed: a retried attempt or a reader never sees half a file.
    await writeFile(`${full}.tmp`, bytes);
    await rename(`${full}.tmp`, full);
    return { path, width, height, bytes: bytes.length };
  },
});

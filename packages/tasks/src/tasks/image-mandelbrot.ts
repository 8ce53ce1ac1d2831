import { PNG } from 'pngjs';
import { z } from 'zod';
import { binary, binaryOutput } from '../binary.ts';
import { DEFAULT_QUEUE, defineTask } from '../define-task.ts';

/**
 * The region shown at zoom 1, in units of the complex plane: the whole set
 * (real part −2 … 0.5, imaginary part −1.15 … 1.15) with a margin.
 */
const VIEW_WIDTH = 3;
const VIEW_HEIGHT = 2.4;

/**
 * Squared escape radius. Far beyond the mathematical 4 so that log log |z|
 * is smooth, which keeps colour bands from showing at each integer count.
 */
const ESCAPE_RADIUS_SQUARED = 256 * 256;

/** Colour of points that never escape: black. */
const INSIDE_RGB = [0, 0, 0] as const;

export const imageMandelbrot = defineTask({
  name: 'image.mandelbrot',
  description:
    'Renders the Mandelbrot set as a PNG coloured by escape time; GET /v1/jobs/{id}/result answers the image (image/png).',
  queue: DEFAULT_QUEUE,
  input: z.strictObject({
    /** Image width, px. */
    width: z.number().int().min(16).max(4096),
    /** Image height, px. */
    height: z.number().int().min(16).max(4096),
    /** Iterations after which a point counts as inside the set. */
    maxIterations: z.number().int().min(1).max(100_000).default(500),
    /** Real part of the image centre. */
    centerX: z.number().default(-0.5),
    /** Imaginary part of the image centre. */
    centerY: z.number().default(0),
    /** Magnification; 1 shows the whole set, 2 half as much in each direction. */
    zoom: z.number().positive().default(1),
  }),
  /** The image, PNG (8-bit RGBA), as a binary result. */
  output: binaryOutput(),
  // A 4096 × 4096 image at 500 iterations takes ~4 s on one core; views full of
  // boundary at 100 000 iterations can take far longer and need a timeout given per job.
  defaults: { timeoutMs: 300_000, attempts: 3, backoff: { type: 'exponential', delay: 1000 } },
  run({ width, height, maxIterations, centerX, centerY, zoom }, ctx) {
    const png = new PNG({ width, height });
    const data = png.data;
    // Same scale on both axes, chosen so the whole view fits whatever the aspect ratio.
    const unitsPerPixel = Math.max(VIEW_WIDTH / width, VIEW_HEIGHT / height) / zoom;
    const left = centerX - (width / 2) * unitsPerPixel;
    const top = centerY + (height / 2) * unitsPerPixel;

    for (let py = 0; py < height; py++) {
      const ci = top - (py + 0.5) * unitsPerPixel;
      for (let px = 0; px < width; px++) {
        const cr = left + (px + 0.5) * unitsPerPixel;
        const smoothCount = escapeTime(cr, ci, maxIterations);
        const offset = (py * width + px) * 4;
        if (smoothCount < 0) {
          data[offset] = INSIDE_RGB[0];
          data[offset + 1] = INSIDE_RGB[1];
          data[offset + 2] = INSIDE_RGB[2];
        } else {
          paintOutside(data, offset, smoothCount);
        }
        data[offset + 3] = 255;
      }

      ctx.progress(Math.floor(((py + 1) / height) * 100));
    }

    return binary(PNG.sync.write(png), 'image/png');
  },
});

/**
 * Smooth escape time of c = cr + ci·i: the iteration count at which |z|
 * passed the escape radius, with a fractional part from how far it passed;
 * −1 when z stayed bounded for maxIterations.
 */
function escapeTime(cr: number, ci: number, maxIterations: number): number {
  // The main cardioid and the period-2 bulb are inside and make up most of the
  // set's area; testing them in closed form spares maxIterations each.
  const q = (cr - 0.25) * (cr - 0.25) + ci * ci;
  if (q * (q + (cr - 0.25)) <= 0.25 * ci * ci) return -1;
  if ((cr + 1) * (cr + 1) + ci * ci <= 0.0625) return -1;

  let zr = 0;
  let zi = 0;
  for (let n = 0; n < maxIterations; n++) {
    const zr2 = zr * zr;
    const zi2 = zi * zi;
    if (zr2 + zi2 > ESCAPE_RADIUS_SQUARED) {
      return n + 1 - Math.log2(Math.log(zr2 + zi2) / 2 / Math.LN2);
    }
    zi = 2 * zr * zi + ci;
    zr = zr2 - zi2 + cr;
  }
  return -1;
}

/**
 * Writes the RGB of an escaped point: three cosines a third of a turn apart,
 * so the channels never vanish together and no outside point is black.
 */
function paintOutside(data: Buffer, offset: number, smoothCount: number): void {
  // Square root so that early escapes, which fill most of the picture, spread over more colours.
  const phase = 2 * Math.PI * (Math.sqrt(Math.max(smoothCount, 0)) / 8);
  data[offset] = Math.round(127.5 + 127.5 * Math.cos(phase));
  data[offset + 1] = Math.round(127.5 + 127.5 * Math.cos(phase + (2 * Math.PI) / 3));
  data[offset + 2] = Math.round(127.5 + 127.5 * Math.cos(phase + (4 * Math.PI) / 3));
}

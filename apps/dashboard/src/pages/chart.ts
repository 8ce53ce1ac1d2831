import { html } from 'hono/html';
import type { Html } from './layout.ts';

export interface Line {
  label: string;
  color: string;
  /** One value per x step; null leaves a gap. */
  values: (number | null)[];
}

const WIDTH = 560;
const HEIGHT = 170;
const PAD = { left: 52, right: 12, top: 22, bottom: 22 };

/** 0.37 → 0.5, 7 → 10, 1234 → 2000: a round top for the y axis. */
function niceCeiling(value: number): number {
  if (value <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  const step = [1, 2, 5, 10].find((m) => m * power >= value) ?? 10;
  return step * power;
}

/**
 * A line chart as inline SVG: no script, nothing loaded from anywhere.
 * `xLabels` names the first and last step; `format` writes a y value.
 */
export function lineChart(options: {
  title: string;
  lines: Line[];
  xLabels: [string, string];
  format: (value: number) => string;
}): Html {
  const { lines } = options;
  const steps = Math.max(1, ...lines.map((line) => line.values.length));
  const top = niceCeiling(
    Math.max(0, ...lines.flatMap((line) => line.values.filter((v): v is number => v !== null))),
  );
  const plotW = WIDTH - PAD.left - PAD.right;
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  const x = (i: number) => PAD.left + (steps === 1 ? plotW : (i * plotW) / (steps - 1));
  const y = (v: number) => PAD.top + plotH - (v / top) * plotH;

  /** One path per line, broken where a value is missing. */
  const path = (values: (number | null)[]) => {
    let d = '';
    let pen = false;
    for (const [i, v] of values.entries()) {
      if (v === null) {
        pen = false;
        continue;
      }
      d += `${pen ? 'L' : 'M'}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
      pen = true;
    }
    return d;
  };
  const dots = (values: (number | null)[], color: string) =>
    values.map((v, i) =>
      v === null
        ? ''
        : html`<circle cx="${x(i).toFixed(1)}" cy="${y(v).toFixed(1)}" r="1.8" fill="${color}"/>`,
    );
  const ticks = [0, 0.5, 1].map((f) => top * f);

  return html`<figure class="chart"><svg role="img" aria-label="${options.title}" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" xmlns="http://www.w3.org/2000/svg" font-size="11" font-family="system-ui,sans-serif">
<text x="${PAD.left}" y="13" font-weight="600" font-size="12">${options.title}</text>
${ticks.map(
  (t) =>
    html`<line x1="${PAD.left}" x2="${WIDTH - PAD.right}" y1="${y(t)}" y2="${y(t)}" stroke="#e4e7ec"/><text x="${PAD.left - 4}" y="${y(t) + 4}" text-anchor="end" fill="#6b7385">${options.format(t)}</text>`,
)}
<text x="${PAD.left}" y="${HEIGHT - 6}" fill="#6b7385">${options.xLabels[0]}</text>
<text x="${WIDTH - PAD.right}" y="${HEIGHT - 6}" text-anchor="end" fill="#6b7385">${options.xLabels[1]}</text>
${lines.map(
  (line) =>
    html`<g class="series" data-label="${line.label}"><path d="${path(line.values)}" fill="none" stroke="${line.color}" stroke-width="1.6"/>${dots(line.values, line.color)}</g>`,
)}
${lines.map(
  (line, i) =>
    html`<g transform="translate(${WIDTH - PAD.right - (lines.length - i) * 92},4)"><rect width="10" height="10" fill="${line.color}"/><text x="14" y="9">${line.label}</text></g>`,
)}
</svg></figure>`;
}

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { join } from 'node:path';

/** One line of the results table: an Offload figure, its same-run baseline and its target. */
export interface Figure {
  benchmark: string;
  /** What is measured, in the reader's words: `p99 GET /v1/jobs/:id, busy`. */
  figure: string;
  /** Unit of `offload` and `baseline`: `ms`, `jobs/s`, `MB`, `B/job`. */
  unit: string;
  offload: number;
  baseline?: { name: string; value: number };
  /** offload ÷ baseline, or the benchmark's own derived ratio (parallel efficiency). */
  ratio?: { name: string; value: number };
  /** The target in words, e.g. `≥ 0.93`. */
  target?: string;
  met?: boolean;
}

export interface BenchmarkResult {
  name: string;
  figures: Figure[];
  /** Everything else worth keeping: per-round values, sample counts, settings. */
  details: Record<string, unknown>;
  durationMs: number;
}

export interface Machine {
  cpuModel: string;
  cores: number;
  memoryGb: number;
  kernel: string;
  node: string;
  redis: string;
  /** 1-minute load average when the run started and ended: how busy the shared machine was. */
  loadAverage: { start: number; end?: number };
}

export function describeMachine(redis: string): Machine {
  return {
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    cores: cpus().length,
    memoryGb: Math.round(totalmem() / 2 ** 30),
    kernel: `Linux ${release()}`,
    node: process.version,
    redis,
    loadAverage: { start: round(loadavg()[0] ?? 0, 2) },
  };
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** Three significant figures, at most 3 decimals. */
export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  const abs = Math.abs(value);
  if (abs >= 100) return value.toFixed(0);
  if (abs >= 10) return value.toFixed(1);
  if (abs >= 1) return value.toFixed(2);
  return value.toFixed(3);
}

const withUnit = (value: number, unit: string) => `${formatNumber(value)}${unit ? ` ${unit}` : ''}`;

/** The results as a Markdown table; the same text is printed and written to RESULTS.md. */
export function resultsTable(results: readonly BenchmarkResult[]): string {
  const rows = [
    '| benchmark | figure | Offload | baseline (same run) | ratio | target | met |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const result of results) {
    for (const f of result.figures) {
      const baseline = f.baseline
        ? `${withUnit(f.baseline.value, f.unit)} (${f.baseline.name})`
        : '—';
      const ratio = f.ratio ? `${formatNumber(f.ratio.value)} (${f.ratio.name})` : '—';
      const met = f.met === undefined ? '' : f.met ? 'yes' : '**no**';
      rows.push(
        `| ${f.benchmark} | ${f.figure} | ${withUnit(f.offload, f.unit)} | ${baseline} | ${ratio} | ${f.target ?? ''} | ${met} |`,
      );
    }
  }
  return rows.join('\n');
}

/** Which code a run measured. */
export interface CodeUnderTest {
  commit: string;
  /** Tracked files that differed from the commit (0 for a clean copy). */
  changedFiles: number;
  /** Measured from a clean copy of the commit (--commit), not the working tree. */
  cleanCopy: boolean;
}

export interface Report {
  command: string;
  startedAt: string;
  durationS: number;
  quick: boolean;
  rounds: number;
  redis: string;
  machine: Machine;
  code: CodeUnderTest;
  results: BenchmarkResult[];
}

const START = '<!-- bench:results:start -->';
const END = '<!-- bench:results:end -->';

/** The generated part of RESULTS.md: machine, command and table. The analysis around it is written by hand. */
export function resultsSection(report: Report): string {
  const m = report.machine;
  return [
    START,
    `Run ${report.startedAt} with \`${report.command}\` (${report.rounds} rounds, ${formatNumber(report.durationS)} s in all), ` +
      `on commit ${report.code.commit.slice(0, 10)} (${report.code.cleanCopy ? 'a clean copy' : `working tree, ${report.code.changedFiles} files changed`}).`,
    '',
    `Machine: ${m.cores} × ${m.cpuModel}, ${m.memoryGb} GB, ${m.kernel}, Node ${m.node}, Redis ${m.redis} (${report.redis}). ` +
      `Load average (1 min) ${m.loadAverage.start} at the start, ${m.loadAverage.end ?? '?'} at the end.`,
    '',
    resultsTable(report.results),
    END,
  ].join('\n');
}

/**
 * Writes the JSON report to bench/results/<name>.json; for a full run also
 * replaces the generated section of bench/RESULTS.md, keeping the text around it.
 */
export function writeReport(
  benchDir: string,
  name: string,
  report: Report,
  updateResultsMd: boolean,
): string {
  const dir = join(benchDir, 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name}.json`);
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  if (updateResultsMd) {
    const md = join(benchDir, 'RESULTS.md');
    const section = resultsSection(report);
    const current = existsSync(md)
      ? readFileSync(md, 'utf8')
      : `# Benchmark results\n\n${START}\n${END}\n`;
    const start = current.indexOf(START);
    const end = current.indexOf(END);
    const next =
      start >= 0 && end > start
        ? current.slice(0, start) + section + current.slice(end + END.length)
        : `${current.trimEnd()}\n\n${section}\n`;
    writeFileSync(md, next);
  }
  return file;
}

export function endLoadAverage(machine: Machine): void {
  machine.loadAverage.end = round(loadavg()[0] ?? 0, 2);
}

import { loadWorkerEnv } from '../../apps/worker/src/env.ts';
import type { BenchmarkResult } from './report.ts';
import type { BenchStack } from './stack.ts';

export interface BenchContext {
  stack: BenchStack;
  /** Rounds per benchmark; Offload and its baseline alternate within each. */
  rounds: number;
  /** Fewer rounds and shorter windows, for development: the figures are not the run's. */
  quick: boolean;
  /** Cores of this machine: the executor count that should use all of them. */
  cores: number;
  log(line: string): void;
}

export interface Benchmark {
  name: string;
  run(ctx: BenchContext): Promise<Omit<BenchmarkResult, 'name' | 'durationMs'>>;
}

/** Runs `a` and `b` in turn, `a` first on even rounds and `b` first on odd ones, so neither always runs warm. */
export async function alternate(round: number, a: () => Promise<void>, b: () => Promise<void>) {
  if (round % 2 === 0) {
    await a();
    await b();
  } else {
    await b();
    await a();
  }
}

/**
 * CPU priority of Offload's worker processes (WORKER_NICE's default). The
 * raw-BullMQ worker and the busy loops of the baselines run at it too, so a
 * comparison measures the machinery, not the scheduler's favour.
 */
export const WORKER_NICE = loadWorkerEnv({ NODE_ENV: 'production' }).WORKER_NICE;

/** Environment of the raw-BullMQ baseline worker (bench/fixtures/raw-bullmq-worker.ts). */
export function rawWorkerEnv(prefix: string, concurrency: number, mode: 'burn' | 'stamp') {
  return {
    QUEUE_PREFIX: prefix,
    QUEUE_NAME: 'default',
    CONCURRENCY: String(concurrency),
    MODE: mode,
    NICE: String(WORKER_NICE),
  };
}

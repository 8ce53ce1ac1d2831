import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FinishedAttempt } from '@offload/queue';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** Where the first worker on a machine serves /metrics; the next ones take the next free ports. */
export const FIRST_METRICS_PORT = 9464;
/** Ports tried from FIRST_METRICS_PORT before giving up: one per worker process on a machine. */
const METRICS_PORTS_TRIED = 100;

/** Run and wait time buckets, seconds: from a few ms to the longest timeouts. */
const SECONDS_BUCKETS = [0.005, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600];

export interface WorkerMetrics {
  registry: Registry;
  attemptEnded(attempt: FinishedAttempt): void;
  /** Where the busy-executors gauge reads its value at scrape time. */
  countBusyWith(busyExecutors: () => number): void;
}

/** A worker process's Prometheus metrics, with the process' own (CPU, memory, event loop lag). */
export function createWorkerMetrics(options: { executors: number }): WorkerMetrics {
  let busyExecutors = () => 0;
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const attempts = new Counter({
    name: 'offload_worker_jobs_total',
    help: 'Attempts this worker finished, by queue, task and outcome (completed, failed, canceled)',
    labelNames: ['queue', 'task', 'outcome'] as const,
    registers: [registry],
  });
  const runSeconds = new Histogram({
    name: 'offload_worker_job_run_seconds',
    help: 'Time from an attempt starting on an executor to its end, seconds',
    labelNames: ['queue', 'task'] as const,
    buckets: SECONDS_BUCKETS,
    registers: [registry],
  });
  const waitSeconds = new Histogram({
    name: 'offload_worker_job_wait_seconds',
    help: 'Time a job waited in its queue before its first attempt started, seconds',
    labelNames: ['queue', 'task'] as const,
    buckets: SECONDS_BUCKETS,
    registers: [registry],
  });
  new Gauge({
    name: 'offload_worker_executors',
    help: 'Executors (threads) of this worker process',
    registers: [registry],
  }).set(options.executors);
  new Gauge({
    name: 'offload_worker_executors_busy',
    help: 'Executors computing a job',
    registers: [registry],
    collect() {
      this.set(busyExecutors());
    },
  });
  return {
    registry,
    countBusyWith(count) {
      busyExecutors = count;
    },
    attemptEnded({ queue, task, outcome, runMs, waitMs }) {
      attempts.inc({ queue, task, outcome });
      runSeconds.observe({ queue, task }, runMs / 1000);
      if (waitMs !== undefined) waitSeconds.observe({ queue, task }, Math.max(0, waitMs) / 1000);
    },
  };
}

export interface MetricsServer {
  url: string;
  close(): Promise<void>;
}

function listen(server: Server, host: string, port: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      server.off('listening', onListening);
      if (err.code === 'EADDRINUSE') resolve(false);
      else reject(err);
    };
    const onListening = () => {
      server.off('error', onError);
      resolve(true);
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(port, host);
  });
}

/**
 * Serves GET /metrics. With `port` set, on that port exactly; unset, on the
 * first free port from FIRST_METRICS_PORT (9464, 9465, … for the second,
 * third worker on a machine), found by trying to listen, so workers starting
 * together never race for one port.
 */
export async function serveMetrics(
  registry: Registry,
  options: { host: string; port: number | undefined },
): Promise<MetricsServer> {
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || req.url?.split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('Not found: try GET /metrics\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(err.message),
    );
  });
  const ports =
    options.port !== undefined
      ? [options.port]
      : Array.from({ length: METRICS_PORTS_TRIED }, (_, i) => FIRST_METRICS_PORT + i);
  for (const port of ports) {
    if (await listen(server, options.host, port)) {
      const { port: bound } = server.address() as AddressInfo;
      return {
        url: `http://${options.host}:${bound}/metrics`,
        close: () => new Promise((resolve) => server.close(() => resolve())),
      };
    }
  }
  throw new Error(
    options.port !== undefined
      ? `WORKER_METRICS_PORT ${options.port} is in use`
      : `No free port for metrics in ${FIRST_METRICS_PORT}–${FIRST_METRICS_PORT + METRICS_PORTS_TRIED - 1}; set WORKER_METRICS_PORT`,
  );
}

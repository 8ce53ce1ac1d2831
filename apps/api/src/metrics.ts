import type { JobQueues } from '@offload/queue';
import type { Context, MiddlewareHandler } from 'hono';
import { routePath } from 'hono/route';
import type { Logger } from 'pino';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { healthRoute, readyRoute } from './routes.ts';

/** Request duration buckets, seconds: answers take about a millisecond, long-polls up to a minute. */
const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 15, 60];

/**
 * Routes that container and Kubernetes probes ask every few seconds: logged at debug,
 * or they would fill the info log (a line per container every 10 s).
 */
const PROBE_ROUTES: ReadonlySet<string> = new Set([healthRoute.path, readyRoute.path]);

/**
 * States of the jobs a worker fleet has to run now: due and not yet taken
 * (waiting, prioritized, and held for fair share: due, only ordered among
 * tenants), or taken and running (active), so a fleet busy with its last jobs
 * is not scaled down under them. What KEDA scales workers on (deploy/kubernetes).
 */
export const DEPTH_STATES = ['waiting', 'prioritized', 'held', 'active'] as const;

export interface ApiMetrics {
  /** Counts and times every request by method, route pattern and status; logs it (probes at debug). */
  observe: MiddlewareHandler;
  jobSubmitted(task: string): void;
  /** GET /metrics. */
  scrape(c: Context): Promise<Response>;
}

/**
 * The API's Prometheus metrics. Queue counts are read from Redis at scrape time,
 * once for both queue gauges; with Redis down the scrape still answers, without them.
 */
export function createApiMetrics(options: { jobs: JobQueues; logger: Logger }): ApiMetrics {
  const { jobs, logger } = options;
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const requests = new Counter({
    name: 'offload_api_requests_total',
    help: 'HTTP requests answered, by method, route pattern and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'offload_api_request_duration_seconds',
    help: 'Time to answer an HTTP request, seconds',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: DURATION_BUCKETS,
    registers: [registry],
  });
  const submitted = new Counter({
    name: 'offload_api_jobs_submitted_total',
    help: 'Jobs accepted, by task',
    labelNames: ['task'] as const,
    registers: [registry],
  });
  // One Redis read per scrape, shared by both queue gauges; scrape() starts a new one.
  let countsOfScrape: ReturnType<JobQueues['countJobs']> | undefined;
  const queueCounts = () => {
    countsOfScrape ??= jobs.countJobs().catch(() => []);
    return countsOfScrape;
  };
  new Gauge({
    name: 'offload_queue_jobs',
    help: "Jobs in each queue by state: BullMQ's (waiting, prioritized, delayed, active, completed, failed, waiting-children), and held (for fair share; not in delayed)",
    labelNames: ['queue', 'state'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      for (const { queue, counts } of await queueCounts()) {
        for (const [state, count] of Object.entries(counts)) this.set({ queue, state }, count);
      }
    },
  });
  new Gauge({
    name: 'offload_queue_depth',
    help:
      'Jobs the workers of each queue have to run now: waiting + prioritized + active, what an autoscaler ' +
      'sizes the worker fleet on. Delayed jobs are left out: not due yet, they would keep workers up for ' +
      'jobs due hours later',
    labelNames: ['queue'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      for (const { queue, counts } of await queueCounts()) {
        this.set(
          { queue },
          DEPTH_STATES.reduce((sum, state) => sum + (counts[state] ?? 0), 0),
        );
      }
    },
  });

  new Gauge({
    name: 'offload_workflows_running',
    help: 'Workflows not yet ended, every tenant’s: their steps are running, queued or blocked',
    registers: [registry],
    async collect() {
      this.reset();
      const running = await jobs.workflows.countRunning().catch(() => null);
      if (running !== null) this.set(running);
    },
  });

  return {
    async observe(c, next) {
      const started = performance.now();
      await next();
      const seconds = (performance.now() - started) / 1000;
      // The route pattern, never the path itself: job ids would make one series per job.
      const route = routePath(c, -1) || 'unmatched';
      const labels = { method: c.req.method, route, status: String(c.res.status) };
      requests.inc(labels);
      duration.observe(labels, seconds);
      logger[PROBE_ROUTES.has(route) ? 'debug' : 'info'](
        {
          requestId: c.get('requestId'),
          method: c.req.method,
          path: c.req.path,
          route,
          status: c.res.status,
          ms: Math.round(seconds * 10_000) / 10,
        },
        'request',
      );
    },
    jobSubmitted(task) {
      submitted.inc({ task });
    },
    async scrape(c) {
      countsOfScrape = undefined;
      return c.body(await registry.metrics(), 200, { 'content-type': registry.contentType });
    },
  };
}

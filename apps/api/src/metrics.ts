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

export interface ApiMetrics {
  /** Counts and times every request by method, route pattern and status; logs it (probes at debug). */
  observe: MiddlewareHandler;
  jobSubmitted(task: string): void;
  /** GET /metrics. */
  scrape(c: Context): Promise<Response>;
}

/**
 * The API's Prometheus metrics. Queue depth is read from Redis at scrape time;
 * with Redis down the scrape still answers, without that gauge.
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
  new Gauge({
    name: 'offload_queue_jobs',
    help: 'Jobs in each queue by BullMQ state (waiting, prioritized, delayed, active, completed, failed, paused)',
    labelNames: ['queue', 'state'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      const counts = await jobs.countJobs().catch(() => []);
      for (const { queue, counts: byState } of counts) {
        for (const [state, count] of Object.entries(byState)) this.set({ queue, state }, count);
      }
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
      return c.body(await registry.metrics(), 200, { 'content-type': registry.contentType });
    },
  };
}

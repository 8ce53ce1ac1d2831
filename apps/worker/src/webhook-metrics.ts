import type { DeliveryOutcome } from '@offload/queue';
import { Counter, Histogram, type Registry } from 'prom-client';

/** From a job's end to its webhook's delivery, seconds: first attempts within ms, retries up to hours later. */
const DELIVERY_BUCKETS = [
  0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, 14_400,
];

/**
 * The webhook sender's metrics, on the worker process' registry. No tenant or
 * URL label: either would let one tenant grow every scrape without bound.
 */
export function createWebhookMetrics(registry: Registry) {
  const attempts = new Counter({
    name: 'offload_webhook_attempts_total',
    help: 'Webhook delivery attempts, by outcome: delivered, retrying (another attempt scheduled), failed (given up: retries spent, 410, job gone)',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  const latency = new Histogram({
    name: 'offload_webhook_delivery_seconds',
    help: 'Time from the end of a job or workflow to the delivery of its webhook, seconds',
    buckets: DELIVERY_BUCKETS,
    registers: [registry],
  });
  return (outcome: DeliveryOutcome, latencyMs?: number) => {
    attempts.inc({ outcome });
    if (latencyMs !== undefined) latency.observe(Math.max(0, latencyMs) / 1000);
  };
}

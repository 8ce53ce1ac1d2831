import { offloadKeys, type RedisClient } from '@offload/queue';

/**
 * How often BullMQ recorded each job of a queue as completed, from the queue's
 * own event stream: a job run twice to the end shows 2.
 */
export async function completions(
  redis: RedisClient,
  prefix: string,
  queue = 'default',
): Promise<Map<string, number>> {
  const entries = (await redis.xrange(offloadKeys(prefix).bullKey(queue, 'events'), '-', '+')) as [
    string,
    string[],
  ][];
  const counts = new Map<string, number>();
  for (const [, fields] of entries) {
    const event = Object.fromEntries(
      fields.flatMap((_, i) => (i % 2 === 0 ? [[fields[i], fields[i + 1]]] : [])),
    ) as Record<string, string>;
    if (event.event === 'completed') {
      const id = event.jobId as string;
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
  }
  return counts;
}

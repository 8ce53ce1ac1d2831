/**
 * Every Redis key Offload writes besides BullMQ's own starts with the prefix,
 * exactly as BullMQ's keys do: with OFFLOAD_PREFIX set to a hash tag such as
 * `{offload}`, all of them land in one Redis Cluster slot.
 */
export interface OffloadKeys {
  prefix: string;
  /** String: the JobView of a canceled job, kept for the failed-job retention window. */
  canceled(jobId: string): string;
  /** Pub/sub channel: job ids to cancel; every worker listens. */
  cancelChannel: string;
  /** Sorted set: worker id → heartbeat expiry (ms since epoch). */
  fleet: string;
  /** String: one worker's latest heartbeat, JSON, expiring with it. */
  heartbeat(workerId: string): string;
}

export function offloadKeys(prefix: string): OffloadKeys {
  return {
    prefix,
    canceled: (jobId) => `${prefix}:canceled:${jobId}`,
    cancelChannel: `${prefix}:cancel`,
    fleet: `${prefix}:fleet`,
    heartbeat: (workerId) => `${prefix}:fleet:${workerId}`,
  };
}

import type { DefaultJobOptions } from 'bullmq';

/** How long finished jobs stay readable before they are removed, ms. */
export interface Retention {
  completedMs: number;
  failedMs: number;
}

/**
 * Completed results are kept a day, failures a week (long enough to look into
 * them), then removed, so Redis memory stays bounded however many jobs pass
 * through. JOB_RETENTION_COMPLETED_S / JOB_RETENTION_FAILED_S change them.
 */
export const DEFAULT_RETENTION: Retention = {
  completedMs: 24 * 60 * 60 * 1000,
  failedMs: 7 * 24 * 60 * 60 * 1000,
};

export function jobOptionsFor(retention: Retention): DefaultJobOptions {
  return {
    // BullMQ takes these ages in seconds and enforces them whenever a later job finishes;
    // the worker's sweep (see queue-worker.ts) removes the rest when a queue goes quiet.
    removeOnComplete: { age: Math.ceil(retention.completedMs / 1000) },
    removeOnFail: { age: Math.ceil(retention.failedMs / 1000) },
  };
}

/** An issued id: 20 bytes in base64url (see job-ids.ts). */
const JOB_ID = /^[A-Za-z0-9_-]{27}$/;
/**
 * Rejects ids that could not have been issued, before they reach Redis as part
 * of a key: a name such as `events` or `meta` would otherwise read one of
 * BullMQ's own keys of the queue.
 */
export function isWellFormedJobId(id: string): boolean {
  return JOB_ID.test(id);
}

import { randomBytes } from 'node:crypto';
import type { DefaultJobOptions } from 'bullmq';

/**
 * How long finished jobs stay readable. Completed results are kept a day,
 * failures a week (long enough to look into them), then removed, so Redis
 * memory stays bounded however many jobs pass through.
 */
export const RETENTION = {
  completedMs: 24 * 60 * 60 * 1000,
  failedMs: 7 * 24 * 60 * 60 * 1000,
} as const;

export const defaultJobOptions: DefaultJobOptions = {
  // BullMQ takes these ages in seconds and enforces them whenever a later job finishes;
  // the worker's sweep (see queue-worker.ts) removes the rest when a queue goes quiet.
  removeOnComplete: { age: RETENTION.completedMs / 1000 },
  removeOnFail: { age: RETENTION.failedMs / 1000 },
};

/** 128 random bits, URL-safe: unguessable, unlike BullMQ's counter, and never all digits in practice. */
export function newJobId(): string {
  return randomBytes(16).toString('base64url');
}

const JOB_ID = /^[A-Za-z0-9_-]{1,64}$/;
/** Rejects ids that could not have been issued, before they reach Redis as part of a key. */
export function isWellFormedJobId(id: string): boolean {
  return JOB_ID.test(id);
}

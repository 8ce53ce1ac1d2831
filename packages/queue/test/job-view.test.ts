import { describe, expect, it } from 'vitest';
import { type JobRecord, stateFromFields, toJobSummary } from '../src/job-view.ts';

const record = (fields: Partial<JobRecord>): JobRecord => ({
  id: 'j1',
  task: 'primes.count',
  timestamp: 1_000_000,
  progress: 0,
  attemptsMade: 0,
  attemptsStarted: 1,
  maxAttempts: 3,
  held: false,
  webhook: false,
  delayed: false,
  canceled: false,
  ...fields,
});

describe('a job summary', () => {
  it('never starts before it was created, though BullMQ may stamp it so when the previous job’s end fetched it', () => {
    const early = toJobSummary(record({ processedOn: 1_000_000 - 89 }), 'running');
    expect(early.startedAt).toBe(early.createdAt);
    const later = toJobSummary(record({ processedOn: 1_000_000 + 5 }), 'running');
    expect(Date.parse(later.startedAt as string)).toBe(1_000_005);
  });

  it('has no start while queued, whatever BullMQ kept of an earlier attempt', () => {
    expect(toJobSummary(record({ processedOn: 1_000_010 }), 'queued').startedAt).toBeNull();
  });
});

describe("a job's state from its fields alone", () => {
  it('is waiting or delayed only for a job that never started and is not finished', () => {
    expect(stateFromFields(record({ attemptsStarted: 0 }))).toBe('waiting');
    expect(stateFromFields(record({ attemptsStarted: 0, delayed: true }))).toBe('delayed');
    // Started once: active, finished, or back in a list after a lost worker or a failed attempt.
    expect(stateFromFields(record({ processedOn: 1_000_010 }))).toBeNull();
    expect(stateFromFields(record({ processedOn: 1_000_010, delayed: true }))).toBeNull();
    expect(stateFromFields(record({ processedOn: 1_000_010, finishedOn: 1_000_020 }))).toBeNull();
  });
});

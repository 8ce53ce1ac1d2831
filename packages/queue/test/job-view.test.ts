import { describe, expect, it } from 'vitest';
import { type JobRecord, toJobSummary } from '../src/job-view.ts';

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

import { JOB_ERROR_CODES } from '@offload/contract';
import { describe, expect, it } from 'vitest';
import { decodeFailure, encodeFailure } from '../src/failure.ts';
import { isWellFormedJobId } from '../src/job-options.ts';
import { publicState } from '../src/job-view.ts';
import { offloadKeys } from '../src/keys.ts';

describe('failure codes', () => {
  it('survive the trip through BullMQ’s failedReason for every public code', () => {
    for (const code of JOB_ERROR_CODES) {
      const message = `went wrong: details\nsecond line`;
      expect(decodeFailure(encodeFailure(code, message))).toEqual({ code, message });
    }
  });

  it('reads a reason it did not write as a task error, and BullMQ’s stall limit as a lost worker', () => {
    expect(decodeFailure('something odd')).toEqual({
      code: 'task_error',
      message: 'something odd',
    });
    expect(decodeFailure('unknown_code: x')).toEqual({
      code: 'task_error',
      message: 'unknown_code: x',
    });
    expect(decodeFailure(undefined).code).toBe('task_error');
    expect(decodeFailure('job stalled more than allowable limit').code).toBe('worker_lost');
  });
});

describe('public states', () => {
  it('maps every BullMQ state onto the six public ones', () => {
    expect(publicState('waiting', undefined)).toBe('queued');
    expect(publicState('prioritized', undefined)).toBe('queued');
    expect(publicState('waiting-children', undefined)).toBe('queued');
    expect(publicState('delayed', undefined)).toBe('delayed');
    expect(publicState('delayed', undefined, true)).toBe('queued');
    expect(publicState('active', undefined)).toBe('running');
    expect(publicState('completed', undefined)).toBe('completed');
    expect(publicState('failed', encodeFailure('timeout', 'x'))).toBe('failed');
    expect(publicState('failed', encodeFailure('canceled', 'x'))).toBe('canceled');
    expect(publicState('unknown', undefined)).toBeNull();
  });
});

describe('keys and ids', () => {
  it('puts every Offload key under the prefix (tests/cluster checks their cluster slots)', () => {
    const keys = offloadKeys('offload');
    for (const key of [
      keys.canceled('a'),
      keys.cancelChannel,
      keys.fleet,
      keys.heartbeat('w'),
      keys.bullKey('default', 'wait'),
      keys.tenantJobs('acme'),
      keys.fairState('default'),
    ]) {
      expect(key.startsWith('offload:')).toBe(true);
    }
  });

  it('rejects ids that could not have been issued before they reach a Redis key', () => {
    expect(isWellFormedJobId('a:b')).toBe(false);
    expect(isWellFormedJobId('')).toBe(false);
    expect(isWellFormedJobId('x'.repeat(65))).toBe(false);
    // BullMQ's own keys of a queue.
    for (const name of ['events', 'meta', 'id', 'delayed', 'marker', 'wait', 'completed']) {
      expect(isWellFormedJobId(name)).toBe(false);
    }
  });
});

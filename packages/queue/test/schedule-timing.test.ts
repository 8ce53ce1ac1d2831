import { describe, expect, it } from 'vitest';
import { firstFiring, nextFiring, timingErrors } from '../src/schedule-timing.ts';

const at = (iso: string) => Date.parse(iso);
const iso = (ms: number) => new Date(ms).toISOString();
const berlin = (cron: string) => ({ cron, timezone: 'Europe/Berlin' });

describe('cron firings across daylight saving time (Europe/Berlin)', () => {
  it('fires a wall time the spring-forward gap skips once, an hour later by the clock', () => {
    // 29 March 2026: clocks go from 02:00 CET to 03:00 CEST, so 02:30 never happens.
    const daily = berlin('30 2 * * *');
    const saturday = at('2026-03-28T01:30:00Z'); // 02:30 CET on the Saturday
    const sunday = nextFiring(daily, saturday, saturday);
    expect(iso(sunday)).toBe('2026-03-29T01:30:00.000Z'); // 03:30 CEST
    expect(iso(nextFiring(daily, sunday, sunday))).toBe('2026-03-30T00:30:00.000Z'); // 02:30 CEST
  });

  it('fires a wall time the fall-back hour repeats once, at its first occurrence', () => {
    // 25 October 2026: clocks go from 03:00 CEST back to 02:00 CET, so 02:30 happens twice.
    const daily = berlin('30 2 * * *');
    const saturday = at('2026-10-24T00:30:00Z'); // 02:30 CEST on the Saturday
    const sunday = nextFiring(daily, saturday, saturday);
    expect(iso(sunday)).toBe('2026-10-25T00:30:00.000Z'); // 02:30 CEST
    expect(iso(nextFiring(daily, sunday, sunday))).toBe('2026-10-26T01:30:00.000Z'); // 02:30 CET, Monday
  });

  it('keeps an every-30-minutes expression at its pace in real time through the repeated hour', () => {
    const half = berlin('*/30 * * * *');
    let t = at('2026-10-25T00:00:00Z');
    const times: string[] = [];
    for (let i = 0; i < 4; i++) {
      t = nextFiring(half, t, t);
      times.push(iso(t));
    }
    expect(times).toEqual([
      '2026-10-25T00:30:00.000Z',
      '2026-10-25T01:00:00.000Z',
      '2026-10-25T01:30:00.000Z',
      '2026-10-25T02:00:00.000Z',
    ]);
  });
});

describe('missed firings', () => {
  it('moves an interval past every missed firing in one step, keeping its phase', () => {
    const every = { everyMs: 1000 };
    const firedAt = 10_000;
    // Claimed 3.5 intervals late: the next firing is the first one after now, not a burst.
    expect(nextFiring(every, firedAt, 13_500)).toBe(14_000);
    expect(nextFiring(every, firedAt, firedAt)).toBe(11_000);
  });

  it('moves a cron schedule to its first firing after now', () => {
    const hourly = { cron: '0 * * * *', timezone: 'UTC' };
    const missed = at('2026-01-01T00:00:00Z');
    expect(iso(nextFiring(hourly, missed, at('2026-01-01T05:10:00Z')))).toBe(
      '2026-01-01T06:00:00.000Z',
    );
  });

  it('first fires an interval one interval after creation', () => {
    expect(firstFiring({ everyMs: 5000 }, 1000)).toBe(6000);
  });
});

describe('timingErrors', () => {
  it('refuses a cron expression that fires closer than the minimum interval', () => {
    expect(timingErrors({ cron: '*/5 * * * *', timezone: 'UTC' }, 10 * 60_000)).toEqual([
      { path: 'cron', message: `fires less than ${10 * 60_000} ms apart` },
    ]);
    expect(timingErrors({ cron: '*/10 * * * *', timezone: 'UTC' }, 10 * 60_000)).toEqual([]);
  });
});

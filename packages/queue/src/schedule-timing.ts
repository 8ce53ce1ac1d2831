import type { FieldError } from '@offload/contract';
import { CronExpressionParser } from 'cron-parser';

/**
 * When a schedule fires: a 5-field cron expression read in an IANA time zone,
 * or a fixed interval. cron-parser computes the times, DST included:
 * - a wall time the spring-forward gap skips (02:30 on the last Sunday of
 *   March in Europe/Berlin) fires once, an hour later by the clock (03:30),
 *   the same instant the day would have reached it;
 * - a wall time the fall-back hour repeats (02:30 on the last Sunday of
 *   October) fires once, at its first occurrence;
 * - expressions that fire every few minutes keep their pace in real time
 *   through both changes.
 */
export type ScheduleTiming = { cron: string; timezone: string } | { everyMs: number };

/** Firings of a cron expression whose gaps are compared with the minimum interval. */
const GAPS_CHECKED = 100;

/** Whether `timezone` names an IANA zone this runtime knows. */
function isTimeZone(timezone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: timezone });
    return true;
  } catch {
    return false;
  }
}

/**
 * Field errors of a schedule's timing: a cron expression that is not 5 valid
 * fields, an unknown time zone, or firings closer than `minIntervalMs` (for
 * cron, over its next GAPS_CHECKED firings). Empty when it is valid.
 */
export function timingErrors(timing: ScheduleTiming, minIntervalMs: number): FieldError[] {
  if ('everyMs' in timing) {
    return timing.everyMs < minIntervalMs
      ? [{ path: 'everyMs', message: `must be at least ${minIntervalMs} ms` }]
      : [];
  }
  const errors: FieldError[] = [];
  if (!isTimeZone(timing.timezone)) {
    errors.push({ path: 'timezone', message: 'is not an IANA time zone (e.g. Europe/Berlin)' });
  }
  const fields = timing.cron.trim().split(/\s+/);
  if (fields.length !== 5) {
    errors.push({
      path: 'cron',
      message: `must have 5 fields (minute hour day-of-month month day-of-week), not ${fields.length}`,
    });
    return errors;
  }
  if (errors.length > 0) return errors;
  try {
    const times = CronExpressionParser.parse(timing.cron, { tz: timing.timezone });
    let previous = times.next().getTime();
    for (let i = 0; i < GAPS_CHECKED && times.hasNext(); i++) {
      const next = times.next().getTime();
      if (next - previous < minIntervalMs) {
        return [{ path: 'cron', message: `fires less than ${minIntervalMs} ms apart` }];
      }
      previous = next;
    }
  } catch (err) {
    return [{ path: 'cron', message: (err as Error).message }];
  }
  return [];
}

/**
 * The schedule's first firing after both `firedAt` (its latest firing, ms
 * since epoch) and `now`: the firings missed in between are skipped, so a
 * schedule that was not claimed for a while fires once, then keeps its
 * cadence. An interval keeps its phase (createdAt + k × everyMs).
 */
export function nextFiring(timing: ScheduleTiming, firedAt: number, now: number): number {
  if ('everyMs' in timing) {
    const periods = Math.max(1, Math.floor((now - firedAt) / timing.everyMs) + 1);
    return firedAt + periods * timing.everyMs;
  }
  const after = Math.max(firedAt, now);
  return CronExpressionParser.parse(timing.cron, {
    currentDate: new Date(after),
    tz: timing.timezone,
  })
    .next()
    .getTime();
}

/** The first firing of a schedule created at `now`. */
export function firstFiring(timing: ScheduleTiming, now: number): number {
  if ('everyMs' in timing) return now + timing.everyMs;
  return nextFiring(timing, now, now);
}

import type { WorkerHeartbeat } from '@offload/queue';
import type { FleetRow } from './pages/fleet-page.ts';

/** How long a worker that went away stays listed as gone, ms. */
const GONE_SHOWN_MS = 10 * 60 * 1000;

/**
 * Remembers the workers this dashboard has seen, so one whose heartbeat
 * expires (or that stopped) is shown as gone for a while instead of vanishing.
 * In memory only: after a dashboard restart only live workers are listed.
 */
export class FleetTracker {
  private readonly seen = new Map<string, WorkerHeartbeat>();

  rows(live: WorkerHeartbeat[], now = Date.now()): FleetRow[] {
    const liveIds = new Set(live.map((beat) => beat.id));
    for (const beat of live) this.seen.set(beat.id, beat);
    const rows: FleetRow[] = [];
    for (const [id, beat] of this.seen) {
      if (!liveIds.has(id) && now - Date.parse(beat.lastSeenAt) > GONE_SHOWN_MS) {
        this.seen.delete(id);
        continue;
      }
      rows.push({ beat, live: liveIds.has(id) });
    }
    return rows.sort(
      (a, b) =>
        Number(b.live) - Number(a.live) ||
        a.beat.host.localeCompare(b.beat.host) ||
        a.beat.pid - b.beat.pid,
    );
  }
}

import { ApiError } from '@offload/problem';

/** Seconds a client refused a stream should wait: streams and long-polls end within minutes, many within seconds. */
const RETRY_AFTER_S = 5;

export interface StreamLimits {
  /** Event streams plus waiting long-polls one tenant may hold open in this process; 0: no limit. */
  perTenant: number;
  /** The same, all tenants together; 0: no limit. */
  total: number;
}

/**
 * Counts the event streams and waiting long-polls this process holds, per
 * tenant and in all, so one tenant cannot hold every socket, timer and
 * follower of the process. Past either limit a request is refused with 429
 * `too_many_streams` before anything is read.
 */
export class StreamSlots {
  private readonly byTenant = new Map<string, number>();
  private total = 0;

  constructor(private readonly limits: StreamLimits) {}

  /** Takes a slot for `tenant`; the returned function gives it back (calling it again does nothing). */
  take(tenant: string): () => void {
    const held = this.byTenant.get(tenant) ?? 0;
    const { perTenant, total } = this.limits;
    if (perTenant > 0 && held >= perTenant) {
      throw refusal(`Your tenant already holds ${perTenant} event streams and waiting long-polls`);
    }
    if (total > 0 && this.total >= total) {
      throw refusal(`This server already holds ${total} event streams and waiting long-polls`);
    }
    this.byTenant.set(tenant, held + 1);
    this.total++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.total--;
      const left = (this.byTenant.get(tenant) ?? 1) - 1;
      if (left === 0) this.byTenant.delete(tenant);
      else this.byTenant.set(tenant, left);
    };
  }
}

function refusal(detail: string): ApiError {
  return new ApiError('too_many_streams', `${detail}; close one or try again shortly`, undefined, {
    'retry-after': String(RETRY_AFTER_S),
  });
}

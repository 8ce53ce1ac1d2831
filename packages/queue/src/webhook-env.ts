import { z } from 'zod';
import { secretKey } from './webhook-signing.ts';

const TENANT = /^[A-Za-z0-9._-]{1,64}$/;
const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/;
const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;

/** WEBHOOK_SECRETS: `tenant:whsec_…,…`; a tenant named twice has two secrets (while rotating). */
const webhookSecrets = z
  .string()
  .optional()
  .transform((text, ctx) => {
    const secrets = new Map<string, Buffer[]>();
    const entries = (text ?? '')
      .split(',')
      .map((e) => e.trim())
      .filter(Boolean);
    for (const [i, entry] of entries.entries()) {
      const colon = entry.indexOf(':');
      const tenant = colon < 0 ? '' : entry.slice(0, colon);
      const key = colon < 0 ? null : secretKey(entry.slice(colon + 1));
      if (!TENANT.test(tenant) || !key) {
        // Named by its place, never quoted: the entry holds a secret.
        ctx.addIssue({
          code: 'custom',
          message: `entry ${i + 1} is not tenant:whsec_<base64 of 24–64 random bytes>`,
        });
        continue;
      }
      secrets.set(tenant, [...(secrets.get(tenant) ?? []), key]);
    }
    return secrets;
  });

/** WEBHOOK_RETRY_SCHEDULE: `1s,5s,30s,…`, the waits before each retry. */
const retrySchedule = z
  .string()
  .default('1s,5s,30s,2m,10m,30m,1h,2h,4h,8h')
  .transform((text, ctx) => {
    const waits: number[] = [];
    for (const entry of text
      .split(',')
      .map((e) => e.trim())
      .filter(Boolean)) {
      const match = DURATION.exec(entry);
      if (!match) {
        ctx.addIssue({
          code: 'custom',
          message: `"${entry}" is not a duration like 500ms, 5s, 2m, 1h`,
        });
        continue;
      }
      waits.push(Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS]);
    }
    return waits;
  });

/** The webhook variables (DESIGN.md §7), read by the API (submit checks) and the workers (delivery). */
export const webhookEnvShape = {
  /** Signing secrets per tenant: `tenant:whsec_…,…`; two for one tenant while rotating. Unset: no tenant may ask for webhooks. */
  WEBHOOK_SECRETS: webhookSecrets,
  /** Allow webhook URLs on loopback, private and other non-public addresses (tests, closed networks). */
  WEBHOOK_ALLOW_PRIVATE: z
    .enum(['true', 'false'])
    .default('false')
    .transform((value) => value === 'true'),
  /**
   * Waits before each retry of a failed delivery, comma-separated durations
   * (ms, s, m, h); one attempt more than it has entries (empty: no retry). The default retries
   * for about 16 h: within seconds first, then up to hours apart.
   */
  WEBHOOK_RETRY_SCHEDULE: retrySchedule,
  /** Longest one delivery attempt may take, connect to the end of the answer, ms. */
  WEBHOOK_TIMEOUT_MS: z.coerce.number().int().min(100).max(120_000).default(10_000),
};

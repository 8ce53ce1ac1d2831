import { parseEnv, sharedEnvShape } from '@offload/queue';
import { z } from 'zod';
import { DEFAULT_LOGIN_THROTTLE } from './auth.ts';
import { passwordWeakness } from './password-strength.ts';

const schema = z
  .object({
    ...sharedEnvShape,
    /** Interface the dashboard listens on. */
    HOST: z.string().min(1).default('127.0.0.1'),
    DASHBOARD_PORT: z.coerce.number().int().min(0).max(65_535).default(3001),
    /** Admin credentials (HTTP Basic); both unset leaves the dashboard open, outside production only. */
    ADMIN_USER: z.string().min(1).optional(),
    ADMIN_PASSWORD: z.string().min(1).optional(),
    /** Failed sign-ins one client address may make per window; past it every request answers 429. */
    DASHBOARD_LOGIN_MAX_FAILURES: z.coerce
      .number()
      .int()
      .min(1)
      .default(DEFAULT_LOGIN_THROTTLE.maxFailures),
    /** Window of DASHBOARD_LOGIN_MAX_FAILURES, and how long a client past it stays refused, s. */
    DASHBOARD_LOGIN_WINDOW_S: z.coerce
      .number()
      .int()
      .min(1)
      .default(DEFAULT_LOGIN_THROTTLE.windowS),
  })
  .superRefine((env, ctx) => {
    if ((env.ADMIN_USER === undefined) !== (env.ADMIN_PASSWORD === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: [env.ADMIN_USER === undefined ? 'ADMIN_USER' : 'ADMIN_PASSWORD'],
        message: 'set ADMIN_USER and ADMIN_PASSWORD together',
      });
    }
    if (env.NODE_ENV === 'production' && env.ADMIN_USER === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['ADMIN_USER'],
        message:
          'required when NODE_ENV=production (with ADMIN_PASSWORD): the dashboard can cancel and remove jobs',
      });
    }
    const weakness =
      env.NODE_ENV === 'production' && env.ADMIN_PASSWORD !== undefined
        ? passwordWeakness(env.ADMIN_PASSWORD, [env.ADMIN_USER ?? ''])
        : null;
    if (weakness) {
      ctx.addIssue({
        code: 'custom',
        path: ['ADMIN_PASSWORD'],
        message: `too weak for NODE_ENV=production: ${weakness}`,
      });
    }
  });

export type DashboardEnv = z.infer<typeof schema>;

export function loadDashboardEnv(source: NodeJS.ProcessEnv = process.env): DashboardEnv {
  return parseEnv(schema, 'dashboard', source);
}

import { parseEnv, sharedEnvShape } from '@offload/queue';
import { z } from 'zod';

const schema = z
  .object({
    ...sharedEnvShape,
    /** Interface the dashboard listens on. */
    HOST: z.string().min(1).default('127.0.0.1'),
    DASHBOARD_PORT: z.coerce.number().int().min(0).max(65_535).default(3001),
    /** Admin credentials (HTTP Basic); both unset leaves the dashboard open, outside production only. */
    ADMIN_USER: z.string().min(1).optional(),
    ADMIN_PASSWORD: z.string().min(1).optional(),
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
  });

export type DashboardEnv = z.infer<typeof schema>;

export function loadDashboardEnv(source: NodeJS.ProcessEnv = process.env): DashboardEnv {
  return parseEnv(schema, 'dashboard', source);
}

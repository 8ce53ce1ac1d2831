import { parseEnv, sharedEnvShape } from '@offload/queue';
import { z } from 'zod';

const schema = z.object({
  ...sharedEnvShape,
  /** Interface the API listens on. */
  HOST: z.string().min(1).default('127.0.0.1'),
  PORT: z.coerce.number().int().min(0).max(65_535).default(3000),
  /** Largest request body accepted, bytes; larger answers 413. */
  API_MAX_BODY_BYTES: z.coerce.number().int().min(1024).default(1_048_576),
});

export type ApiEnv = z.infer<typeof schema>;

export function loadApiEnv(source: NodeJS.ProcessEnv = process.env): ApiEnv {
  return parseEnv(schema, 'API', source);
}

import { z } from 'zod';

/** The CLI's environment: where the API is and the key to use. */
const schema = z.object({
  OFFLOAD_URL: z.url({ protocol: /^https?$/ }).default('http://127.0.0.1:3000'),
  OFFLOAD_API_KEY: z.string().min(1).optional(),
});

export type CliEnv = z.infer<typeof schema>;

/** Parses the CLI's environment; a bad value throws one line naming it. */
export function loadCliEnv(source: NodeJS.ProcessEnv = process.env): CliEnv {
  const parsed = schema.safeParse({
    OFFLOAD_URL: source.OFFLOAD_URL || undefined,
    OFFLOAD_API_KEY: source.OFFLOAD_API_KEY || undefined,
  });
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  throw new Error(`${issue?.path.join('.')}: ${issue?.message}`);
}

import type { FieldError, WebhookOption } from '@offload/contract';
import { ApiError } from '@offload/problem';
import { webhookUrlProblem } from '@offload/queue';

/** What the API checks a webhook against at submit (WEBHOOK_SECRETS, WEBHOOK_ALLOW_PRIVATE). */
export interface WebhookPolicy {
  /** Tenants that may ask for webhooks: those with a signing secret. */
  secrets: ReadonlyMap<string, readonly Buffer[]>;
  /** Allow URLs on loopback, private and other non-public addresses. */
  allowPrivate: boolean;
}

/** The policy WEBHOOK_SECRETS and WEBHOOK_ALLOW_PRIVATE set. */
export function webhookPolicyFrom(env: {
  WEBHOOK_SECRETS: WebhookPolicy['secrets'];
  WEBHOOK_ALLOW_PRIVATE: boolean;
}): WebhookPolicy {
  return { secrets: env.WEBHOOK_SECRETS, allowPrivate: env.WEBHOOK_ALLOW_PRIVATE };
}

/** No tenant has a secret: every webhook is refused. */
export const NO_WEBHOOKS: WebhookPolicy = { secrets: new Map(), allowPrivate: false };

/**
 * Refuses the first webhook of a request the API could never deliver, with
 * the fault at its path (`options.webhook`, `jobs.3.options.webhook`,
 * `steps.render.options.webhook`, `webhook`): 422 `webhook_secret_missing`
 * when the tenant has no secret to sign with (an unsigned webhook could not
 * be told from a forged one), 422 `validation_failed` when the URL's host
 * does not resolve or is not a public address. The schema checked the URL's
 * form already. Each distinct URL is resolved once, all at once (a batch of
 * a thousand jobs usually names one). The address is checked again at each
 * delivery, since DNS answers change.
 */
export async function checkWebhooks(
  webhooks: readonly { webhook: WebhookOption | undefined; path: string }[],
  tenant: string,
  policy: WebhookPolicy,
): Promise<void> {
  const asked = webhooks.filter(
    (entry): entry is { webhook: WebhookOption; path: string } => entry.webhook !== undefined,
  );
  const [first] = asked;
  if (!first) return;
  if (!policy.secrets.get(tenant)?.length) {
    throw new ApiError(
      'webhook_secret_missing',
      `Tenant ${tenant} has no webhook signing secret: the operator adds one to WEBHOOK_SECRETS (tenant:whsec_…)`,
      [{ path: first.path, message: 'no signing secret for this tenant' }],
    );
  }
  const urls = [...new Set(asked.map(({ webhook }) => webhook.url))];
  const problems = new Map(
    await Promise.all(
      urls.map(async (url) => [url, await webhookUrlProblem(url, policy.allowPrivate)] as const),
    ),
  );
  const refused = asked.find(({ webhook }) => problems.get(webhook.url));
  if (refused) {
    const problem = problems.get(refused.webhook.url) as string;
    const error: FieldError = { path: `${refused.path}.url`, message: problem };
    throw new ApiError('validation_failed', `The webhook URL cannot be used: ${problem}`, [error]);
  }
}

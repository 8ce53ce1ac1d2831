import type { LookupAddress } from 'node:dns';
import { Agent, request } from 'undici';
import { literalOf, RefusedAddressError, vetHost } from './webhook-address.ts';

/** How one delivery attempt went: the receiver's status, or why there was none. */
export interface PostOutcome {
  /** HTTP status of the answer; null when none came (refused address, timeout, connection error). */
  status: number | null;
  /** Why the attempt failed, for the delivery's log; unset on a 2xx. */
  error?: string;
  /** From the start of the attempt to the end of the answer, ms. */
  ms: number;
}

/** Most bytes of an answer read (and thrown away) so the connection can be reused; past it the connection is dropped. */
const ANSWER_READ_BYTES = 16 * 1024;
/** Connections kept per receiver origin: a slow receiver cannot take them all from the others. */
const CONNECTIONS_PER_ORIGIN = 8;

type LookupCallback = (
  err: Error | null,
  address: string | LookupAddress[],
  family?: number,
) => void;

/**
 * POSTs webhook bodies, refusing addresses that are not public (unless
 * `allowPrivate`) at connect time: the socket connects to the very address the
 * guard vetted (the agent's DNS lookup is the guard), so a name that resolves
 * to a public address when checked and to a private one a moment later (DNS
 * rebinding) cannot slip through. Redirects are never followed: a 3xx is a
 * failed attempt, since its target was never vetted and may be anything.
 */
export class WebhookPoster {
  private readonly agent: Agent;

  constructor(
    private readonly options: {
      /** Longest one attempt may take, connect to the end of the answer, ms. */
      timeoutMs: number;
      /** WEBHOOK_ALLOW_PRIVATE. */
      allowPrivate: boolean;
    },
  ) {
    const lookup = (
      hostname: string,
      lookupOptions: { all?: boolean },
      callback: LookupCallback,
    ) => {
      vetHost(hostname, options.allowPrivate).then(
        (addresses) => {
          const first = addresses[0] as LookupAddress;
          if (lookupOptions.all) callback(null, addresses);
          else callback(null, first.address, first.family);
        },
        (err: Error) => callback(err, []),
      );
    };
    this.agent = new Agent({
      connect: { timeout: options.timeoutMs, lookup },
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      connections: CONNECTIONS_PER_ORIGIN,
    });
  }

  async post(url: string, headers: Record<string, string>, body: string): Promise<PostOutcome> {
    const started = performance.now();
    const ms = () => Math.round(performance.now() - started);
    try {
      // An IP literal is connected to without a lookup: vetted here instead.
      const { hostname } = new URL(url);
      if (literalOf(hostname)) await vetHost(hostname, this.options.allowPrivate);
      const answer = await request(url, {
        method: 'POST',
        headers,
        body,
        dispatcher: this.agent,
        signal: AbortSignal.timeout(this.options.timeoutMs),
      });
      await answer.body.dump({ limit: ANSWER_READ_BYTES }).catch(() => {});
      const status = answer.statusCode;
      if (status >= 200 && status < 300) return { status, ms: ms() };
      const error =
        status >= 300 && status < 400
          ? `answered ${status} (a redirect): redirects are not followed`
          : `answered ${status}`;
      return { status, error, ms: ms() };
    } catch (err) {
      return { status: null, error: describe(err, this.options.timeoutMs), ms: ms() };
    }
  }

  close(): Promise<void> {
    return this.agent.close();
  }
}

/** Why an attempt got no answer, in a line. */
function describe(err: unknown, timeoutMs: number): string {
  for (let cause = err; cause instanceof Error; cause = cause.cause) {
    if (cause instanceof RefusedAddressError) return `refused: ${cause.message}`;
    if (cause.name === 'TimeoutError' || /timeout/i.test(cause.name)) {
      return `no answer within ${timeoutMs} ms`;
    }
  }
  const { code, message } = err as NodeJS.ErrnoException;
  return code ? `${code}: ${message}` : message;
}

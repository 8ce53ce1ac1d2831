import type { LookupAddress } from 'node:dns';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';

/**
 * Where a webhook may be sent (DESIGN.md §3, README "Webhooks"): the guard
 * against a tenant pointing Offload at the network it runs in (SSRF). Only
 * public unicast addresses pass: loopback, private, link-local (cloud metadata
 * at 169.254.169.254), CGNAT (100.64/10, Alibaba's metadata), multicast,
 * unspecified, unique-local IPv6 (AWS' fd00:ec2::254), and every range that
 * embeds an IPv4 address (IPv4-mapped, 6to4, NAT64, Teredo) are refused.
 * ipaddr.js names the ranges; the rule (only `unicast` passes, an IPv4-mapped
 * address is judged as its IPv4) is Offload's.
 */

/** A webhook address refused by the guard; the message says which and why. */
export class RefusedAddressError extends Error {
  override readonly name = 'RefusedAddressError';
}

/** Longest a DNS answer for a webhook host is awaited, ms. */
const LOOKUP_WITHIN_MS = 3000;

/** Why this address is not public (its range's name), or null when it is. */
export function nonPublicRange(address: string): string | null {
  if (!ipaddr.isValid(address)) return 'not an IP address';
  let parsed = ipaddr.parse(address);
  if (parsed.kind() === 'ipv6' && (parsed as ipaddr.IPv6).isIPv4MappedAddress()) {
    parsed = (parsed as ipaddr.IPv6).toIPv4Address();
  }
  const range = parsed.range();
  return range === 'unicast' ? null : range;
}

/** A URL's host as an IP literal (IPv6 without brackets), or null for a name. */
export function literalOf(hostname: string): string | null {
  const bare = hostname.replace(/^\[|\]$/g, '');
  return isIP(bare) ? bare : null;
}

/**
 * The addresses `hostname` resolves to, refused (RefusedAddressError) when
 * any is not public, unless `allowPrivate` (WEBHOOK_ALLOW_PRIVATE). Every
 * address must pass, not one: a name with a public and a private answer
 * would otherwise reach the private one on a later connect.
 */
export async function vetHost(hostname: string, allowPrivate: boolean): Promise<LookupAddress[]> {
  const literal = literalOf(hostname);
  const addresses = literal
    ? [{ address: literal, family: isIP(literal) }]
    : await resolve(hostname);
  if (allowPrivate) return addresses;
  for (const { address } of addresses) {
    const range = nonPublicRange(address);
    if (range) {
      throw new RefusedAddressError(
        `${hostname}${literal ? '' : ` resolves to ${address}, which`} is not a public address (${range}); set WEBHOOK_ALLOW_PRIVATE=true to allow it`,
      );
    }
  }
  return addresses;
}

/** Every address of `hostname`; a name that does not resolve in LOOKUP_WITHIN_MS is refused. */
async function resolve(hostname: string): Promise<LookupAddress[]> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      lookup(hostname, { all: true }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no answer within ${LOOKUP_WITHIN_MS} ms`)),
          LOOKUP_WITHIN_MS,
        );
      }),
    ]);
  } catch (err) {
    const { code, message } = err as NodeJS.ErrnoException;
    throw new RefusedAddressError(`${hostname} does not resolve (${code ?? message})`);
  } finally {
    clearTimeout(timer);
  }
}

/** Why a webhook URL may not be used (checked at submit, after the schema's own checks), or null. */
export async function webhookUrlProblem(
  url: string,
  allowPrivate: boolean,
): Promise<string | null> {
  try {
    await vetHost(new URL(url).hostname, allowPrivate);
    return null;
  } catch (err) {
    if (err instanceof RefusedAddressError) return err.message;
    throw err;
  }
}

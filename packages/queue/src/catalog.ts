import { CatalogEntry, type TaskInfo, type TaskVersion } from '@offload/contract';
import { z } from 'zod';
import type { RedisClient } from './connection.ts';
import type { WorkerHeartbeat } from './fleet.ts';
import type { OffloadKeys } from './keys.ts';

/**
 * The task catalog (DESIGN.md §2): workers publish what they run, the API and
 * the dashboard read it. Each version of a task (name + fingerprint) is one
 * hash field, written once (HSETNX keeps its first `publishedAt`); a counter
 * changes whenever a new version appears, so readers re-read the hash only then.
 *
 * Rolling deploys: while two versions of a task are live, the newest published
 * one validates submits, and each job carries the fingerprint it was validated
 * against; a worker that runs another version hands such a job back (see the
 * worker) while a worker of that version lives.
 */

const PublishedEntry = CatalogEntry.extend({ publishedAt: z.iso.datetime() });
export type PublishedEntry = z.infer<typeof PublishedEntry>;

/**
 * Versions of one task the catalog keeps, newest first. Each deploy that
 * changes a task's schemas adds one; older ones are removed when a newer one
 * is published, so the catalog stays bounded however often a team deploys.
 * A worker still running a removed version goes on running its jobs; the API
 * no longer validates against it (it would not have: newer versions exist).
 */
export const MAX_VERSIONS_KEPT = 10;

/** The hash field of one version of a task. */
export const versionKey = (name: string, fingerprint: string) => `${name} ${fingerprint}`;

/** Publishes the versions a worker runs; bumps the catalog version when one is new. */
export async function publishCatalog(
  redis: RedisClient,
  keys: OffloadKeys,
  entries: readonly CatalogEntry[],
): Promise<void> {
  if (entries.length === 0) return;
  const publishedAt = new Date().toISOString();
  const multi = redis.multi();
  for (const entry of entries) {
    const field = versionKey(entry.name, entry.fingerprint);
    multi.hsetnx(keys.catalog, field, JSON.stringify({ ...entry, publishedAt }));
  }
  const added = (await multi.exec()) ?? [];
  if (!added.some(([, value]) => value === 1)) return;
  await pruneVersions(redis, keys, new Set(entries.map((entry) => entry.name)));
  await redis.incr(keys.catalogVersion);
}

/** Removes the versions of these tasks past the newest MAX_VERSIONS_KEPT. */
async function pruneVersions(
  redis: RedisClient,
  keys: OffloadKeys,
  names: Set<string>,
): Promise<void> {
  const { entries } = await readCatalog(redis, keys);
  const stale = [...names].flatMap((name) =>
    entries
      .filter((entry) => entry.name === name)
      .sort(newestFirst)
      .slice(MAX_VERSIONS_KEPT)
      .map((entry) => versionKey(entry.name, entry.fingerprint)),
  );
  if (stale.length > 0) await redis.hdel(keys.catalog, ...stale);
}

/** Newest published first; equal times by fingerprint, so every reader orders alike. */
function newestFirst(a: PublishedEntry, b: PublishedEntry): number {
  return b.publishedAt.localeCompare(a.publishedAt) || a.fingerprint.localeCompare(b.fingerprint);
}

export interface CatalogSnapshot {
  /** The counter's value when read; re-read the entries only when it changes. */
  version: string;
  entries: PublishedEntry[];
  /** Fields that did not parse (written by another version, or by hand): ignored. */
  malformed: string[];
}

export async function readCatalogVersion(redis: RedisClient, keys: OffloadKeys): Promise<string> {
  return (await redis.get(keys.catalogVersion)) ?? '0';
}

export async function readCatalog(redis: RedisClient, keys: OffloadKeys): Promise<CatalogSnapshot> {
  const [version, fields] = await Promise.all([
    readCatalogVersion(redis, keys),
    redis.hgetall(keys.catalog),
  ]);
  const entries: PublishedEntry[] = [];
  const malformed: string[] = [];
  for (const [field, text] of Object.entries(fields)) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      malformed.push(field);
      continue;
    }
    const entry = PublishedEntry.safeParse(parsed);
    if (entry.success && field === versionKey(entry.data.name, entry.data.fingerprint)) {
      entries.push(entry.data);
    } else {
      malformed.push(field);
    }
  }
  return { version, entries, malformed };
}

/** Live workers per task version (`name fingerprint`), from their heartbeats. */
export function liveVersions(fleet: readonly WorkerHeartbeat[]): Map<string, number> {
  const live = new Map<string, number>();
  for (const beat of fleet) {
    for (const version of beat.tasks ?? []) live.set(version, (live.get(version) ?? 0) + 1);
  }
  return live;
}

/**
 * The catalog as GET /v1/tasks shows it: per task, the version submits are
 * validated against (the newest published among those a live worker runs, else
 * the newest published), every version with its live workers, and the total.
 */
export function taskInfos(
  entries: readonly PublishedEntry[],
  fleet: readonly WorkerHeartbeat[],
): TaskInfo[] {
  const live = liveVersions(fleet);
  const byName = new Map<string, PublishedEntry[]>();
  for (const entry of entries) byName.set(entry.name, [...(byName.get(entry.name) ?? []), entry]);
  const infos: TaskInfo[] = [];
  for (const [name, list] of byName) {
    const workersOf = (e: PublishedEntry) => live.get(versionKey(name, e.fingerprint)) ?? 0;
    const ordered = [...list].sort(newestFirst);
    const current = ordered.find((e) => workersOf(e) > 0) ?? ordered[0];
    if (!current) continue;
    const versions: TaskVersion[] = ordered.map((e) => ({
      fingerprint: e.fingerprint,
      publishedAt: e.publishedAt,
      workers: workersOf(e),
    }));
    const { publishedAt: _, ...entry } = current;
    infos.push({
      ...entry,
      workers: versions.reduce((sum, v) => sum + v.workers, 0),
      versions,
    });
  }
  return infos.sort((a, b) => a.name.localeCompare(b.name));
}

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments, parse as parseYaml } from 'yaml';

/**
 * What `kubectl kustomize` would build from deploy/kubernetes, for tests on a
 * machine without kubectl (no npm package builds Kustomize). It renders the
 * part of Kustomize the overlays use and throws on anything else, so a
 * feature added to a kustomization is never silently rendered differently:
 * resources (files, folders), namespace, images, secretGenerator (envs),
 * patches (a strategic merge that only merges maps and named containers, env
 * and volumes; or a JSON patch of add / replace / remove).
 *
 * One difference, on purpose: generated Secrets keep their name, without the
 * hash Kustomize appends and writes into every reference to them alike.
 */

export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; [key: string]: unknown };
  [key: string]: unknown;
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

export interface BuildOptions {
  /** Reads a secretGenerator env file; the real ones hold credentials and are never committed. */
  readEnvFile(path: string): string;
}

interface Kustomization {
  apiVersion?: string;
  kind?: string;
  namespace?: string;
  resources?: string[];
  images?: { name: string; newName?: string; newTag?: string }[];
  secretGenerator?: { name: string; envs: string[] }[];
  patches?: { path?: string; patch?: string; target?: PatchTarget }[];
}

interface PatchTarget {
  group?: string;
  version?: string;
  kind?: string;
  name?: string;
}

const KNOWN_FIELDS = new Set([
  'apiVersion',
  'kind',
  'namespace',
  'resources',
  'images',
  'secretGenerator',
  'patches',
]);
const CLUSTER_SCOPED = new Set(['Namespace']);
/** Lists of built-in kinds that a strategic merge merges by `name` (their patchMergeKey). */
const MERGED_BY_NAME = new Set(['containers', 'initContainers', 'env', 'volumes']);

/** The manifests the kustomization in `dir` builds. */
export function kustomizeBuild(dir: string, options: BuildOptions): Manifest[] {
  const kustomization = parseYaml(
    readFileSync(join(dir, 'kustomization.yaml'), 'utf8'),
  ) as Kustomization;
  const unknown = Object.keys(kustomization).filter((field) => !KNOWN_FIELDS.has(field));
  if (unknown.length > 0) throw new Error(`${dir}: kustomization fields not rendered: ${unknown}`);

  const manifests: Manifest[] = [];
  for (const resource of kustomization.resources ?? []) {
    const path = join(dir, resource);
    if (/\.ya?ml$/.test(resource)) manifests.push(...readManifests(path));
    else manifests.push(...kustomizeBuild(path, options));
  }
  for (const { name, envs, ...rest } of kustomization.secretGenerator ?? []) {
    if (Object.keys(rest).length > 0) throw new Error(`${dir}: secretGenerator ${name}: ${rest}`);
    const data: Record<string, string> = {};
    for (const file of envs) {
      for (const [key, value] of parseEnvFile(options.readEnvFile(join(dir, file)))) {
        data[key] = Buffer.from(value).toString('base64');
      }
    }
    manifests.push({ apiVersion: 'v1', kind: 'Secret', metadata: { name }, type: 'Opaque', data });
  }
  for (const entry of kustomization.patches ?? []) {
    const text = entry.path ? readFileSync(join(dir, entry.path), 'utf8') : (entry.patch ?? '');
    const documents = parseAllDocuments(text).map((doc) => doc.toJSON() as Json);
    if (Array.isArray(documents[0])) {
      if (!entry.target) throw new Error(`${dir}: a JSON patch needs a target`);
      for (const manifest of selected(manifests, entry.target)) {
        applyJsonPatch(manifest, documents[0] as JsonObject[]);
      }
      continue;
    }
    for (const patch of documents as unknown as Manifest[]) {
      const target = entry.target ?? targetOf(patch);
      const found = selected(manifests, target);
      if (found.length === 0)
        throw new Error(`${dir}: patch matches nothing: ${JSON.stringify(target)}`);
      const builtIn = !patch.apiVersion.includes('.');
      for (const manifest of found) {
        mergeInto(manifest as unknown as JsonObject, patch as unknown as JsonObject, builtIn, '');
      }
    }
  }
  for (const image of kustomization.images ?? []) {
    for (const container of containersOf(manifests)) {
      if (container.image.replace(/[:@].*$/, '') !== image.name) continue;
      container.image = `${image.newName ?? image.name}${image.newTag ? `:${image.newTag}` : ''}`;
    }
  }
  if (kustomization.namespace) {
    for (const manifest of manifests) {
      if (!CLUSTER_SCOPED.has(manifest.kind)) manifest.metadata.namespace = kustomization.namespace;
    }
  }
  return manifests;
}

function readManifests(path: string): Manifest[] {
  return parseAllDocuments(readFileSync(path, 'utf8'))
    .map((doc) => doc.toJSON() as Manifest | null)
    .filter((doc): doc is Manifest => doc !== null);
}

/** KEY=value lines; blank lines and # comments skipped, as Kustomize reads an env file. */
function parseEnvFile(text: string): [string, string][] {
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'))
    .map((line) => {
      const equals = line.indexOf('=');
      if (equals < 1) throw new Error(`not KEY=value: ${line}`);
      return [line.slice(0, equals), line.slice(equals + 1)];
    });
}

function targetOf(patch: Manifest): PatchTarget {
  const [group, version] = patch.apiVersion.includes('/')
    ? patch.apiVersion.split('/')
    : ['', patch.apiVersion];
  return { group, version, kind: patch.kind, name: patch.metadata.name };
}

function selected(manifests: Manifest[], target: PatchTarget): Manifest[] {
  return manifests.filter((manifest) => {
    const { group, version, kind, name } = targetOf(manifest);
    return (
      (target.group === undefined || target.group === group) &&
      (target.version === undefined || target.version === version) &&
      (target.kind === undefined || target.kind === kind) &&
      (target.name === undefined || target.name === name)
    );
  });
}

function isObject(value: Json | undefined): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function mergeInto(base: JsonObject, patch: JsonObject, builtIn: boolean, path: string): void {
  for (const [key, value] of Object.entries(patch)) {
    const at = `${path}/${key}`;
    const current = base[key];
    if (value === null) delete base[key];
    else if (isObject(value) && isObject(current)) mergeInto(current, value, builtIn, at);
    else if (Array.isArray(value)) {
      if (!builtIn || !MERGED_BY_NAME.has(key) || !Array.isArray(current)) {
        throw new Error(`${at}: a list in a strategic merge patch is not rendered here`);
      }
      for (const item of value) {
        if (!isObject(item) || typeof item.name !== 'string')
          throw new Error(`${at}: item without name`);
        const match = current.find((c) => isObject(c) && c.name === item.name);
        if (isObject(match)) mergeInto(match, item, builtIn, `${at}/${item.name}`);
        else current.push(item);
      }
    } else base[key] = value;
  }
}

function applyJsonPatch(manifest: Manifest, operations: JsonObject[]): void {
  for (const { op, path, value, ...rest } of operations) {
    if (Object.keys(rest).length > 0 || typeof path !== 'string') {
      throw new Error(`JSON patch operation not rendered here: ${JSON.stringify(rest)}`);
    }
    const keys = path
      .split('/')
      .slice(1)
      .map((key) => key.replaceAll('~1', '/').replaceAll('~0', '~'));
    const last = keys.pop() as string;
    let parent = manifest as unknown as Json;
    for (const key of keys) {
      const next: Json | undefined = Array.isArray(parent)
        ? parent[Number(key)]
        : (parent as JsonObject)[key];
      if (next === undefined) throw new Error(`JSON patch path not found: ${path}`);
      parent = next;
    }
    const container = parent as JsonObject | Json[];
    if (op === 'remove') {
      if (Array.isArray(container)) container.splice(Number(last), 1);
      else delete container[last];
    } else if (op === 'replace' || op === 'add') {
      if (op === 'replace' && !(last in container))
        throw new Error(`nothing to replace at ${path}`);
      if (Array.isArray(container)) {
        if (last === '-') container.push(value as Json);
        else container.splice(Number(last), op === 'replace' ? 1 : 0, value as Json);
      } else container[last] = value as Json;
    } else throw new Error(`JSON patch op not rendered here: ${op}`);
  }
}

export interface Container {
  name: string;
  image: string;
  [key: string]: unknown;
}

/** Every container of every pod template (Deployments). */
export function containersOf(manifests: Manifest[]): Container[] {
  return manifests.flatMap((manifest) => {
    const pod = (manifest.spec as { template?: { spec?: { containers?: Container[] } } })?.template
      ?.spec;
    return pod?.containers ?? [];
  });
}

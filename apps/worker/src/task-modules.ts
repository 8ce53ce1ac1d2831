import { existsSync, readFileSync, statSync } from 'node:fs';
import { registerHooks } from 'node:module';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CatalogEntry } from '@offload/contract';
import {
  catalogEntryOf,
  isTaskDefinition,
  type TaskDefinition,
  withFingerprint,
} from '@offload/tasks';
import { z } from 'zod';
import { describePythonTasks, PythonLoadError, type PythonOptions } from './python-executor.ts';

/**
 * Loads the task modules OFFLOAD_TASKS lists (DESIGN.md §2): files anywhere on
 * disk, task projects (a folder with a package.json), package names, and
 * `@offload/tasks/builtin`. The worker's main thread and every executor thread
 * load the same list with this one function, so both see the same tasks.
 */

/** What OFFLOAD_TASKS names when it is unset. */
export const BUILTIN_MODULE = '@offload/tasks/builtin';

/** A module that cannot serve: the worker stops at start with this one line. */
export class TaskModuleError extends Error {
  override readonly name = 'TaskModuleError';
  constructor(
    readonly entry: string,
    problem: string,
  ) {
    super(`OFFLOAD_TASKS entry "${entry}": ${problem}`);
  }
}

/** Packages a task file imports without installing them next to itself. */
const PROVIDED = [/^@offload\/tasks(\/.*)?$/, /^zod(\/.*)?$/];
let hooked = false;

/**
 * A task file outside this repository imports `@offload/tasks` and `zod`
 * without an install in its folder (DESIGN.md §2). Node resolves bare names
 * from the importing file, so those two fall back to Offload's own copies when
 * the file's folder has none; a project that installs its own keeps them.
 */
function provideOffloadPackages(): void {
  if (hooked) return;
  hooked = true;
  registerHooks({
    resolve(specifier, context, nextResolve) {
      try {
        return nextResolve(specifier, context);
      } catch (err) {
        // ESM's code, and CommonJS' (tsx runs a .ts file outside any "type": "module" package as CommonJS).
        const code = (err as { code?: string }).code;
        const notFound = code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND';
        if (!notFound || !PROVIDED.some((re) => re.test(specifier))) throw err;
        // Resolved from here, not through nextResolve: CommonJS resolution ignores a changed parentURL.
        return { url: import.meta.resolve(specifier), shortCircuit: true };
      }
    },
  });
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$/;
/** BullMQ builds keys from queue names: no colon, and a hash tag brace would split the cluster slot. */
const QUEUE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const zodSchema = z.custom<z.ZodType>(
  (value) =>
    typeof value === 'object' &&
    value !== null &&
    '_zod' in value &&
    typeof (value as { safeParse?: unknown }).safeParse === 'function',
  'must be a zod schema',
);
/** What any task must hold to be served; the same bounds as the API's per-job options. */
const taskShape = z.object({
  name: z.string().regex(NAME, 'letters, digits and . _ : - (at most 100)'),
  description: z.string().max(2000),
  queue: z.string().regex(QUEUE, 'letters, digits and . _ - (at most 64)'),
  defaults: z.object({
    timeoutMs: z
      .number()
      .int()
      .min(100)
      .max(24 * 3600 * 1000),
    attempts: z.number().int().min(1).max(25),
    backoff: z.object({
      type: z.enum(['fixed', 'exponential']),
      delay: z.number().int().min(0),
    }),
  }),
  maxInputBytes: CatalogEntry.shape.maxInputBytes,
});
/** A TypeScript task: zod schemas and a function. */
const definitionShape = taskShape.extend({
  input: zodSchema,
  output: zodSchema,
  run: z.custom<(...args: unknown[]) => unknown>((v) => typeof v === 'function', 'not a function'),
});
/** A Python task, as its executor describes it: JSON Schemas, and the file that declares it. */
const pythonTaskShape = taskShape.extend({
  input: z.record(z.string(), z.unknown()),
  output: z.record(z.string(), z.unknown()),
  file: z.string(),
});

/** An export that is no task but has a task's look: a plain object literal that skipped defineTask. */
function looksLikeTask(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false;
  return 'run' in value && ('input' in value || 'name' in value);
}

/** Loads every entry; throws TaskModuleError for the first that cannot serve. */
export async function loadTaskModules(
  entries: readonly string[],
  cwd: string = process.cwd(),
): Promise<TaskDefinition[]> {
  provideOffloadPackages();
  const byName = new Map<string, { task: TaskDefinition; entry: string }>();
  for (const entry of entries) {
    for (const task of await loadModule(entry, cwd)) {
      const earlier = byName.get(task.name);
      if (earlier && earlier.task !== task) {
        const where =
          earlier.entry === entry ? 'twice in this module' : `also in "${earlier.entry}"`;
        throw new TaskModuleError(entry, `task "${task.name}" is defined ${where}`);
      }
      byName.set(task.name, { task, entry });
    }
  }
  return [...byName.values()].map(({ task }) => task);
}

/** A Python tasks file: run by Python executors (python-executor.ts), not loaded into Node. */
export const isPythonEntry = (entry: string): boolean => entry.endsWith('.py');

/** What a worker runs: the catalog it publishes, and which executors run which tasks. */
export interface WorkerTasks {
  catalog: CatalogEntry[];
  typescript: { entries: string[]; tasks: string[] };
  /** `python`: the interpreter the executors start with (sys.executable of OFFLOAD_PYTHON). */
  python: { files: string[]; tasks: string[]; python: string };
}

/**
 * Loads every OFFLOAD_TASKS entry, TypeScript and Python: TypeScript modules
 * in this thread, Python files by asking a Python executor what they declare.
 * Throws TaskModuleError for the first entry that cannot serve, including a
 * Python schema the API's validator would refuse and a name both kinds declare.
 */
export async function loadWorkerTasks(
  entries: readonly string[],
  options: Omit<PythonOptions, 'files'>,
): Promise<WorkerTasks> {
  const typescript = entries.filter((entry) => !isPythonEntry(entry));
  const files = entries.filter(isPythonEntry);
  const definitions = typescript.length > 0 ? await loadTaskModules(typescript, options.cwd) : [];
  const catalog = definitions.map(catalogEntryOf);
  const declaredIn = new Map(definitions.map((task) => [task.name, typescript.join(', ')]));
  const pythonTasks: string[] = [];
  let interpreter = options.python;
  if (files.length > 0) {
    for (const file of files) {
      if (!existsSync(resolve(options.cwd, file))) {
        throw new TaskModuleError(file, `no such file: ${resolve(options.cwd, file)}`);
      }
    }
    const ready = await describePythonTasks({ ...options, files }).catch((err: Error) => {
      throw new TaskModuleError(
        err instanceof PythonLoadError ? err.file : files.join(','),
        err.message,
      );
    });
    interpreter = ready.python || options.python;
    // Loaded only for Python files: executor threads load this module too, and need no Ajv.
    const { createSchemaValidator } = await import('@offload/contract/json-schema');
    const validator = createSchemaValidator();
    for (const raw of ready.tasks) {
      const checked = pythonTaskShape.safeParse(raw);
      const file = typeof raw.file === 'string' ? raw.file : files.join(',');
      if (!checked.success) {
        const issue = checked.error.issues[0];
        throw new TaskModuleError(
          file,
          `a task is not valid: ${issue?.path.join('.')} ${issue?.message}`,
        );
      }
      const { file: _, ...entry } = checked.data;
      for (const which of ['input', 'output'] as const) {
        try {
          validator.compile(entry[which]);
        } catch (err) {
          throw new TaskModuleError(
            file,
            `task "${entry.name}": ${which} is not a valid JSON Schema: ${(err as Error).message}`,
          );
        }
      }
      if (declaredIn.has(entry.name)) {
        throw new TaskModuleError(
          file,
          `task "${entry.name}" is also defined in "${declaredIn.get(entry.name)}"`,
        );
      }
      declaredIn.set(entry.name, file);
      catalog.push(withFingerprint(entry));
      pythonTasks.push(entry.name);
    }
  }
  return {
    catalog,
    typescript: { entries: typescript, tasks: definitions.map((task) => task.name) },
    python: { files, tasks: pythonTasks, python: interpreter },
  };
}

async function loadModule(entry: string, cwd: string): Promise<TaskDefinition[]> {
  let namespace: Record<string, unknown>;
  try {
    // A literal import for the built-ins, so a production bundle carries them inside.
    namespace =
      entry === BUILTIN_MODULE
        ? await import('@offload/tasks/builtin')
        : await import(locate(entry, cwd));
  } catch (err) {
    if (err instanceof TaskModuleError) throw err;
    const message = err instanceof Error ? err.message : String(err);
    throw new TaskModuleError(entry, `failed to load: ${message.split('\n')[0]}`);
  }
  const tasks = new Set<TaskDefinition>();
  for (const [name, value] of Object.entries(namespace)) {
    if (isTaskDefinition(value)) {
      const checked = definitionShape.safeParse(value);
      if (!checked.success) {
        const issue = checked.error.issues[0];
        const at = issue?.path.join('.') || '(definition)';
        throw new TaskModuleError(
          entry,
          `export "${name}" is not a valid task: ${at} ${issue?.message}`,
        );
      }
      tasks.add(value);
    } else if (looksLikeTask(value)) {
      throw new TaskModuleError(
        entry,
        `export "${name}" looks like a task but was not made with defineTask from @offload/tasks`,
      );
    }
  }
  if (tasks.size === 0)
    throw new TaskModuleError(entry, 'defines no task (no export made with defineTask)');
  return [...tasks];
}

/** The URL to import for an entry: a file, a folder with a package.json, or a package name. */
function locate(entry: string, cwd: string): string {
  const pathLike = isAbsolute(entry) || entry.startsWith('.') || /\.(c|m)?(t|j)s$/.test(entry);
  if (pathLike) {
    const path = resolve(cwd, entry);
    if (!existsSync(path)) throw new TaskModuleError(entry, `no such file or folder: ${path}`);
    return pathToFileURL(statSync(path).isDirectory() ? packageEntry(entry, path, '.') : path).href;
  }
  const parts = entry.split('/');
  const nameParts = parts[0]?.startsWith('@') ? 2 : 1;
  const packageName = parts.slice(0, nameParts).join('/');
  const subpath = ['.', ...parts.slice(nameParts)].join('/');
  for (let dir = cwd; ; dir = dirname(dir)) {
    const folder = join(dir, 'node_modules', packageName);
    if (existsSync(join(folder, 'package.json'))) {
      return pathToFileURL(packageEntry(entry, folder, subpath)).href;
    }
    if (dirname(dir) === dir) break;
  }
  throw new TaskModuleError(
    entry,
    `no file, folder or installed package has this name (from ${cwd})`,
  );
}

/** The file a package exports at `subpath` ("." for its main entry), by its package.json. */
function packageEntry(entry: string, folder: string, subpath: string): string {
  let manifest: { exports?: unknown; main?: string };
  try {
    manifest = JSON.parse(readFileSync(join(folder, 'package.json'), 'utf8'));
  } catch {
    throw new TaskModuleError(entry, `${folder} has no readable package.json`);
  }
  const exported = pickExport(manifest.exports, subpath);
  const file = exported ?? (subpath === '.' ? (manifest.main ?? 'index.js') : subpath);
  const path = resolve(folder, file);
  if (!existsSync(path))
    throw new TaskModuleError(entry, `its package.json points at ${path}, which does not exist`);
  return path;
}

/** The target of `exports` for a subpath, preferring the conditions a Node ESM import uses. */
function pickExport(exports: unknown, subpath: string): string | undefined {
  if (exports === undefined || exports === null) return undefined;
  if (typeof exports === 'string') return subpath === '.' ? exports : undefined;
  if (typeof exports !== 'object') return undefined;
  const map = exports as Record<string, unknown>;
  const keys = Object.keys(map);
  // Either a map of subpaths (".", "./x") or, for ".", a map of conditions.
  const target = keys.some((k) => k.startsWith('.'))
    ? map[subpath]
    : subpath === '.'
      ? map
      : undefined;
  return conditionTarget(target);
}

function conditionTarget(target: unknown): string | undefined {
  if (typeof target === 'string') return target;
  if (typeof target !== 'object' || target === null) return undefined;
  const conditions = target as Record<string, unknown>;
  for (const condition of ['import', 'node', 'default']) {
    const found = conditionTarget(conditions[condition]);
    if (found) return found;
  }
  return undefined;
}

import type { FieldError, TaskInfo } from '@offload/contract';
import { createSchemaValidator } from '@offload/contract/json-schema';
import { isRedisUnavailable, type JobQueues, type PublishedEntry, taskInfos } from '@offload/queue';
import type { ErrorObject, ValidateFunction } from 'ajv/dist/2020.js';
import type { Logger } from 'pino';
import { MAX_FIELD_ERRORS } from './schemas.ts';

/**
 * The API's view of the task catalog the workers publish (DESIGN.md §2). The
 * API imports no task code: it validates submits against the published JSON
 * Schema, and learns a new task or version within one refresh (REFRESH_MS)
 * of a worker publishing it, without a restart.
 */

/** How often the catalog's change counter and the fleet are read, ms: a new task is known within this. */
export const REFRESH_MS = 1000;

export interface CatalogTask {
  info: TaskInfo;
  /** Field errors of an input under this task's published input schema; empty when it fits. */
  check(input: unknown): FieldError[];
}

/** Least time between two refreshes caused by an unknown task name, ms. */
const MISS_REFRESH_MS = 100;

export class TaskCatalog {
  private tasks = new Map<string, CatalogTask>();
  private entries: PublishedEntry[] = [];
  private version: string | null = null;
  private readonly validators = new Map<string, ValidateFunction>();
  private readonly warned = new Set<string>();
  private readonly ajv = createSchemaValidator();
  private timer: NodeJS.Timeout | null = null;
  /** The refresh under way, which every caller shares, and when the latest began (performance.now()). */
  private inflight: Promise<void> | null = null;
  private refreshedAt = 0;
  /** The validating version of every task, as `name fingerprint` pairs. */
  private signature = '';
  /** Bumped whenever a task or its validating version changes; the OpenAPI document is rebuilt then. */
  generation = 0;

  constructor(
    private readonly jobs: JobQueues,
    private readonly logger: Logger,
  ) {}

  /** Refreshes every REFRESH_MS until close(). */
  start(): this {
    const tick = () => {
      this.refresh().catch((err: Error) => {
        if (!isRedisUnavailable(err)) this.logger.warn({ err: err.message }, 'catalog not read');
      });
    };
    tick();
    this.timer = setInterval(tick, REFRESH_MS);
    this.timer.unref();
    return this;
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** Every task, by name. Throws RedisUnavailableError when the catalog was never read and Redis is down. */
  async list(): Promise<TaskInfo[]> {
    await this.ready();
    return [...this.tasks.values()].map((task) => task.info);
  }

  /**
   * The task by name. A name not in the catalog makes one early refresh (at
   * most every MISS_REFRESH_MS), so a task published since the last refresh,
   * by a worker that has just started, is accepted at once rather than up to a
   * second later.
   */
  async find(name: string): Promise<CatalogTask | undefined> {
    await this.ready();
    if (!this.tasks.has(name)) await this.readSince(performance.now());
    return this.tasks.get(name);
  }

  /**
   * Resolves once a read that began at or after `since` has finished, so what
   * was published before `since` is known. A read already under way that began
   * earlier may predate the publication: it is awaited, then another begins.
   * Misses share reads, and start one at most every MISS_REFRESH_MS.
   */
  private async readSince(since: number): Promise<void> {
    while (this.refreshedAt < since) {
      if (this.inflight) {
        await this.inflight.catch(() => {});
        continue;
      }
      const wait = this.refreshedAt + MISS_REFRESH_MS - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      else await this.refresh();
    }
    if (this.inflight) await this.inflight;
  }

  /** Resolves once the catalog has been read at least once (a first submit waits for it, or gets a 503). */
  private ready(): Promise<void> {
    return this.version !== null ? Promise.resolve() : this.refresh();
  }

  /** Reads the catalog; concurrent callers share one read. */
  refresh(): Promise<void> {
    if (!this.inflight) {
      this.refreshedAt = performance.now();
      this.inflight = this.read().finally(() => {
        this.inflight = null;
      });
    }
    return this.inflight;
  }

  /** Reads the counter; the entries only when it moved; the fleet (live workers per task) every time. */
  private async read(): Promise<void> {
    const version = await this.jobs.catalogVersion();
    if (version !== this.version) {
      const snapshot = await this.jobs.readCatalog();
      for (const field of snapshot.malformed) {
        if (this.warned.has(field)) continue;
        this.warned.add(field);
        this.logger.warn({ field }, 'catalog entry ignored: it does not parse as a task version');
      }
      this.entries = snapshot.entries;
      this.jobs.useQueues(new Set(snapshot.entries.map((entry) => entry.queue)));
      // Validators of versions the catalog no longer holds are never asked for again.
      const held = new Set(snapshot.entries.map((entry) => entry.fingerprint));
      for (const fingerprint of this.validators.keys()) {
        if (!held.has(fingerprint)) this.validators.delete(fingerprint);
      }
    }
    const infos = taskInfos(this.entries, await this.jobs.readFleet());
    const signature = infos.map((info) => `${info.name} ${info.fingerprint}`).join(',');
    if (signature !== this.signature) this.generation++;
    this.signature = signature;
    this.tasks = new Map(infos.map((info) => [info.name, this.task(info)]));
    this.version = version;
  }

  private task(info: TaskInfo): CatalogTask {
    return {
      info,
      check: (input) => {
        const validate = this.validator(info);
        if (!validate)
          return [{ path: 'input', message: 'the task’s published schema is unusable' }];
        if (validate(input)) return [];
        return (validate.errors ?? []).slice(0, MAX_FIELD_ERRORS).map(fieldError);
      },
    };
  }

  /** Compiled once per version (fingerprint), not per request; null for a schema Ajv refuses. */
  private validator(info: TaskInfo): ValidateFunction | null {
    const known = this.validators.get(info.fingerprint);
    if (known) return known;
    try {
      const { $schema: _, ...schema } = info.input;
      const validate = this.ajv.compile(schema);
      this.validators.set(info.fingerprint, validate);
      return validate;
    } catch (err) {
      if (!this.warned.has(info.fingerprint)) {
        this.warned.add(info.fingerprint);
        this.logger.warn(
          { task: info.name, fingerprint: info.fingerprint, err: (err as Error).message },
          'task input schema does not compile; its submits are refused',
        );
      }
      return null;
    }
  }
}

/** An Ajv error as the problem document's field error, at its path under `input`. */
function fieldError(error: ErrorObject): FieldError {
  const path = ['input', ...error.instancePath.split('/').slice(1).map(unescapePointer)];
  const params = error.params as Record<string, unknown>;
  if (error.keyword === 'additionalProperties') {
    return {
      path: [...path, String(params.additionalProperty)].join('.'),
      message: 'unknown field',
    };
  }
  if (error.keyword === 'required') {
    return { path: [...path, String(params.missingProperty)].join('.'), message: 'is required' };
  }
  return { path: path.join('.'), message: error.message ?? 'is invalid' };
}

const unescapePointer = (part: string) => part.replace(/~1/g, '/').replace(/~0/g, '~');

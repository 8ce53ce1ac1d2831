import { createHash } from 'node:crypto';
import type { CatalogEntry } from '@offload/contract';
import { z } from 'zod';
import { binaryOutputJsonSchema, isBinaryOutput } from './binary.ts';
import type { TaskDefinition } from './define-task.ts';

/**
 * What a worker publishes about a task (DESIGN.md §2): its schemas as JSON
 * Schema, for the API to validate with and the OpenAPI document to show.
 * A zod check JSON Schema cannot say (a refinement, a transform) is checked
 * by the worker alone, which validates again with the task's own schema.
 */
export function catalogEntryOf(task: TaskDefinition): CatalogEntry {
  return withFingerprint({
    name: task.name,
    description: task.description,
    queue: task.queue,
    input: z.toJSONSchema(task.input, { io: 'input', unrepresentable: 'any' }),
    output: isBinaryOutput(task.output)
      ? binaryOutputJsonSchema()
      : z.toJSONSchema(task.output, { io: 'output', unrepresentable: 'any' }),
    defaults: task.defaults,
    ...(task.maxInputBytes !== undefined && { maxInputBytes: task.maxInputBytes }),
  });
}

/** A catalog entry whose schemas are JSON Schema already (a Python task's), fingerprinted. */
export function withFingerprint(entry: Omit<CatalogEntry, 'fingerprint'>): CatalogEntry {
  return { ...entry, fingerprint: fingerprintOf(entry.input, entry.output) };
}

/** 16 hex digits of the sha256 of both schemas: equal schemas, equal fingerprints, on any machine. */
function fingerprintOf(input: object, output: object): string {
  return createHash('sha256')
    .update(JSON.stringify([input, output]))
    .digest('hex')
    .slice(0, 16);
}

import { BinaryResult as BinaryDescriptor, isMediaType } from '@offload/contract/binary-result';
import { z } from 'zod';

/**
 * Bytes a task returns as its result, with their media type: a PNG, a PDF,
 * a ZIP. They are kept in the blob store, not in Redis, and served as they
 * are by `GET /v1/jobs/{id}/result`; the job's `result` shows a descriptor
 * (`{ contentType, size, url }`) instead. Make one with `binary()`.
 */
export interface BinaryResult {
  readonly data: Uint8Array;
  readonly contentType: string;
}

/**
 * Marks what binary() made and the schema binaryOutput() made. `Symbol.for`:
 * a task file outside this repository may load its own copy of this package
 * (as for defineTask's mark).
 */
const BINARY_MARK = Symbol.for('offload.binary');
const BINARY_OUTPUT_MARK = Symbol.for('offload.binary-output');

/**
 * A binary result: `return binary(png, 'image/png')`. `data` is handed to the
 * worker as it is (its memory moved, not copied, when it is a whole
 * ArrayBuffer); throws a TypeError for a content type that is not a media
 * type (`type/subtype`, parameters allowed).
 */
export function binary(data: Uint8Array | ArrayBuffer, contentType: string): BinaryResult {
  if (!isMediaType(contentType)) {
    throw new TypeError(`binary(): "${contentType}" is not a media type such as image/png`);
  }
  const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
  const result = { data: bytes, contentType };
  Object.defineProperty(result, BINARY_MARK, { value: true });
  return result;
}

/** True for a value binary() made, whichever copy of this package made it. */
export function isBinaryResult(value: unknown): value is BinaryResult {
  return typeof value === 'object' && value !== null && BINARY_MARK in value;
}

/**
 * The `output` of a task that returns bytes: `output: binaryOutput()`, and
 * `run` returns `binary(data, contentType)`. The catalog publishes the
 * descriptor's schema (what the job's `result` shows) as its output.
 */
export function binaryOutput(): z.ZodType<BinaryResult> {
  const schema = z.custom<BinaryResult>(isBinaryResult, {
    message: 'expected binary(data, contentType)',
  });
  Object.defineProperty(schema, BINARY_OUTPUT_MARK, { value: true });
  return schema;
}

/** True for a schema binaryOutput() made. */
export function isBinaryOutput(schema: z.ZodType): boolean {
  return BINARY_OUTPUT_MARK in schema;
}

/** The JSON Schema a binary task publishes as its output: the descriptor its jobs' `result` shows. */
export const binaryOutputJsonSchema = () => z.toJSONSchema(BinaryDescriptor, { io: 'output' });

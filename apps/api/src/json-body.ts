import { ApiError } from '@offload/problem';
import type { MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { every } from 'hono/combine';

// The JSON media types the request validator reads (`application/json`, `application/x+json`,
// with parameters such as `; charset=utf-8`); anything else would reach it as an empty body.
const JSON_TYPE = /^application\/([a-z-.]+\+)?json(;\s*[a-zA-Z0-9-]+=([^;]+))*$/i;

export interface JsonBodyOptions {
  /** Largest body, bytes; larger answers 413 `payload_too_large`. */
  maxBytes: number;
  /** Deepest nesting of objects and arrays; deeper answers 400 `json_too_deep`. */
  maxDepth: number;
}

/**
 * Reads a JSON request body within limits, or throws the matching problem:
 * 415 not JSON, 413 too large, 400 too deep, malformed or cut short by the client. The parsed value is
 * left in Hono's body cache, where the route's validator finds it.
 */
export function jsonBody({ maxBytes, maxDepth }: JsonBodyOptions): MiddlewareHandler {
  const limit = bodyLimit({
    maxSize: maxBytes,
    onError: () => {
      throw new ApiError('payload_too_large', `The body is larger than ${maxBytes} bytes`);
    },
  });
  return every(limit, async function readJsonBody(c, next) {
    if (!JSON_TYPE.test(c.req.header('content-type') ?? '')) {
      throw new ApiError('unsupported_media_type', 'Send the body as application/json');
    }
    const text = await c.req.text().catch((err: unknown) => {
      // A client that closes its connection mid-upload is no fault of ours: a 4xx, not
      // an error-level log line and a 500 in the metrics for every dropped upload.
      if (c.req.raw.signal.aborted) {
        throw new ApiError(
          'request_aborted',
          'The connection closed before the whole body arrived',
        );
      }
      throw err;
    });
    // Checked before parsing: a deeply nested value would make every later recursive walk
    // (validation, hashing, serialising) deep too.
    if (nestsDeeperThan(text, maxDepth)) {
      throw new ApiError(
        'json_too_deep',
        `The body nests objects or arrays deeper than ${maxDepth}`,
      );
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw new ApiError('malformed_json', `The body is not valid JSON: ${(err as Error).message}`);
    }
    c.req.bodyCache.json = Promise.resolve(value);
    await next();
  });
}

const QUOTE = 34;
const BACKSLASH = 92;
const OPEN = new Set([123, 91]); // { [
const CLOSE = new Set([125, 93]); // } ]

/**
 * Whether a JSON text nests objects and arrays deeper than `max`: one pass over
 * the characters, skipping strings, without parsing or recursion. Hand-written
 * because JSON.parse has no depth option and the parsers that do are streaming
 * libraries far larger than this loop.
 */
export function nestsDeeperThan(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (inString) {
      if (ch === BACKSLASH) i++;
      else if (ch === QUOTE) inString = false;
    } else if (ch === QUOTE) {
      inString = true;
    } else if (OPEN.has(ch)) {
      if (++depth > max) return true;
    } else if (CLOSE.has(ch)) {
      depth--;
    }
  }
  return false;
}

import { z } from 'zod';

/**
 * A binary result (DESIGN.md §3): a task that returns bytes (`binary(bytes,
 * contentType)` in @offload/tasks) has them kept in the blob store, outside
 * Redis. Its JobView's `result` is this descriptor, never the bytes;
 * `GET {url}` answers the bytes themselves with `Content-Type: contentType`.
 */
export const BinaryResult = z
  .strictObject({
    /** The media type the task gave, e.g. `image/png`. */
    contentType: z.string(),
    /** Length of the bytes, bytes. */
    size: z.number().int().min(0),
    /** Where the bytes are served: `/v1/jobs/{id}/result`, relative to the API's base URL. */
    url: z.string(),
  })
  .meta({
    id: 'BinaryResult',
    description:
      'The result of a task that returned bytes: GET `url` (relative to the API) answers them with this content type and size',
  });
export type BinaryResult = z.infer<typeof BinaryResult>;

/** Where GET answers a job's result alone (JSON, or a binary result's bytes). */
export function resultUrl(jobId: string): string {
  return `/v1/jobs/${jobId}/result`;
}

/**
 * A media type as a task may give it: `type/subtype` with optional
 * parameters (`text/csv; charset=utf-8`), no line breaks, at most 255
 * characters (RFC 6838's token characters; a header value that cannot
 * smuggle a second header).
 */
const MEDIA_TYPE =
  /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}(\s*;\s*[A-Za-z0-9!#$&^_.+-]+=("[^"\r\n]*"|[A-Za-z0-9!#$&^_.+-]+))*$/;
export function isMediaType(text: string): boolean {
  return text.length <= 255 && MEDIA_TYPE.test(text);
}

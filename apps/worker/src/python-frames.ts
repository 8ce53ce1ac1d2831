import type { Readable } from 'node:stream';

/**
 * Splits what a Python executor writes on fd 4 into messages
 * (sdk/python/PROTOCOL.md): JSON lines, except that a `done` line with a
 * `binary` field is followed by exactly `bytes` raw bytes, the result
 * itself, which are never parsed as JSON nor encoded as text. Bytes past
 * `maxBinaryBytes` are read and dropped as they arrive, so an oversized
 * result never sits whole in the worker's memory: its `done` then carries
 * no data and the pool fails it with `result_too_large` by its length.
 * Hand-written: a line reader (node:readline) cannot switch to raw bytes
 * in the middle of a stream.
 */
export function readFrames(
  stream: Readable,
  onMessage: (message: unknown) => void,
  maxBinaryBytes = Number.POSITIVE_INFINITY,
): void {
  /** Pieces of the line being read, joined once its newline arrives. */
  let line: Buffer[] = [];
  let body: {
    header: Record<string, unknown> & { binary: { contentType: string } };
    data: Uint8Array<ArrayBuffer> | null;
    filled: number;
    left: number;
  } | null = null;

  const finishBody = () => {
    if (!body) return;
    const { header, data } = body;
    body = null;
    onMessage({
      ...header,
      result: null,
      binary: { contentType: header.binary.contentType, data: data ?? new Uint8Array(0) },
    });
  };

  stream.on('data', (chunk: Buffer) => {
    let at = 0;
    while (at < chunk.length) {
      if (body) {
        const take = Math.min(body.left, chunk.length - at);
        body.data?.set(chunk.subarray(at, at + take), body.filled);
        body.filled += take;
        body.left -= take;
        at += take;
        if (body.left === 0) finishBody();
        continue;
      }
      const newline = chunk.indexOf(10, at);
      if (newline < 0) {
        line.push(chunk.subarray(at));
        break;
      }
      line.push(chunk.subarray(at, newline));
      at = newline + 1;
      const text = Buffer.concat(line).toString('utf8');
      line = [];
      let message: unknown;
      try {
        message = JSON.parse(text);
      } catch {
        continue;
      }
      if (!isBinaryHeader(message)) {
        onMessage(message);
        continue;
      }
      const size = message.bytes;
      body = {
        header: message,
        data: size <= maxBinaryBytes ? new Uint8Array(size) : null,
        filled: 0,
        left: size,
      };
      if (size === 0) finishBody();
    }
  });
}

function isBinaryHeader(
  message: unknown,
): message is Record<string, unknown> & { bytes: number; binary: { contentType: string } } {
  if (typeof message !== 'object' || message === null) return false;
  const { type, bytes, binary } = message as Record<string, unknown>;
  return (
    type === 'done' &&
    Number.isSafeInteger(bytes) &&
    (bytes as number) >= 0 &&
    typeof binary === 'object' &&
    binary !== null &&
    typeof (binary as { contentType?: unknown }).contentType === 'string'
  );
}

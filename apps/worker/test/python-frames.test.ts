import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { readFrames } from '../src/python-frames.ts';

/** Writes `parts` one chunk each (as pipe reads may cut them anywhere) and collects the messages. */
async function framesOf(parts: Buffer[], maxBinaryBytes?: number): Promise<unknown[]> {
  const stream = new PassThrough();
  const messages: unknown[] = [];
  readFrames(stream, (message) => messages.push(message), maxBinaryBytes);
  for (const part of parts) stream.write(part);
  stream.end();
  await new Promise((resolve) => stream.on('end', resolve));
  return messages;
}

const bytes = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0a, 0x0d, 0x0a, 0x7b]);
const wire = Buffer.concat([
  Buffer.from('{"type":"progress","value":50}\n'),
  Buffer.from(`{"type":"done","bytes":${bytes.length},"binary":{"contentType":"image/png"}}\n`),
  bytes,
  Buffer.from('{"type":"log","line":"next"}\n'),
]);

describe('the Python executor stream (fd 4)', () => {
  it('reads JSON lines and the raw bytes after a binary done, however the pipe cuts them', async () => {
    for (const size of [1, 3, 7, wire.length]) {
      const parts: Buffer[] = [];
      for (let at = 0; at < wire.length; at += size) parts.push(wire.subarray(at, at + size));
      const messages = await framesOf(parts);
      expect(messages, `chunks of ${size}`).toEqual([
        { type: 'progress', value: 50 },
        {
          type: 'done',
          bytes: bytes.length,
          result: null,
          binary: { contentType: 'image/png', data: new Uint8Array(bytes) },
        },
        { type: 'log', line: 'next' },
      ]);
    }
  });

  it('drops the bytes of a result past the bound as they arrive, keeping its length for the pool to refuse', async () => {
    const [, done, after] = await framesOf([wire], 4);
    expect(done).toMatchObject({ bytes: bytes.length, binary: { data: new Uint8Array(0) } });
    expect(after).toEqual({ type: 'log', line: 'next' });
  });
});

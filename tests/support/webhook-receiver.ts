import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request a receiver took, as a webhook consumer would see it. */
export interface Received {
  path: string;
  headers: Record<string, string>;
  body: string;
  /** When its body had arrived, ms since epoch. */
  at: number;
}

/**
 * A real HTTP receiver on 127.0.0.1 whose path says how it answers:
 * `/ok/<tag>` 200; `/fail/<n>/<tag>` 500 for the first n requests, then 200;
 * `/gone/<tag>` 410; `/hang/<tag>` never answers; `/hang-once/<tag>` never
 * answers the first request, 200 afterwards; `/slow/<ms>/<tag>` answers
 * 200 after ms; `/redirect/<tag>` 302 to `/ok/redirected` (a private address);
 * `/huge/<tag>` 200 with a 64 MB body.
 */
export async function startReceiver() {
  const received: Received[] = [];
  const counts = new Map<string, number>();
  const hanging = new Set<ServerResponse>();
  let base = '';
  const handle = (req: IncomingMessage, res: ServerResponse, body: string) => {
    const path = req.url ?? '/';
    received.push({ path, headers: req.headers as Record<string, string>, body, at: Date.now() });
    const [, kind, arg] = path.split('/');
    const seen = (counts.get(path) ?? 0) + 1;
    counts.set(path, seen);
    switch (kind) {
      case 'fail':
        res.writeHead(seen <= Number(arg) ? 500 : 200).end();
        return;
      case 'gone':
        res.writeHead(410).end();
        return;
      case 'hang-once':
        if (seen > 1) {
          res.writeHead(200).end();
          return;
        }
        hanging.add(res);
        res.on('close', () => hanging.delete(res));
        return;
      case 'hang':
        hanging.add(res);
        res.on('close', () => hanging.delete(res));
        return;
      case 'slow':
        setTimeout(() => res.writeHead(200).end(), Number(arg));
        return;
      case 'redirect':
        res.writeHead(302, { location: `${base}/ok/redirected` }).end();
        return;
      case 'huge': {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        const chunk = randomBytes(1024 * 1024);
        let sent = 0;
        const more = () => {
          while (sent < 64) {
            sent++;
            if (!res.write(chunk)) return void res.once('drain', more);
          }
          res.end();
        };
        res.on('error', () => {});
        more();
        return;
      }
      default:
        res.writeHead(200).end('thanks');
    }
  };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => handle(req, res, Buffer.concat(chunks).toString()));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: base,
    received,
    /** Requests to `path` so far. */
    to: (path: string) => received.filter((r) => r.path === path),
    /** Requests held open by `/hang/…` right now. */
    hangingNow: () => hanging.size,
    /** Resolves with the requests to `path` once there are `count`, polling; fails after `timeoutMs`. */
    async waitFor(path: string, count = 1, timeoutMs = 30_000): Promise<Received[]> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const got = received.filter((r) => r.path === path);
        if (got.length >= count) return got;
        if (Date.now() > deadline) {
          throw new Error(`${path}: ${got.length} of ${count} requests in ${timeoutMs} ms`);
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

import { Agent, request } from 'node:http';
import { sleep, wallClockMs } from './stats.ts';

export interface HttpAnswer {
  status: number;
  body: string;
}

/**
 * A keep-alive HTTP/1.1 client on node:http: lighter per request than fetch,
 * so the load generator takes less of the cores it shares with what it measures.
 */
/** Longest a request may take before it counts as failed, ms: a wedged server must not hang the bench. */
const REQUEST_TIMEOUT_MS = 35_000;

export class HttpClient {
  private readonly agent: Agent;
  private readonly url: URL;

  constructor(
    baseUrl: string,
    maxSockets = 64,
    /** Sent with every request, e.g. an `authorization` header. */
    private readonly headers: Record<string, string> = {},
  ) {
    this.url = new URL(baseUrl);
    this.agent = new Agent({ keepAlive: true, maxSockets });
  }

  send(method: string, path: string, body?: unknown): Promise<HttpAnswer> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = request(
        {
          agent: this.agent,
          host: this.url.hostname,
          port: this.url.port,
          method,
          path,
          headers: {
            ...this.headers,
            ...(payload && {
              'content-type': 'application/json',
              'content-length': Buffer.byteLength(payload),
            }),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }),
          );
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.setTimeout(REQUEST_TIMEOUT_MS, () =>
        req.destroy(new Error(`${method} ${path} timed out`)),
      );
      req.end(payload);
    });
  }

  /** Sends and parses the JSON answer; throws unless the status is one of `expected`. */
  async json<T>(method: string, path: string, body?: unknown, expected = [200, 202]): Promise<T> {
    const answer = await this.send(method, path, body);
    if (!expected.includes(answer.status)) {
      throw new Error(`${method} ${path} answered ${answer.status}: ${answer.body.slice(0, 300)}`);
    }
    return JSON.parse(answer.body) as T;
  }

  close(): void {
    this.agent.destroy();
  }
}

/** One kind of request an open-loop run sends, in turn with the others. */
export interface LoadRequest {
  name: string;
  method: string;
  path: string;
  body?: unknown;
}

export interface OpenLoopOptions {
  client: HttpClient;
  requests: readonly LoadRequest[];
  /** Requests per second, all kinds together. */
  ratePerSecond: number;
  /** Length of the run, ms. */
  durationMs: number;
  /** Samples from this first part of the run are dropped (connections, JIT), ms. */
  warmupMs: number;
}

export interface OpenLoopResult {
  /** Latency of each answered request after the warm-up, by request name, ms. */
  latencies: Record<string, number[]>;
  /** Answers other than 2xx, and requests that failed outright, by status (0: no answer; `dropped`: not sent, see MAX_OUTSTANDING). */
  errors: number;
  errorStatuses: Record<string, number>;
  /** Requests sent later than scheduled by more than 1 ms: the generator itself fell behind. */
  lateSends: number;
}

/** Most requests of an open-loop run waiting for their answer at once; beyond it a request is dropped, not sent. */
const MAX_OUTSTANDING = 1000;

/**
 * An open-loop load: requests leave on a fixed schedule whatever the server
 * does, and each latency runs from the request's scheduled time, not from
 * when it was actually sent, so a stalled server is charged for every request
 * it delayed (no coordinated omission).
 */
export async function openLoop(options: OpenLoopOptions): Promise<OpenLoopResult> {
  const { client, requests, ratePerSecond, durationMs, warmupMs } = options;
  const intervalMs = 1000 / ratePerSecond;
  const total = Math.floor((durationMs / 1000) * ratePerSecond);
  const latencies: Record<string, number[]> = Object.fromEntries(requests.map((r) => [r.name, []]));
  let errors = 0;
  const errorStatuses: Record<string, number> = {};
  const failed = (status: number | 'dropped') => {
    errors++;
    errorStatuses[status] = (errorStatuses[status] ?? 0) + 1;
  };
  let lateSends = 0;
  const inFlight = new Set<Promise<void>>();
  const start = performance.now() + 5;
  let sent = 0;

  const fire = (index: number, scheduledAt: number) => {
    const spec = requests[index % requests.length] as LoadRequest;
    const counted = scheduledAt - start >= warmupMs;
    // A server slower than the rate would otherwise build an unbounded queue in this client,
    // which it then works through for minutes after the run, looking wedged to any later probe.
    if (inFlight.size >= MAX_OUTSTANDING) return failed('dropped');
    const done = client.send(spec.method, spec.path, spec.body).then(
      (answer) => {
        const latency = performance.now() - scheduledAt;
        if (answer.status < 200 || answer.status >= 300) failed(answer.status);
        else if (counted) latencies[spec.name]?.push(latency);
      },
      () => failed(0),
    );
    inFlight.add(done);
    void done.finally(() => inFlight.delete(done));
  };

  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now();
      while (sent < total) {
        const scheduledAt = start + sent * intervalMs;
        if (scheduledAt > now) break;
        if (now - scheduledAt > 1) lateSends++;
        fire(sent, scheduledAt);
        sent++;
      }
      if (sent >= total) return resolve();
      setTimeout(tick, Math.max(0, start + sent * intervalMs - performance.now()));
    };
    setTimeout(tick, 5);
  });
  await Promise.all(inFlight);
  return { latencies, errors, errorStatuses, lateSends };
}

/** Polls `check` every `everyMs` until it holds, or throws after `timeoutMs`. */
export async function until(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs = 30_000,
  everyMs = 20,
): Promise<void> {
  const deadline = wallClockMs() + timeoutMs;
  while (!(await check())) {
    if (wallClockMs() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

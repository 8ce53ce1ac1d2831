import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { type ApiProcess, rawConnection, startApiProcess } from './api-process.ts';

const running: ApiProcess[] = [];
afterAll(() => Promise.all(running.map((api) => api.stop())));

async function api(env: Record<string, string>): Promise<ApiProcess> {
  const started = await startApiProcess(env);
  running.push(started);
  return started;
}

const HEALTH = 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n';

describe('the API server', () => {
  it('closes a connection whose headers never finish within API_HEADERS_TIMEOUT_MS', async () => {
    const { port } = await api({ API_HEADERS_TIMEOUT_MS: '1000', API_REQUEST_TIMEOUT_MS: '2000' });
    const slow = await rawConnection(port);
    slow.socket.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ');
    const heldMs = await Promise.race([slow.closed, sleep(5000, Infinity)]);
    expect(heldMs).toBeGreaterThanOrEqual(900);
    expect(heldMs).toBeLessThan(3000);
    expect(slow.received()).toMatch(/^HTTP\/1\.1 408 /);
  });

  it('closes a connection whose body never finishes within API_REQUEST_TIMEOUT_MS', async () => {
    const { port } = await api({ API_HEADERS_TIMEOUT_MS: '1000', API_REQUEST_TIMEOUT_MS: '2000' });
    const slow = await rawConnection(port);
    slow.socket.write(
      'POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n' +
        'Content-Length: 100\r\n\r\n{"task":',
    );
    const heldMs = await Promise.race([slow.closed, sleep(6000, Infinity)]);
    expect(heldMs).toBeGreaterThanOrEqual(1900);
    expect(heldMs).toBeLessThan(4500);
  });

  it('answers long-polls and event streams longer than API_REQUEST_TIMEOUT_MS', async () => {
    const { url } = await api({ API_HEADERS_TIMEOUT_MS: '500', API_REQUEST_TIMEOUT_MS: '1000' });
    // No worker: the job stays queued, so the long-poll waits its full 3 s.
    const submitted = await fetch(`${url}/v1/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ task: 'primes.count', input: { below: 100 } }),
    });
    expect(submitted.status).toBe(202);
    const { id } = (await submitted.json()) as { id: string };

    const started = performance.now();
    const poll = await fetch(`${url}/v1/jobs/${id}?wait=3`);
    expect(poll.status).toBe(200);
    expect(performance.now() - started).toBeGreaterThanOrEqual(2900);

    const stream = await fetch(`${url}/v1/jobs/${id}/events`);
    expect(stream.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reader = (stream.body as ReadableStream<Uint8Array>).getReader();
    await sleep(2500);
    const first = await reader.read();
    expect(first.done).toBe(false);
    expect(new TextDecoder().decode(first.value)).toContain('event: state');
    await reader.cancel();
  });

  it('refuses connections past API_MAX_CONNECTIONS and keeps serving the open ones', async () => {
    const { port, url } = await api({
      API_MAX_CONNECTIONS: '3',
      API_KEEP_ALIVE_TIMEOUT_MS: '30000',
    });
    const open = await Promise.all([1, 2, 3].map(() => rawConnection(port)));
    for (const connection of open) {
      connection.socket.write(HEALTH);
      await connection.waitFor(/"status":"ok"/);
    }

    const extra = await rawConnection(port);
    extra.socket.write(HEALTH);
    const extraClosedMs = await Promise.race([extra.closed, sleep(3000, Infinity)]);
    expect(extraClosedMs).toBeLessThan(1000);
    expect(extra.received()).toBe('');

    // The three held connections are still served.
    const [first] = open as [(typeof open)[0]];
    first.socket.write(HEALTH);
    await first.waitFor(/"status":"ok"[\s\S]*"status":"ok"/);

    // Once one closes, a new client gets in.
    first.socket.destroy();
    await first.closed;
    await sleep(100);
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    for (const connection of open) connection.socket.destroy();
  });
});

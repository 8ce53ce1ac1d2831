import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiProcess, rawConnection, startApiProcess } from './api-process.ts';

let api: ApiProcess;
beforeAll(async () => {
  api = await startApiProcess();
});
afterAll(() => api?.stop());

/** pino's level of `error`. */
const ERROR_LEVEL = 50;

describe('a client that abandons its upload mid-body', () => {
  it('is counted as a 4xx, never a 5xx, and logs no error', async () => {
    const start = '{"task":"primes.count","input":{"below":1},"pad":"';
    const sent = start + 'x'.repeat(1000 - start.length);
    const upload = await rawConnection(api.port);
    upload.socket.write(
      'POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n' +
        `Content-Length: 100000\r\n\r\n${sent}`,
    );
    await sleep(200);
    upload.socket.destroy();

    let metrics = '';
    for (let tries = 0; tries < 50 && !metrics.includes('method="POST"'); tries++) {
      await sleep(100);
      metrics = await (await fetch(`${api.url}/metrics`)).text();
    }
    const posts = metrics
      .split('\n')
      .filter((line) => line.startsWith('offload_api_requests_total{method="POST"'));
    expect(posts).toEqual([
      'offload_api_requests_total{method="POST",route="/v1/jobs",status="400"} 1',
    ]);
    expect(metrics).not.toMatch(/status="5\d\d"/);
    expect(api.logLines().filter((line) => line.level >= ERROR_LEVEL)).toEqual([]);
  });
});

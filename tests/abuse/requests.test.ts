import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNodeProcess } from '../support/processes.ts';
import { redisEnv } from '../support/redis-url.ts';
import { type ApiProcess, startApiProcess } from './api-process.ts';

/**
 * Requests shaped to hurt: a body that would make a huge error answer, ids
 * named like BullMQ's own keys, and open mode on a public interface. The API
 * runs as deployed, in its own process.
 */
let api: ApiProcess;
beforeAll(async () => {
  api = await startApiProcess();
});
afterAll(() => api.stop());

const errorLines = () => api.logLines().filter((line) => line.level >= 50);

describe('error amplification', () => {
  /** A job request whose input holds `fields` unknown fields besides a valid `below`. */
  const withUnknownFields = (fields: number) => {
    const input: Record<string, number> = { below: 10 };
    for (let i = 0; i < fields; i++) input[i.toString(36)] = 1;
    return JSON.stringify({ task: 'primes.count', input });
  };
  const post = async (body: string) => {
    const started = performance.now();
    const res = await fetch(`${api.url}/v1/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    const answer = await res.text();
    return {
      status: res.status,
      answer,
      problem: JSON.parse(answer) as { code: string; errors?: { path: string }[] },
      ms: performance.now() - started,
    };
  };

  it('answers a body of 80,000 unknown fields, and one of 4,000, with a small problem, quickly', async () => {
    const huge = withUnknownFields(80_000);
    const big = await post(huge);
    const small = withUnknownFields(4_000);
    const many = await post(small);
    console.log(
      `${(huge.length / 1024).toFixed(0)} KB with 80,000 unknown fields: ${big.status} ${big.problem.code}, ` +
        `${big.answer.length} bytes in ${big.ms.toFixed(0)} ms; ${(small.length / 1024).toFixed(0)} KB with 4,000: ` +
        `${many.status} ${many.problem.code}, ${many.answer.length} bytes with ${many.problem.errors?.length} field errors ` +
        `in ${many.ms.toFixed(0)} ms (before: a 4 MB 422 after about 400 ms of blocking CPU)`,
    );
    // Past API_MAX_INPUT_BYTES, the input is refused before it is validated at all.
    expect(big).toMatchObject({ status: 413, problem: { code: 'input_too_large' } });
    expect(many).toMatchObject({ status: 422, problem: { code: 'validation_failed' } });
    expect(many.problem.errors).toHaveLength(20);
    for (const answer of [big.answer, many.answer]) expect(answer.length).toBeLessThan(8 * 1024);
    expect((await fetch(`${api.url}/healthz`)).status).toBe(200);
  });
});

describe('ids named like BullMQ keys', () => {
  it('answer 404 without touching Redis, and log no error', async () => {
    // A job makes the queue's own keys (events, meta, id…) exist.
    const submit = await fetch(`${api.url}/v1/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ task: 'cpu.burn', input: { ms: 1 } }),
    });
    expect(submit.status).toBe(202);
    const statuses: number[] = [];
    for (const id of ['events', 'meta', 'id', 'delayed', 'marker', 'wait', 'completed']) {
      for (const path of [`/v1/jobs/${id}`, `/v1/jobs/${id}/events`, `/v1/jobs/${id}/result`]) {
        statuses.push((await fetch(`${api.url}${path}`)).status);
      }
      statuses.push((await fetch(`${api.url}/v1/jobs/${id}`, { method: 'DELETE' })).status);
    }
    console.log(
      `${statuses.length} requests for ids named like BullMQ keys: ${[...new Set(statuses)].join(', ')}, ` +
        `${errorLines().length} error lines (before: 500s and an error logged for each)`,
    );
    expect(new Set(statuses)).toEqual(new Set([404]));
    expect(errorLines()).toEqual([]);
  });
});

describe('open mode', () => {
  it('is refused on a public interface unless API_ALLOW_OPEN=true', async () => {
    const refused = startNodeProcess('apps/api/src/index.ts', {
      ...redisEnv(),
      HOST: '0.0.0.0',
      PORT: '0',
      API_KEYS: '',
    });
    const code = await refused.exited;
    console.log(
      `open mode on HOST=0.0.0.0: exit ${code} (before: started with a warning, serving anyone)`,
    );
    expect(code).toBe(1);
    expect(refused.output()).toMatch(/API_ALLOW_OPEN=true/);
    expect(refused.output()).not.toMatch(/api listening/);
  });
});

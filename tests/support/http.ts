import type { JobView } from '@offload/contract';

/** Small HTTP helpers over a real socket, as a client of the API would talk. */
export function client(baseUrl: string, apiKey?: string) {
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${baseUrl}${path}`, {
      method,
      headers: {
        ...(apiKey && { authorization: `Bearer ${apiKey}` }),
        ...(body !== undefined && { 'content-type': 'application/json' }),
      },
      ...(body !== undefined && { body: JSON.stringify(body) }),
    });
    return {
      status: res.status,
      headers: res.headers,
      body: (await res.json()) as JobView & Record<string, unknown>,
    };
  };
  return {
    call,
    submit: async (task: string, input: unknown, options?: Record<string, unknown>) => {
      const res = await call('POST', '/v1/jobs', { task, input, ...(options && { options }) });
      if (res.status !== 202)
        throw new Error(`submit answered ${res.status}: ${JSON.stringify(res.body)}`);
      return res.body;
    },
    get: async (id: string, waitSeconds?: number) =>
      (
        await call(
          'GET',
          `/v1/jobs/${id}${waitSeconds !== undefined ? `?wait=${waitSeconds}` : ''}`,
        )
      ).body,
    cancel: (id: string) => call('DELETE', `/v1/jobs/${id}`),
    /** Polls until `predicate` holds for the job's view, or fails after `timeoutMs`. */
    async until(id: string, predicate: (view: JobView) => boolean, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const view = (await call('GET', `/v1/jobs/${id}`)).body;
        if (predicate(view)) return view;
        if (Date.now() > deadline)
          throw new Error(`job ${id} never matched; last view ${JSON.stringify(view)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
  };
}

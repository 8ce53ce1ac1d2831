import type { JobView } from '@offload/contract';
import type { HttpClient } from './http-client.ts';

/** Submits a job through POST /v1/jobs; resolves with its view. */
export function submit(
  http: HttpClient,
  task: string,
  input: unknown,
  options?: Record<string, unknown>,
): Promise<JobView> {
  return http.json<JobView>('POST', '/v1/jobs', { task, input, ...(options && { options }) });
}

const FINAL = new Set(['completed', 'failed', 'canceled']);

/** Long-polls GET /v1/jobs/:id?wait until the job is finished; throws unless it completed. */
export async function finished(http: HttpClient, id: string): Promise<JobView> {
  for (;;) {
    const view = await http.json<JobView>('GET', `/v1/jobs/${id}?wait=30`);
    if (!FINAL.has(view.state)) continue;
    if (view.state !== 'completed')
      throw new Error(`job ${id} ended ${view.state}: ${JSON.stringify(view.error)}`);
    return view;
  }
}

import type { JobView } from '@offload/contract';

/** One submit's answer: when it was sent (ms since epoch), its status, the job id or problem code. */
export interface Answer {
  at: number;
  status: number | 'hang' | 'network';
  id?: string;
  code?: string;
}

/** A request that takes longer than this counts as a hang. */
const HANG_MS = 15_000;

/**
 * `submitters` loops POSTing `task` jobs to the API as fast as it answers,
 * recording every answer, until stop(). A refusal is followed by a 20 ms
 * pause: denser than Retry-After asks, as impatient clients are.
 */
export function submitStream(
  apiUrl: string,
  task: string,
  input: (n: number) => unknown,
  submitters = 4,
) {
  const answers: Answer[] = [];
  let stopped = false;
  let n = 0;
  const loop = async () => {
    while (!stopped) {
      const at = Date.now();
      try {
        const res = await fetch(`${apiUrl}/v1/jobs`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ task, input: input(n++) }),
          signal: AbortSignal.timeout(HANG_MS),
        });
        const body = (await res.json()) as Partial<JobView> & { code?: string };
        answers.push({
          at,
          status: res.status,
          ...(body.id && { id: body.id }),
          ...(body.code && { code: body.code }),
        });
        if (res.status !== 202) await new Promise((r) => setTimeout(r, 20));
      } catch (err) {
        answers.push({ at, status: (err as Error).name === 'TimeoutError' ? 'hang' : 'network' });
      }
    }
  };
  const loops = Array.from({ length: submitters }, loop);
  return {
    answers,
    /** Jobs accepted among the submits sent after `t`. */
    acceptedAfter: (t: number) => answers.filter((a) => a.at > t && a.status === 202).length,
    accepted: () => answers.flatMap((a) => (a.status === 202 && a.id ? [a.id] : [])),
    /** Answers that were neither 202 nor a 503 problem: what a client must never see. */
    unexpected: () => answers.filter((a) => a.status !== 202 && a.status !== 503),
    async stop() {
      stopped = true;
      await Promise.all(loops);
    },
  };
}

/**
 * Waits for every job to complete; answers the ids the API no longer knows
 * (404: lost). A job that fails, or has not completed within `timeoutMs`, throws.
 */
export async function lostJobs(apiUrl: string, ids: readonly string[], timeoutMs = 60_000) {
  const lost: string[] = [];
  const deadline = Date.now() + timeoutMs;
  for (const id of ids) {
    for (;;) {
      const res = await fetch(`${apiUrl}/v1/jobs/${id}?wait=5`);
      const view = (await res.json()) as JobView;
      if (res.status === 404) {
        lost.push(id);
        break;
      }
      if (res.status === 200 && view.state === 'completed') break;
      if ((res.status === 200 && view.state === 'failed') || Date.now() > deadline) {
        throw new Error(`job ${id} did not complete: ${res.status} ${JSON.stringify(view)}`);
      }
    }
  }
  return lost;
}

import type { FieldError } from '@offload/contract';
import { findResultRefs, stepOrder } from '@offload/contract/workflow';
import { ApiError, type ErrorCode } from '@offload/problem';
import type { WorkflowRequest, WorkflowStep } from '@offload/queue';
import { MAX_FIELD_ERRORS, type WorkflowRequestBody } from './schemas.ts';
import type { TaskCatalog } from './task-catalog.ts';
import { submitRequest, taskFor } from './task-requests.ts';

/**
 * A workflow body as the queue takes it, or one problem for the whole body
 * with each fault at its path (`steps.render.needs.0`, `steps.render.input.below`):
 * needs naming no step, a cycle, a `$result` naming a step not in `needs`,
 * an unknown task or an input that does not fit its task (a placeholder is
 * not held against the schema; the worker checks the filled input). The
 * code is the faults' own when they share one (`unknown_task`).
 */
export async function workflowRequest(
  catalog: TaskCatalog,
  body: WorkflowRequestBody,
  /** The body as parsed from JSON, before the schema: its step ids, all of them. */
  raw: unknown,
  tenant: string,
  defaultMaxInputBytes: number,
): Promise<WorkflowRequest> {
  const errors: FieldError[] = [];
  const codes = new Set<ErrorCode>();
  const fail = (code: ErrorCode, error: FieldError) => {
    codes.add(code);
    errors.push(error);
  };
  // zod's record parse skips a `__proto__` key without a word: that step would vanish.
  const rawSteps = (raw as { steps?: object }).steps ?? {};
  for (const name of Object.keys(rawSteps)) {
    if (!Object.hasOwn(body.steps, name)) {
      fail('validation_failed', { path: `steps.${name}`, message: 'not a step id (__proto__)' });
    }
  }
  const names = Object.keys(body.steps);
  const steps: Record<string, WorkflowStep> = {};
  for (const [name, { needs = [], ...job }] of Object.entries(body.steps)) {
    const at = `steps.${name}`;
    needs.forEach((need, i) => {
      if (!Object.hasOwn(body.steps, need)) {
        fail('validation_failed', {
          path: `${at}.needs.${i}`,
          message: `no step is named "${need}"`,
        });
      }
    });
    const refs = findResultRefs(job.input, ['input']);
    for (const ref of refs) {
      if (!needs.includes(ref.step)) {
        fail('validation_failed', {
          path: `${at}.${ref.at.join('.')}`,
          message: `"$result" names step "${ref.step}", which is not in this step's needs`,
        });
      }
    }
    try {
      const placeholders = refs.map((ref) => ref.at.join('.'));
      const found = await taskFor(catalog, job, defaultMaxInputBytes, placeholders);
      steps[name] = { request: submitRequest(job, found, tenant), needs: [...new Set(needs)] };
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      for (const e of err.errors?.length ? err.errors : [{ path: '', message: err.message }]) {
        fail(err.code, { ...e, path: e.path ? `${at}.${e.path}` : at });
      }
    }
  }
  if (errors.length === 0) {
    const order = stepOrder(
      Object.fromEntries(names.map((name) => [name, steps[name]?.needs ?? []])),
    );
    if ('cycle' in order) {
      fail('validation_failed', {
        path: `steps.${order.cycle[0]}.needs`,
        message: `the steps need each other in a cycle: ${order.cycle.join(' → ')}`,
      });
    }
  }
  if (errors.length > 0) {
    throw new ApiError(
      codes.size === 1 ? ([...codes][0] as ErrorCode) : 'validation_failed',
      'The workflow is invalid; nothing was started',
      errors.slice(0, MAX_FIELD_ERRORS),
    );
  }
  return {
    tenant,
    steps,
    onStepFailure: body.onStepFailure ?? 'cancel_rest',
    ...(body.webhook && { webhook: body.webhook }),
  };
}

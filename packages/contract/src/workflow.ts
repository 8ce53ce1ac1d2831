/**
 * The step graph of a workflow and its `$result` placeholders (DESIGN.md §3,
 * POST /v1/workflows): what the API checks when a workflow is submitted and
 * what fills a step's input when the steps it needs have completed.
 */

/** A step id: letters, digits, `_` and `-` (a `.` would end it inside a `$result` path). */
export const STEP_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** Most steps one workflow holds. */
export const MAX_WORKFLOW_STEPS = 100;

/** A `{ "$result": "<stepId>" }` or `{ "$result": "<stepId>.<field>.<field>…" }` found in a step's input. */
export interface ResultRef {
  /** Where it sits in the input: keys and array indexes. */
  at: (string | number)[];
  step: string;
  /** Fields into the step's result; an array element by its index. Empty: the whole result. */
  field: string[];
}

/** An object whose one key is `$result`, with a string: the placeholder, and nothing else is. */
function refText(value: unknown): string | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
  const keys = Object.keys(value);
  const text = (value as Record<string, unknown>).$result;
  return keys.length === 1 && typeof text === 'string' ? text : null;
}

/** Every placeholder of an input, in document order. Depth is bounded by the API's JSON depth limit. */
export function findResultRefs(input: unknown, at: (string | number)[] = []): ResultRef[] {
  const text = refText(input);
  if (text !== null) {
    const [step = '', ...field] = text.split('.');
    return [{ at, step, field }];
  }
  if (Array.isArray(input)) return input.flatMap((item, i) => findResultRefs(item, [...at, i]));
  if (typeof input === 'object' && input !== null) {
    return Object.entries(input).flatMap(([key, value]) => findResultRefs(value, [...at, key]));
  }
  return [];
}

/** The field a placeholder names in a result, or `missing` when the result has no such field. */
function pick(result: unknown, field: readonly string[]): { value: unknown } | { missing: true } {
  let value = result;
  for (const name of field) {
    if (Array.isArray(value) && /^\d+$/.test(name) && Number(name) < value.length) {
      value = value[Number(name)];
    } else if (
      typeof value === 'object' &&
      value !== null &&
      !Array.isArray(value) &&
      Object.hasOwn(value, name)
    ) {
      value = (value as Record<string, unknown>)[name];
    } else {
      return { missing: true };
    }
  }
  return { value };
}

/**
 * The input with each placeholder replaced by the result (or the field of
 * it) it names, or why it cannot be: a field the result does not have.
 */
export function fillResults(
  input: unknown,
  resultOf: (step: string) => unknown,
): { input: unknown } | { error: string } {
  const fill = (value: unknown): unknown => {
    const text = refText(value);
    if (text !== null) {
      const [step = '', ...field] = text.split('.');
      const picked = pick(resultOf(step), field);
      if ('missing' in picked) throw new MissingField(step, field);
      return picked.value;
    }
    if (Array.isArray(value)) return value.map(fill);
    if (typeof value === 'object' && value !== null) {
      return Object.fromEntries(Object.entries(value).map(([key, v]) => [key, fill(v)]));
    }
    return value;
  };
  try {
    return { input: fill(input) };
  } catch (err) {
    if (!(err instanceof MissingField)) throw err;
    return { error: err.message };
  }
}

class MissingField extends Error {
  constructor(step: string, field: readonly string[]) {
    super(`The result of step "${step}" has no field "${field.join('.')}"`);
  }
}

/**
 * The steps in an order where each comes after every step it needs, or a
 * cycle (its step ids, the first repeated at the end) when there is none.
 * Every id in `needs` must be a step.
 */
export function stepOrder(
  needs: Readonly<Record<string, readonly string[]>>,
): { order: string[] } | { cycle: string[] } {
  const order: string[] = [];
  const done = new Set<string>();
  const path: string[] = [];
  const onPath = new Set<string>();
  const visit = (step: string): string[] | null => {
    if (done.has(step)) return null;
    if (onPath.has(step)) return [...path.slice(path.indexOf(step)), step];
    path.push(step);
    onPath.add(step);
    for (const need of needs[step] ?? []) {
      const cycle = visit(need);
      if (cycle) return cycle;
    }
    path.pop();
    onPath.delete(step);
    done.add(step);
    order.push(step);
    return null;
  };
  for (const step of Object.keys(needs)) {
    const cycle = visit(step);
    if (cycle) return { cycle };
  }
  return { order };
}

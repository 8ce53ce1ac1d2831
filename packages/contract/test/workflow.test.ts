import { describe, expect, it } from 'vitest';
import { fillResults, findResultRefs, stepOrder } from '../src/workflow.ts';

describe('$result placeholders', () => {
  it('are found anywhere in an input, with where they sit and what they name', () => {
    const input = {
      a: { $result: 'first' },
      list: [1, { $result: 'second.items.0' }],
      deep: { more: { $result: 'first.x.y' } },
      // Not placeholders: another key beside it, or not a string.
      notOne: { $result: 'first', other: 1 },
      notText: { $result: 5 },
    };
    expect(findResultRefs(input, ['input'])).toEqual([
      { at: ['input', 'a'], step: 'first', field: [] },
      { at: ['input', 'list', 1], step: 'second', field: ['items', '0'] },
      { at: ['input', 'deep', 'more'], step: 'first', field: ['x', 'y'] },
    ]);
    expect(findResultRefs({ $result: 'whole' })).toEqual([{ at: [], step: 'whole', field: [] }]);
  });

  it('are filled with the whole result, a field, or an array element by its index', () => {
    const results: Record<string, unknown> = {
      first: { x: { y: 42 } },
      second: { items: ['zero', 'one'] },
    };
    const filled = fillResults(
      { a: { $result: 'first' }, b: [{ $result: 'second.items.1' }], c: { $result: 'first.x.y' } },
      (step) => results[step],
    );
    expect(filled).toEqual({ input: { a: { x: { y: 42 } }, b: ['one'], c: 42 } });
  });

  it('name the field a result lacks, and never reach into a prototype', () => {
    const results: Record<string, unknown> = { first: { items: [1] } };
    expect(fillResults({ v: { $result: 'first.items.1' } }, (s) => results[s])).toEqual({
      error: 'The result of step "first" has no field "items.1"',
    });
    expect(fillResults({ v: { $result: 'first.constructor' } }, (s) => results[s])).toEqual({
      error: 'The result of step "first" has no field "constructor"',
    });
    expect(fillResults({ v: { $result: 'first.items.length' } }, (s) => results[s])).toEqual({
      error: 'The result of step "first" has no field "items.length"',
    });
  });
});

describe('the order of steps', () => {
  it('puts each step after every step it needs', () => {
    const answer = stepOrder({ d: ['b', 'c'], b: ['a'], c: ['a'], a: [] });
    expect('order' in answer).toBe(true);
    const order = (answer as { order: string[] }).order;
    expect(order.indexOf('a')).toBeLessThan(order.indexOf('b'));
    expect(order.indexOf('b')).toBeLessThan(order.indexOf('d'));
    expect(order.indexOf('c')).toBeLessThan(order.indexOf('d'));
  });

  it('names a cycle, the first step repeated at its end', () => {
    expect(stepOrder({ a: ['b'], b: ['c'], c: ['a'] })).toEqual({ cycle: ['a', 'b', 'c', 'a'] });
    expect(stepOrder({ a: ['a'] })).toEqual({ cycle: ['a', 'a'] });
  });
});

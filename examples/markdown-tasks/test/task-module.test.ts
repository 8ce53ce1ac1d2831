import { isTaskDefinition } from '@offload/tasks';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import * as taskModule from '../src/index.ts';

// What a worker given OFFLOAD_TASKS=./examples/markdown-tasks finds in the module.
const tasks = Object.values(taskModule);

describe('the task module', () => {
  it('exports only tasks made with defineTask, on the markdown queue', () => {
    expect(tasks.every(isTaskDefinition)).toBe(true);
    expect(tasks.map((t) => [t.name, t.queue]).sort()).toEqual([
      ['markdown.render', 'markdown'],
      ['markdown.render-many', 'markdown'],
    ]);
  });

  it('has JSON Schemas the API can validate submits with: defaults optional, unknown fields refused', () => {
    for (const task of tasks) {
      // The conversion the API applies to every published task.
      const input = z.toJSONSchema(task.input, { io: 'input', unrepresentable: 'any' });
      expect(input, task.name).toMatchObject({ type: 'object', additionalProperties: false });
      expect(input.required, task.name).not.toContain('gfm');
      expect(() =>
        z.toJSONSchema(task.output, { io: 'output', unrepresentable: 'any' }),
      ).not.toThrow();
    }
  });
});

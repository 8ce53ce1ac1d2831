import type { TaskDefinition } from './define-task.ts';
import { cpuBurn } from './tasks/cpu-burn.ts';
import { cryptoPbkdf2 } from './tasks/crypto-pbkdf2.ts';
import { imageMandelbrot } from './tasks/image-mandelbrot.ts';
import { primesCount } from './tasks/primes-count.ts';

/**
 * The tasks a process knows, by name. A Map, not an object: a name such as
 * `constructor` or `__proto__` finds nothing instead of Object.prototype's members.
 */
export interface TaskRegistry {
  get(name: string): TaskDefinition | undefined;
  list(): readonly TaskDefinition[];
  /** Every queue some task of this registry goes to, sorted. */
  queues(): readonly string[];
}

export function createRegistry(tasks: readonly TaskDefinition[]): TaskRegistry {
  const byName = new Map<string, TaskDefinition>();
  for (const task of tasks) {
    if (byName.has(task.name)) throw new Error(`Task "${task.name}" is defined twice`);
    byName.set(task.name, task);
  }
  const queues = [...new Set(tasks.map((t) => t.queue))].sort();
  return {
    get: (name) => byName.get(name),
    list: () => [...byName.values()],
    queues: () => queues,
  };
}

/** The built-in tasks, as a tuple so that their names and types stay known to the compiler. */
export const builtInTasks = [primesCount, cryptoPbkdf2, imageMandelbrot, cpuBurn] as const;

/** The registry every process uses unless it is built with another (tests add misbehaving tasks). */
export const registry: TaskRegistry = createRegistry(builtInTasks);

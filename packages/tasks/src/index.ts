export { type BinaryResult, binary, binaryOutput, isBinaryResult } from './binary.ts';
export { catalogEntryOf, withFingerprint } from './catalog-entry.ts';
export {
  type Backoff,
  DEFAULT_QUEUE,
  defineTask,
  isTaskDefinition,
  type TaskContext,
  type TaskDefaults,
  type TaskDefinition,
  type TaskProgress,
} from './define-task.ts';
export { builtInTasks, createRegistry, registry, type TaskRegistry } from './registry.ts';

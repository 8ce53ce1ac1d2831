export { type ClientOptions, OffloadClient } from './client.ts';
export { OfflineError, ProblemError } from './errors.ts';
export type {
  BuiltInTasks,
  Job,
  JobEvent,
  JobPage,
  JobState,
  JobSummary,
  ListOptions,
  Problem,
  SubmitOptions,
  TaskCatalog,
  TaskInfo,
  TaskInput,
  TaskName,
  TaskOutput,
  TasksOf,
} from './types.ts';

export { type ClientOptions, OffloadClient } from './client.ts';
export { OfflineError, ProblemError } from './errors.ts';
export type {
  BatchJob,
  BuiltInTasks,
  Job,
  JobEvent,
  JobPage,
  JobState,
  JobSummary,
  ListOptions,
  Problem,
  Schedule,
  ScheduleRequest,
  ScheduleTiming,
  SubmitOptions,
  TaskCatalog,
  TaskInfo,
  TaskInput,
  TaskName,
  TaskOutput,
  TasksOf,
} from './types.ts';
export { MAX_BATCH_JOBS } from './types.ts';

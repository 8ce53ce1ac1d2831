import { runWorkerProcess } from '../../apps/worker/src/run-worker-process.ts';
import { registry } from './test-tasks.ts';

// A worker process that also serves the misbehaving test tasks.
await runWorkerProcess({ registry, tasksModule: new URL('./test-tasks.ts', import.meta.url).href });

import { registry } from '@offload/tasks';
import { runWorkerProcess } from './run-worker-process.ts';

await runWorkerProcess({ registry });

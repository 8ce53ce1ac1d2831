/**
 * The built-in tasks, as a task module: `OFFLOAD_TASKS=@offload/tasks/builtin`
 * lists them beside one's own, and a worker with OFFLOAD_TASKS unset runs them.
 */
export { cpuBurn } from './tasks/cpu-burn.ts';
export { cryptoPbkdf2 } from './tasks/crypto-pbkdf2.ts';
export { imageMandelbrot } from './tasks/image-mandelbrot.ts';
export { primesCount } from './tasks/primes-count.ts';

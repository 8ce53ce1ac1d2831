/**
 * The task module OFFLOAD_TASKS names (`OFFLOAD_TASKS=./examples/thumbnails`):
 * a worker runs every export made with defineTask.
 */
export { thumbsArchive } from './archive.ts';
export { thumbsResize } from './resize.ts';

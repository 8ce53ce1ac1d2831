/**
 * The task module OFFLOAD_TASKS names (`OFFLOAD_TASKS=./examples/markdown-tasks`):
 * a worker runs every export made with defineTask.
 */
export { markdownRender } from './tasks/markdown-render.ts';
export { markdownRenderMany } from './tasks/markdown-render-many.ts';

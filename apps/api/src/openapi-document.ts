import type { OpenAPIHono } from '@hono/zod-openapi';
import type { TaskInfo } from '@offload/contract';

/**
 * The OpenAPI 3.1 document: the routes' own schemas, with the job request
 * shown as one variant per task of the catalog (its published input schema),
 * so client generators and readers see every task's input. Rebuilt when the
 * catalog changes, never per request.
 */
export function openApiDocument(
  app: Pick<OpenAPIHono, 'getOpenAPI31Document'>,
  tasks: readonly TaskInfo[],
) {
  const document = app.getOpenAPI31Document({
    openapi: '3.1.0',
    info: {
      title: 'Offload API',
      version: '1.0.0',
      description:
        'Submit CPU-heavy jobs, follow them (poll, long-poll or server-sent events) and cancel them. The tasks and their inputs are those the running workers publish. Errors are RFC 9457 problem documents.',
      license: { name: 'MIT', url: 'https://opensource.org/license/mit' },
    },
    servers: [{ url: 'http://127.0.0.1:3000', description: 'npm start on this machine' }],
  });
  const schemas: Record<string, unknown> = { ...document.components?.schemas };
  document.components = { ...document.components, schemas: schemas as never };
  const variants = tasks.map((task) => {
    const id = `JobRequest_${task.name.replace(/[^A-Za-z0-9_]/g, '_')}`;
    const { $schema: _, ...input } = task.input;
    schemas[id] = {
      type: 'object',
      description: task.description,
      properties: {
        task: { type: 'string', const: task.name },
        input,
        options: { $ref: '#/components/schemas/JobOptions' },
      },
      required: ['task', 'input'],
      additionalProperties: false,
    };
    return { name: task.name, ref: `#/components/schemas/${id}` };
  });
  if (variants.length > 0) {
    schemas.JobRequest = {
      description: 'A job request: the task by name, and an input that fits its schema',
      oneOf: variants.map((v) => ({ $ref: v.ref })),
      discriminator: {
        propertyName: 'task',
        mapping: Object.fromEntries(variants.map((v) => [v.name, v.ref])),
      },
    };
  }
  return document;
}

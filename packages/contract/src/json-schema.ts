import { Ajv2020 } from 'ajv/dist/2020.js';

/**
 * The validator of the catalog's JSON Schemas (draft 2020-12), set up once for
 * both its users: the API validates submits with it, and a worker checks with
 * it that a Python task's schemas compile before publishing them, so a schema
 * a worker publishes is one the API can use.
 */
export function createSchemaValidator(): Ajv2020 {
  return new Ajv2020({
    // Every problem of an input at once; the API reports at most MAX_FIELD_ERRORS.
    allErrors: true,
    // zod's JSON Schema carries formats and keywords Ajv need not enforce; the worker checks again.
    strict: false,
    validateFormats: false,
  });
}

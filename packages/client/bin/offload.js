#!/usr/bin/env node
// The package ships TypeScript source; tsx's loader runs it without a build step.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli.ts');

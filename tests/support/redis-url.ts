import { inject } from 'vitest';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The Redis of this test run (see global-redis.ts). */
    redisUrl: string;
  }
}

export function testRedisUrl(): string {
  return inject('redisUrl');
}

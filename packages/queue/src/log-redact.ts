/**
 * pino's `redact` option for every Offload process: secrets never reach a log
 * line, whichever object carries them (a request's headers, a config object,
 * an error's context). Paths are one level deep at most, as pino matches them.
 */
export const LOG_REDACT = {
  paths: [
    'redisUrl',
    '*.redisUrl',
    'REDIS_URL',
    'password',
    '*.password',
    'ADMIN_PASSWORD',
    'apiKey',
    '*.apiKey',
    'apiKeys',
    'API_KEYS',
    'authorization',
    '*.authorization',
    'headers.authorization',
    'headers.cookie',
    'req.headers.authorization',
    'req.headers.cookie',
  ],
  censor: '[redacted]',
};

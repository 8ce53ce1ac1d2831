/**
 * pino's `redact` option for every Offload process: secrets and tenants' data
 * never reach a log line, whichever object carries them (a request's headers,
 * a config object, an error's context). A Redis error from ioredis carries the
 * refused command with its arguments (`command.args`: a job's data, packed), and
 * may wrap another as `cause`; both are dropped. Paths are one level deep at
 * most, as pino matches them.
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
    'input',
    '*.input',
    'result',
    '*.result',
    'returnvalue',
    '*.returnvalue',
    'command',
    '*.command',
    'err.cause',
    'err.args',
  ],
  censor: '[redacted]',
};

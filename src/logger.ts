/**
 * The log stream ops tail: pino JSON lines on stdout (human-readable on a terminal or with
 * LOG_PRETTY=1). Secrets are redacted by key wherever they appear in a logged object.
 */
import { hostname } from 'node:os';
import pino, { type Logger } from 'pino';
import type { LogLevel } from './config';

export type { Logger } from 'pino';

/** Keys whose values never reach a log line, at any depth. */
export const SECRET_KEYS = new Set([
  'session_string',
  'sessionString',
  'string_session',
  'stringSession',
  'api_hash',
  'apiHash',
  'password',
  'proxy',
  'authKey',
  'auth_key',
  'phoneCode',
  'phone_code',
  // A database error's row values: a failed query's parameters, "Failing row contains (...)".
  'parameters',
  'detail',
]);

/**
 * Error fields that may carry row values: a failed query's parameters (TypeORM's
 * QueryFailedError), and PostgreSQL's detail ("Failing row contains (...)").
 */
const ERROR_FIELDS_DROPPED = ['parameters', 'detail'];

/**
 * A copy of a log record with every secret key's value replaced, however deep it sits
 * (an entity with its account inside a list inside an error is still covered). Errors are
 * serialized first, without the parameters a failed query was given.
 */
export function redactSecrets(value: unknown, depth = 0, seen: WeakSet<object> = new WeakSet()): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (value instanceof Date) return value;
  if (depth > 20) return '[too deep]';
  if (seen.has(value)) return '[circular]';
  seen.add(value);
  if (value instanceof Error) {
    const serialized = pino.stdSerializers.err(value) as unknown as Record<string, unknown>;
    for (const field of ERROR_FIELDS_DROPPED) delete serialized[field];
    return redactSecrets(serialized, depth + 1, seen);
  }
  if (Buffer.isBuffer(value) || ArrayBuffer.isView(value)) return `[${value.byteLength} bytes]`;
  if (Array.isArray(value)) return value.map((item) => redactSecrets(item, depth + 1, seen));
  const copy: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(value)) {
    copy[key] =
      SECRET_KEYS.has(key) && inner !== null && inner !== undefined
        ? '[redacted]'
        : redactSecrets(inner, depth + 1, seen);
  }
  return copy;
}

export interface LoggerOptions {
  level?: LogLevel;
  /** undefined: pretty when stdout is a terminal. */
  pretty?: boolean | undefined;
  /** Where JSON lines go (tests); default stdout. */
  destination?: pino.DestinationStream;
  /** 1 (stdout, the default) or 2 (stderr, for commands whose stdout is a report). */
  fd?: 1 | 2;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const base: pino.LoggerOptions = {
    level: options.level ?? 'info',
    // Which process said it: two replicas in one stream are told apart by host and pid.
    base: { service: 'lexus', host: hostname(), pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    // Errors are serialized by redactSecrets (formatters.log runs before serializers).
    serializers: { err: (err: unknown) => err },
    formatters: {
      level: (label) => ({ level: label }),
      log: (record) => redactSecrets(record) as Record<string, unknown>,
    },
  };
  if (options.destination) return pino(base, options.destination);
  const fd = options.fd ?? 1;
  const stream = fd === 1 ? process.stdout : process.stderr;
  const pretty = options.pretty ?? Boolean(stream.isTTY);
  if (pretty) {
    return pino({
      ...base,
      transport: {
        target: 'pino-pretty',
        options: {
          destination: fd,
          colorize: Boolean(stream.isTTY),
          translateTime: 'SYS:standard',
          ignore: 'pid,host,service',
        },
      },
    });
  }
  return pino(base, pino.destination({ fd, sync: true }));
}

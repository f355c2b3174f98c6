/**
 * The log stream ops tail: pino JSON lines on stdout (human-readable on a terminal or with
 * LOG_PRETTY=1). Secrets are redacted by key wherever they appear in a logged object.
 */
import pino, { type Logger } from 'pino';
import type { LogLevel } from './config';

export type { Logger } from 'pino';

/** Keys whose values never reach a log line, at any depth we log. */
export const SECRET_KEYS = [
  'session_string', 'sessionString', 'string_session', 'stringSession', 'api_hash', 'apiHash',
  'password', 'proxy', 'authKey', 'auth_key', 'phoneCode',
];

const redactPaths = SECRET_KEYS.flatMap((key) => [key, `*.${key}`, `*.*.${key}`]);

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
    base: { service: 'lexus' },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: redactPaths, censor: '[redacted]' },
    formatters: { level: (label) => ({ level: label }) },
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
        options: { destination: fd, colorize: Boolean(stream.isTTY), translateTime: 'SYS:standard', ignore: 'pid,hostname,service' },
      },
    });
  }
  return pino(base, pino.destination({ fd, sync: true }));
}

/** A logger whose JSON lines a test reads back as objects. */
import { Writable } from 'node:stream';
import type { LogLevel } from '../../src/config';
import { createLogger, type Logger } from '../../src/logger';

export function capturedLogger(level: LogLevel = 'debug'): { lines: Record<string, unknown>[]; log: Logger } {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({
    level,
    destination: new Writable({
      write(chunk, _e, done) {
        for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
        done();
      },
    }),
  });
  return { lines, log };
}

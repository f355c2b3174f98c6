/**
 * TypeORM's own messages (migrations run or failed, warnings) into our log stream at debug
 * level, instead of its console output. Queries and their parameters are never logged: they
 * may hold session strings.
 */
import type { Logger as TypeormLogger } from 'typeorm';
import type { Logger } from '../logger';

export function typeormLogger(log: Logger | undefined): TypeormLogger {
  const debug = (message: unknown) => log?.debug({ event: 'typeorm' }, String(message));
  return {
    logQuery: () => undefined,
    logQueryError: () => undefined,
    logQuerySlow: () => undefined,
    logSchemaBuild: debug,
    logMigration: debug,
    log: (level, message) => (level === 'warn' ? log?.warn({ event: 'typeorm' }, String(message)) : debug(message)),
  };
}

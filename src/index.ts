/**
 * Lexus Promotion as a library: the data layer the seed shows being used from other code.
 *
 *   const db = await openDatabase(undefined, { migrate: true });
 *   const manager = new DbManager(db.dataSource);
 *   const ready = await manager.getGroupsReadyForPosting('ukraine_cars', 50);
 *   await db.close();
 */

export type { Clock } from './clock';
export { ManualClock, systemClock, utcDayStart } from './clock';
export type { Config, DatabaseConfig, LoadConfigOptions, PostgresConnection } from './config';
export { CONFIG_VARIABLES, ConfigError, describeDatabase, EXIT_CONFIG, loadConfig, parseDatabaseUrl } from './config';
export type {
  AssignGroupOptions,
  CounterResetResult,
  DbManagerOptions,
  PostSlot,
  RecordPostInput,
  ReserveSlotInput,
  SettleOutcome,
} from './db/DbManager';
export { DbManager, NotFoundError } from './db/DbManager';
export type { Database, OpenDatabaseOptions } from './db/database';
export { createDataSource, MIGRATIONS_TABLE, openDatabase, runMigrations } from './db/database';
export type { AccountStatus, PostStatus, TargetStatus } from './db/entities';
export {
  Account,
  AccountSchema,
  entitySchemas,
  PostHistory,
  PostHistorySchema,
  Target,
  TargetSchema,
} from './db/entities';
export type { GroupLink } from './links';
export { InvalidLinkError, normalizeGroupLink, parseGroupLink } from './links';
export * as rules from './sql/rules';

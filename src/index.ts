/**
 * Lexus Promotion as a library: the data layer the seed shows being used from other code.
 *
 *   const db = await openDatabase(undefined, { migrate: true });
 *   const manager = new DbManager(db.dataSource);
 *   const ready = await manager.getGroupsReadyForPosting('ukraine_cars', 50);
 *   await db.close();
 */
export { loadConfig, ConfigError, describeDatabase, parseDatabaseUrl, EXIT_CONFIG, CONFIG_VARIABLES } from './config';
export type { Config, DatabaseConfig, PostgresConnection, LoadConfigOptions } from './config';
export { openDatabase, createDataSource, runMigrations, MIGRATIONS_TABLE } from './db/database';
export type { Database, OpenDatabaseOptions } from './db/database';
export { DbManager, NotFoundError } from './db/DbManager';
export type {
  AssignGroupOptions, CounterResetResult, DbManagerOptions, PostSlot, RecordPostInput, ReserveSlotInput, SettleOutcome,
} from './db/DbManager';
export { Account, Target, PostHistory, AccountSchema, TargetSchema, PostHistorySchema, entitySchemas } from './db/entities';
export type { AccountStatus, TargetStatus, PostStatus } from './db/entities';
export { normalizeGroupLink, parseGroupLink, InvalidLinkError } from './links';
export type { GroupLink } from './links';
export { ManualClock, systemClock, utcDayStart } from './clock';
export type { Clock } from './clock';
export * as rules from './sql/rules';

/**
 * Opening the database: configuration -> (embedded server when none is configured) -> a TypeORM
 * DataSource on a pg pool that reads and writes `timestamp` as UTC -> migrations on demand.
 */
import { DataSource, MigrationExecutor } from 'typeorm';
import { type Config, describeDatabase, loadConfig, type PostgresConnection } from '../config';
import type { Logger } from '../logger';
import {
  migrationLockHolder,
  type Queryable,
  releaseMigrationLock,
  resetStatementTimeout,
  setNoStatementTimeout,
  tryMigrationLock,
} from '../sql/locks';
import { loadMigrationsRun } from '../sql/schema';
import { type EmbeddedNote, type EmbeddedServer, sharedDirsUnder, startEmbeddedPostgres } from './embeddedPostgres';
import { entitySchemas } from './entities';
import { migrations } from './migrations';
import { pgConnectionConfig, UTC_SESSION_SETTINGS } from './pgConnection';
import { typeormLogger } from './typeormLogger';

export const MIGRATIONS_TABLE = 'lexus_migrations';
/** pg_advisory_lock key that serialises migrations across processes ("lexus" in ASCII). */
const MIGRATION_LOCK_KEY = 0x6c65787573;

export interface DataSourceOptions {
  poolSize?: number;
  applicationName?: string;
  /** Where TypeORM's own messages go (debug level); default nowhere. */
  log?: Logger;
  /** The server cancels a statement after this long, and a connection is waited for this long (health checks). */
  timeoutMs?: number;
  /**
   * The daemon's own bounds (LEXUS_STATEMENT_TIMEOUT_S, LEXUS_LOCK_TIMEOUT_S): no statement of
   * it waits on the database longer than this, nor on a row lock longer than that.
   */
  statementTimeoutMs?: number;
  lockTimeoutMs?: number;
}

/** A DataSource (not yet initialised) for one PostgreSQL connection. Never `synchronize`. */
export function createDataSource(connection: PostgresConnection, options: DataSourceOptions = {}): DataSource {
  const {
    host,
    port,
    user,
    password,
    database,
    ssl,
    application_name: applicationName,
    ...extra
  } = pgConnectionConfig(connection, {
    applicationName: options.applicationName ?? 'lexus',
    // Timestamps read and written as UTC; UTC for now() defaults; ISO so that timestamps reach
    // the type parser in the form it reads, whatever DateStyle a shared database was set up with.
    utcTimestamps: true,
    settings: UTC_SESSION_SETTINGS,
    connectionTimeoutMillis: options.timeoutMs ?? 10_000,
    statementTimeoutMs: options.timeoutMs ?? options.statementTimeoutMs,
    // And on this side too: a connection that went silent (a network cut) must not hang a query
    // for the minutes TCP takes to notice.
    queryTimeoutMs: options.statementTimeoutMs ? options.statementTimeoutMs + 5_000 : undefined,
    lockTimeoutMs: options.lockTimeoutMs,
  });
  return new DataSource({
    type: 'postgres',
    host,
    port,
    username: user,
    password,
    database,
    ssl,
    entities: entitySchemas,
    migrations,
    migrationsTableName: MIGRATIONS_TABLE,
    synchronize: false,
    migrationsRun: false,
    logging: false,
    logger: typeormLogger(options.log),
    poolSize: options.poolSize ?? 10,
    ...(applicationName !== undefined ? { applicationName } : {}),
    extra,
  });
}

/** How long a process waits for another's migrations before it gives up (LEXUS_MIGRATION_WAIT_S). */
export const DEFAULT_MIGRATION_WAIT_MS = 300_000;
/** After this long waiting for the migration lock, the log says who holds it. */
const MIGRATION_WAIT_SAID_MS = 5_000;

export interface MigrationOptions {
  /** Told once the lock has been waited for a while, with who holds it. */
  onWait?: (holder: string) => void;
  /** Give up after this long (default DEFAULT_MIGRATION_WAIT_MS). */
  waitMs?: number;
}

/** Another process's migrations did not end in time. */
export class MigrationLockTimeoutError extends Error {
  constructor(
    readonly holder: string,
    waitedMs: number,
  ) {
    super(
      `waited ${Math.round(waitedMs / 1000)} s for the migrations of another process (${holder}) to end; gave up. Is it stuck? Stop it, or run lexus migrate once it is done`,
    );
    this.name = 'MigrationLockTimeoutError';
  }
}

/** Who holds the migration lock: its application, client address, backend pid and how long it has been there. */
async function describeMigrationLockHolder(runner: Queryable): Promise<string> {
  const h = await migrationLockHolder(runner, MIGRATION_LOCK_KEY);
  return h
    ? `"${h.application_name || 'unknown'}" from ${h.client}, backend pid ${h.pid}, connected ${h.age_s} s ago`
    : 'a process that has just let go';
}

/**
 * Runs pending migrations, holding an advisory lock so that two processes starting at once
 * migrate one after the other. A process that waits for another's says who holds the lock within
 * 5 s (onWait) and gives up after a bound (MigrationLockTimeoutError). Migrations have no
 * statement timeout (an index on a large table takes what it takes). Idempotent: returns the
 * names of the migrations it ran.
 */
export async function runMigrations(dataSource: DataSource, options: MigrationOptions = {}): Promise<string[]> {
  const queryRunner = dataSource.createQueryRunner();
  await queryRunner.connect();
  try {
    const waitMs = options.waitMs ?? DEFAULT_MIGRATION_WAIT_MS;
    const began = Date.now();
    let said = false;
    for (;;) {
      if (await tryMigrationLock(queryRunner, MIGRATION_LOCK_KEY)) break;
      const waited = Date.now() - began;
      if (!said && waited >= MIGRATION_WAIT_SAID_MS) {
        said = true;
        options.onWait?.(await describeMigrationLockHolder(queryRunner));
      }
      if (waited >= waitMs) throw new MigrationLockTimeoutError(await describeMigrationLockHolder(queryRunner), waited);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    try {
      await setNoStatementTimeout(queryRunner);
      const executor = new MigrationExecutor(dataSource, queryRunner);
      executor.transaction = 'each';
      const ran = await executor.executePendingMigrations();
      return ran.map((m) => m.name);
    } finally {
      await resetStatementTimeout(queryRunner).catch(() => undefined);
      await releaseMigrationLock(queryRunner, MIGRATION_LOCK_KEY);
    }
  } finally {
    await queryRunner.release();
  }
}

/** Migrations the database has that this version does not know: it was migrated by a newer one. */
export async function unknownMigrations(dataSource: DataSource): Promise<string[]> {
  const known = new Set(migrations.map((m) => m.name));
  return (await loadMigrationsRun(dataSource, MIGRATIONS_TABLE)).filter((name) => !known.has(name));
}

export interface Database {
  dataSource: DataSource;
  /** Where it connects (secrets included: never log it). */
  connection: PostgresConnection;
  /** Where the data lives, without the password. */
  description: string;
  /** Set when an embedded server backs this database. */
  embedded: EmbeddedServer | undefined;
  /** Names of the migrations run by openDatabase({ migrate: true }). */
  migrationsRun: string[];
  close(): Promise<void>;
}

export interface OpenDatabaseOptions {
  /** Run pending migrations after connecting. Default false. */
  migrate?: boolean;
  /** What the embedded server's start has to say (where its data is, a port moved, started). */
  onEmbeddedNote?: (note: EmbeddedNote) => void;
  applicationName?: string;
  log?: Logger;
  /** The daemon's bounds on its statements (createDataSource). */
  statementTimeoutMs?: number;
  lockTimeoutMs?: number;
  /** Keep trying a database that does not answer yet for this long (it may be starting too); default 0. */
  connectWaitMs?: number;
  /** Told once, when the first attempt fails and it keeps trying. */
  onConnectWait?: (reason: string) => void;
  /** For migrate: how long another process's migrations are waited for, and who holds them. */
  migrationWaitMs?: number;
  onMigrationWait?: (holder: string) => void;
}

/**
 * Opens the configured database: DATABASE_URL, else POSTGRES_*, else an embedded PostgreSQL in
 * LEXUS_EMBEDDED_PG_DIR. `config` defaults to loadConfig(process.env).
 */
export async function openDatabase(
  config: Config = loadConfig(),
  options: OpenDatabaseOptions = {},
): Promise<Database> {
  let embedded: EmbeddedServer | undefined;
  let connection: PostgresConnection;
  if (config.database.mode === 'embedded') {
    embedded = await startEmbeddedPostgres({
      dataDir: config.database.dataDir,
      port: config.database.port,
      portExplicit: config.database.portExplicit,
      ...(config.database.sharedDir ? { sharedDirs: sharedDirsUnder(config.database.sharedDir) } : {}),
      ...(options.onEmbeddedNote ? { onNote: options.onEmbeddedNote } : {}),
    });
    connection = embedded.connection;
  } else {
    connection = config.database.connection;
  }
  const make = (bounded = true) =>
    createDataSource(connection, {
      poolSize: bounded ? config.dbPoolSize : 1,
      ...(options.log ? { log: options.log } : {}),
      ...(options.applicationName ? { applicationName: options.applicationName } : {}),
      ...(bounded && options.statementTimeoutMs ? { statementTimeoutMs: options.statementTimeoutMs } : {}),
      ...(bounded && options.lockTimeoutMs ? { lockTimeoutMs: options.lockTimeoutMs } : {}),
    });
  let dataSource = make();
  const began = Date.now();
  let pause = 1000;
  for (let attempt = 1; ; attempt++) {
    try {
      await dataSource.initialize();
      break;
    } catch (error) {
      const reason = (error as Error).message;
      const elapsed = Date.now() - began;
      const wait = options.connectWaitMs ?? 0;
      if (elapsed >= wait) {
        await embedded?.stop();
        const waited = attempt > 1 ? ` (tried for ${Math.round(elapsed / 1000)} s)` : '';
        throw new Error(`cannot connect to ${describeDatabase(config.database)}${waited}: ${reason}`, { cause: error });
      }
      if (attempt === 1) options.onConnectWait?.(reason);
      await new Promise((resolve) => setTimeout(resolve, Math.min(pause, wait - elapsed)));
      pause = Math.min(pause * 2, 10_000);
      dataSource = make();
    }
  }
  let migrationsRun: string[] = [];
  if (options.migrate) {
    // Migrations take what they take (an index on a large table): on a connection of their own,
    // without the daemon's bounds on its statements.
    const migrator = options.statementTimeoutMs || options.lockTimeoutMs ? make(false) : dataSource;
    try {
      if (migrator !== dataSource) await migrator.initialize();
      migrationsRun = await runMigrations(migrator, {
        ...(options.migrationWaitMs ? { waitMs: options.migrationWaitMs } : {}),
        ...(options.onMigrationWait ? { onWait: options.onMigrationWait } : {}),
      });
    } catch (error) {
      if (migrator !== dataSource) await migrator.destroy().catch(() => undefined);
      await dataSource.destroy().catch(() => undefined);
      await embedded?.stop();
      throw error;
    }
    if (migrator !== dataSource) await migrator.destroy();
  }
  let closed = false;
  return {
    dataSource,
    connection,
    description: describeDatabase(config.database),
    embedded,
    migrationsRun,
    async close() {
      if (closed) return;
      closed = true;
      await dataSource.destroy();
      await embedded?.stop();
    },
  };
}

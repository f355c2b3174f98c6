/**
 * Opening the database: configuration -> (embedded server when none is configured) -> a TypeORM
 * DataSource on a pg pool that reads and writes `timestamp` as UTC -> migrations on demand.
 */
import { DataSource, MigrationExecutor } from 'typeorm';
import { loadConfig, type Config, type PostgresConnection, describeDatabase } from '../config';
import { entitySchemas } from './entities';
import { migrations } from './migrations';
import { utcTimestampTypes } from './postgresTypes';
import { sharedDirsUnder, startEmbeddedPostgres, type EmbeddedNote, type EmbeddedServer } from './embeddedPostgres';
import { typeormLogger } from './typeormLogger';
import type { Logger } from '../logger';

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
}

/** A DataSource (not yet initialised) for one PostgreSQL connection. Never `synchronize`. */
export function createDataSource(connection: PostgresConnection, options: DataSourceOptions = {}): DataSource {
  return new DataSource({
    type: 'postgres',
    host: connection.host,
    port: connection.port,
    username: connection.user,
    password: connection.password ?? '',
    database: connection.database,
    ssl: connection.ssl === false ? false : { rejectUnauthorized: connection.ssl === 'verify' },
    entities: entitySchemas,
    migrations,
    migrationsTableName: MIGRATIONS_TABLE,
    synchronize: false,
    migrationsRun: false,
    logging: false,
    logger: typeormLogger(options.log),
    poolSize: options.poolSize ?? 10,
    applicationName: options.applicationName ?? 'lexus',
    extra: {
      types: utcTimestampTypes,
      // UTC for now() defaults; ISO so that timestamps reach the type parser in the form it
      // reads, whatever DateStyle a shared database was set up with.
      options: '-c TimeZone=UTC -c DateStyle=ISO,MDY',
      connectionTimeoutMillis: options.timeoutMs ?? 10_000,
      ...(options.timeoutMs === undefined ? {} : { statement_timeout: options.timeoutMs }),
    },
  });
}

/**
 * Runs pending migrations, holding an advisory lock so that two processes starting at once
 * migrate one after the other. Idempotent: returns the names of the migrations it ran.
 */
export async function runMigrations(dataSource: DataSource): Promise<string[]> {
  const queryRunner = dataSource.createQueryRunner();
  await queryRunner.connect();
  try {
    await queryRunner.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    try {
      const executor = new MigrationExecutor(dataSource, queryRunner);
      executor.transaction = 'each';
      const ran = await executor.executePendingMigrations();
      return ran.map((m) => m.name);
    } finally {
      await queryRunner.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]);
    }
  } finally {
    await queryRunner.release();
  }
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
}

/**
 * Opens the configured database: DATABASE_URL, else POSTGRES_*, else an embedded PostgreSQL in
 * LEXUS_EMBEDDED_PG_DIR. `config` defaults to loadConfig(process.env).
 */
export async function openDatabase(config: Config = loadConfig(), options: OpenDatabaseOptions = {}): Promise<Database> {
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
  const dataSource = createDataSource(connection, {
    poolSize: config.dbPoolSize,
    ...(options.log ? { log: options.log } : {}),
    ...(options.applicationName ? { applicationName: options.applicationName } : {}),
  });
  try {
    await dataSource.initialize();
  } catch (error) {
    await embedded?.stop();
    throw new Error(`cannot connect to ${describeDatabase(config.database)}: ${(error as Error).message}`, { cause: error });
  }
  let migrationsRun: string[] = [];
  if (options.migrate) {
    try {
      migrationsRun = await runMigrations(dataSource);
    } catch (error) {
      await dataSource.destroy().catch(() => undefined);
      await embedded?.stop();
      throw error;
    }
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

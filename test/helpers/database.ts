/**
 * A fresh, migrated database per test file on the shared test server, with a DbManager on a
 * manual clock. Drop it with `close()`.
 */
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import type { DataSource } from 'typeorm';
import { afterAll, beforeAll, beforeEach, inject } from 'vitest';
import { ManualClock } from '../../src/clock';
import type { PostgresConnection } from '../../src/config';
import { DbManager } from '../../src/db/DbManager';
import { createDataSource, runMigrations } from '../../src/db/database';
import { startEmbeddedPostgres } from '../../src/db/embeddedPostgres';
import { tempDir } from './cli';
import { freePort } from './net';

export interface TestDatabase {
  connection: PostgresConnection;
  dataSource: DataSource;
  clock: ManualClock;
  db: DbManager;
  /** A plain pg client on the same database, for checks that bypass the code under test. */
  query<Row = Record<string, unknown>>(text: string, values?: unknown[]): Promise<Row[]>;
  close(): Promise<void>;
}

export async function adminQuery(text: string): Promise<void> {
  const server = inject('postgres');
  const client = new pg.Client({ ...server, database: server.database || 'postgres', ssl: false });
  await client.connect();
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}

/** Creates an empty database; returns its connection settings and a way to drop it. */
export async function createEmptyDatabase(): Promise<{ connection: PostgresConnection; drop: () => Promise<void> }> {
  const server = inject('postgres');
  const name = `lexus_test_${randomBytes(6).toString('hex')}`;
  await adminQuery(`CREATE DATABASE ${name}`);
  return {
    connection: { ...server, database: name },
    drop: () => adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`),
  };
}

export interface TestDatabaseOptions {
  /** Run the migrations (default true). */
  migrate?: boolean;
  /** SQL run before the migrations, e.g. the old system's schema and rows. */
  before?: string;
  poolSize?: number;
  start?: string;
}

export async function createTestDatabase(options: TestDatabaseOptions = {}): Promise<TestDatabase> {
  const { connection, drop } = await createEmptyDatabase();
  return openTestDatabase(connection, options, drop);
}

/**
 * A TestDatabase on `connection`: SQL `before` run first, then the migrations (unless told not
 * to), a manual clock at `start`. `close()` ends the pools, then runs `after` (e.g. a drop).
 */
async function openTestDatabase(
  connection: PostgresConnection,
  options: TestDatabaseOptions,
  after: () => Promise<void> = async () => undefined,
): Promise<TestDatabase> {
  const raw = new pg.Pool({ ...connection, ssl: false, max: 2 });
  // A server the test stops now and then: the idle pool's errors are expected.
  raw.on('error', () => undefined);
  if (options.before) await raw.query(options.before);
  const dataSource = createDataSource(connection, { poolSize: options.poolSize ?? 20 });
  await dataSource.initialize();
  if (options.migrate ?? true) await runMigrations(dataSource);
  const clock = new ManualClock(options.start ?? DEFAULT_TEST_START);
  return {
    connection,
    dataSource,
    clock,
    db: new DbManager(dataSource, { clock }),
    query: async <Row>(text: string, values?: unknown[]) => (await raw.query(text, values)).rows as Row[],
    close: async () => {
      await dataSource.destroy().catch(() => undefined);
      await raw.end().catch(() => undefined);
      await after();
    },
  };
}

export const DEFAULT_TEST_START = '2026-03-10T09:00:00.000Z';

/**
 * One database for a test file, emptied before each test with the clock back at `start`.
 * The returned object is filled in before the first test runs.
 */
export function useTestDatabase(options: TestDatabaseOptions = {}): TestDatabase {
  const holder = {} as TestDatabase;
  beforeAll(async () => {
    Object.assign(holder, await createTestDatabase(options));
  });
  afterAll(async () => {
    await holder.close?.();
  });
  beforeEach(async () => {
    await holder.query('TRUNCATE post_history, targets, accounts RESTART IDENTITY CASCADE');
    holder.clock.set(options.start ?? DEFAULT_TEST_START);
  });
  return holder;
}

/**
 * A PostgreSQL server of the test's own, in a temporary folder, to stop and start again under
 * the code being tested (the shared test server must stay up). `remove()` stops it and deletes it.
 */
export async function stoppablePostgres(): Promise<{
  connection: PostgresConnection;
  stop(): Promise<void>;
  start(): Promise<void>;
  remove(): Promise<void>;
}> {
  const dir = await tempDir('lexus-own-pg-');
  const options = { dataDir: path.join(dir, 'data'), port: await freePort(), database: 'lexus' };
  let server = await startEmbeddedPostgres(options);
  return {
    connection: server.connection,
    stop: () => server.stop('fast'),
    start: async () => {
      server = await startEmbeddedPostgres(options);
    },
    remove: async () => {
      await server.stop('fast');
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A TestDatabase on a server of the test's own (stoppablePostgres), or on a way to one (DbLink),
 * migrated. `close()` ends the pools, not the server.
 */
export function databaseOn(connection: PostgresConnection, start = DEFAULT_TEST_START): Promise<TestDatabase> {
  return openTestDatabase(connection, { start, poolSize: 10 });
}

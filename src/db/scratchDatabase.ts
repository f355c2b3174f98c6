/**
 * A throw-away database beside the configured one, on the same server, for `lexus simulate` and
 * `npm run bench`: their made-up accounts and groups never touch the daemon's own data. Needs the
 * right to create databases (the embedded server's user has it).
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { Config, PostgresConnection } from '../config';
import { startEmbeddedPostgres, type EmbeddedServer } from './embeddedPostgres';

export interface ScratchDatabase {
  connection: PostgresConnection;
  name: string;
  drop(): Promise<void>;
}

const sslOf = (connection: PostgresConnection) => (connection.ssl === false ? false : { rejectUnauthorized: connection.ssl === 'verify' });

async function onServer(connection: PostgresConnection, text: string): Promise<void> {
  // The maintenance database, as createdb does; the configured one may not allow CREATE DATABASE in a transaction.
  const client = new pg.Client({ ...connection, database: 'postgres', ssl: sslOf(connection), connectionTimeoutMillis: 10_000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    await client.query(text);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Creates `<prefix>_<random>` on the server of `connection`. */
export async function createScratchDatabase(connection: PostgresConnection, prefix: string): Promise<ScratchDatabase> {
  if (!/^[a-z_][a-z0-9_]*$/.test(prefix)) throw new Error(`invalid database name prefix ${prefix}`);
  const name = `${prefix}_${randomBytes(4).toString('hex')}`;
  try {
    await onServer(connection, `CREATE DATABASE ${name}`);
  } catch (error) {
    const code = (error as { code?: string }).code;
    const why = code === '42501' ? `user ${connection.user} may not create databases (CREATEDB)` : (error as Error).message;
    throw new Error(`cannot create the scratch database ${name} on ${connection.host}:${connection.port}: ${why}`, { cause: error });
  }
  return {
    connection: { ...connection, database: name },
    name,
    drop: () => onServer(connection, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`),
  };
}

/** The server a scratch database goes on: the configured one, else the embedded one (started if need be). */
export async function databaseServer(config: Config): Promise<{ connection: PostgresConnection; embedded?: EmbeddedServer }> {
  if (config.database.mode === 'external') return { connection: config.database.connection };
  const embedded = await startEmbeddedPostgres({ dataDir: config.database.dataDir, port: config.database.port });
  return { connection: embedded.connection, embedded };
}

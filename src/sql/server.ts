/**
 * Statements on the server as a whole, run on its maintenance database (`postgres`) over a
 * connection of their own: the databases the embedded PostgreSQL serves, and the throw-away ones
 * of `lexus simulate` and `npm run bench` (src/db/scratchDatabase.ts). Each is one statement.
 */
import type { Queryable } from './locks';

const rowsOf = <Row>(result: unknown): Row[] =>
  (Array.isArray(result) ? result : ((result as { rows?: Row[] }).rows ?? [])) as Row[];

/** A database name as an SQL identifier, quoted. */
export const quoteIdentifier = (name: string) => `"${name.replace(/"/g, '""')}"`;

/** Where the server keeps its data (SHOW data_directory). */
export async function dataDirectory(client: Queryable): Promise<string | undefined> {
  return rowsOf<{ data_directory: string }>(await client.query('SHOW data_directory'))[0]?.data_directory;
}

export async function databaseExists(client: Queryable, name: string): Promise<boolean> {
  return rowsOf(await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).length > 0;
}

export async function createDatabase(client: Queryable, name: string): Promise<void> {
  await client.query(`CREATE DATABASE ${quoteIdentifier(name)}`);
}

/** `force`: even while sessions are connected to it (they are ended). */
export async function dropDatabase(client: Queryable, name: string, options: { force?: boolean } = {}): Promise<void> {
  await client.query(`DROP DATABASE IF EXISTS ${quoteIdentifier(name)}${options.force ? ' WITH (FORCE)' : ''}`);
}

/** The databases whose name matches the regular expression `pattern` that nobody is connected to. */
export async function idleDatabasesMatching(client: Queryable, pattern: string): Promise<string[]> {
  const rows = rowsOf<{ datname: string }>(
    await client.query(
      `SELECT d.datname FROM pg_database d
        WHERE d.datname ~ $1 AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.datname = d.datname)`,
      [pattern],
    ),
  );
  return rows.map((r) => r.datname);
}

/**
 * The schema's state: which migrations the database has run (lexus check; the start-up's check
 * for migrations of a newer version, src/db/database.ts unknownMigrations, runs the same query).
 * The migrations table's name comes from the caller (src/db/database.ts MIGRATIONS_TABLE), so
 * that database.ts can use this module without an import cycle.
 */
import { type Runner, sql } from './sql';

/**
 * The names of the migrations run, in the order they ran; [] when the migrations table
 * `migrationsTable` does not exist yet (a database never migrated).
 */
export async function loadMigrationsRun(db: Runner, migrationsTable: string): Promise<string[]> {
  const { rows: table } = await sql<{ exists: boolean }>(db, `SELECT to_regclass(:table) IS NOT NULL AS exists`, {
    table: migrationsTable,
  });
  if (!table[0]?.exists) return [];
  const { rows } = await sql<{ name: string }>(db, `SELECT name FROM ${migrationsTable} ORDER BY id`);
  return rows.map((r) => r.name);
}

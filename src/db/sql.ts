/**
 * Running SQL written with named parameters (`:now`, `:accountId`), so that every query in the
 * DbManager reads in full, in one place, with the rules' predicates from rules.ts spliced in.
 */
import { createHash } from 'node:crypto';
import type { PoolClient } from 'pg';
import type { DataSource, QueryRunner } from 'typeorm';

export type SqlParams = Record<string, unknown>;

/** Rewrites `:name` to `$n`. A name with no value is an error, never a silent NULL. */
export function toPositional(sql: string, params: SqlParams): [string, unknown[]] {
  const values: unknown[] = [];
  const positions = new Map<string, number>();
  const text = sql.replace(/(?<![:\w]):([A-Za-z_][A-Za-z0-9_]*)/g, (_match, name: string) => {
    if (!Object.prototype.hasOwnProperty.call(params, name)) {
      throw new Error(`SQL parameter :${name} has no value`);
    }
    let position = positions.get(name);
    if (position === undefined) {
      values.push(params[name]);
      position = values.length;
      positions.set(name, position);
    }
    return `$${position}`;
  });
  return [text, values];
}

export interface SqlResult<Row> {
  rows: Row[];
  rowCount: number;
}

/** A DataSource (a pooled connection per statement) or the QueryRunner of a transaction. */
export type Runner = DataSource | QueryRunner;

const names = new Map<string, string>();

/**
 * A prepared statement's name for a text: each connection parses and plans a statement once and
 * reuses it (the daemon runs the same few dozen statements all day; planning the larger ones
 * costs more than running them).
 */
function statementName(text: string): string {
  let name = names.get(text);
  if (name === undefined) {
    name = `lexus_${createHash('sha1').update(text).digest('hex').slice(0, 24)}`;
    names.set(text, name);
  }
  return name;
}

/**
 * Runs one statement and returns its rows and the number of rows it touched. A statement with
 * parameters runs as a named prepared statement on its connection.
 */
export async function sql<Row = Record<string, unknown>>(runner: Runner, text: string, params: SqlParams = {}): Promise<SqlResult<Row>> {
  const [positional, values] = toPositional(text, params);
  const release = !('release' in runner);
  const queryRunner = 'release' in runner ? runner : runner.createQueryRunner();
  try {
    const client = (await queryRunner.connect()) as PoolClient;
    const result = await client.query(values.length > 0 ? { name: statementName(positional), text: positional, values } : positional);
    const rows = (result.rows ?? []) as Row[];
    return { rows, rowCount: result.rowCount ?? rows.length };
  } finally {
    if (release) await queryRunner.release();
  }
}

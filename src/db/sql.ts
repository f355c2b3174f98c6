/**
 * Running SQL written with named parameters (`:now`, `:accountId`), so that every query in the
 * DbManager reads in full, in one place, with the rules' predicates from rules.ts spliced in.
 */
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

/** Runs one statement and returns its rows and the number of rows it touched. */
export async function sql<Row = Record<string, unknown>>(runner: Runner, text: string, params: SqlParams = {}): Promise<SqlResult<Row>> {
  const [positional, values] = toPositional(text, params);
  const release = !('release' in runner);
  const queryRunner = 'release' in runner ? runner : runner.createQueryRunner();
  try {
    const result = await queryRunner.query(positional, values, true);
    const rows = (Array.isArray(result.records) ? result.records : []) as Row[];
    return { rows, rowCount: result.affected ?? rows.length };
  } finally {
    if (release) await queryRunner.release();
  }
}

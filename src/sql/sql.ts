/**
 * Running SQL written with named parameters (`:now`, `:accountId`), so that every query in the
 * DbManager reads in full, in one place, with the rules' predicates from rules.ts spliced in.
 */
import { createHash } from 'node:crypto';
import type { PoolClient } from 'pg';
import type { DataSource, QueryRunner } from 'typeorm';

export type SqlParams = Record<string, unknown>;

interface Rewrite {
  /** The text with `$n` for each named parameter. */
  text: string;
  /** The parameters' names, in the order of n. */
  names: string[];
}

const QUOTE = 0x27; // '
const DOUBLE_QUOTE = 0x22; // "
const DASH = 0x2d; // -
const SLASH = 0x2f; // /
const STAR = 0x2a; // *
const DOLLAR = 0x24; // $
const COLON = 0x3a; // :
const BACKSLASH = 0x5c; // \
/** A dollar quote's opening: $$ or $tag$ (a tag is an identifier without $). */
const DOLLAR_TAG = /\$(?:[A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/y;

/** A letter or _ (a name's first character). NaN (out of the text) is none. */
function isIdentifierStart(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || c === 0x5f;
}

/** A letter, digit or _ (what `\w` matches). */
function isIdentifierChar(c: number): boolean {
  return isIdentifierStart(c) || (c >= 0x30 && c <= 0x39);
}

/** Inside an identifier as PostgreSQL reads one: also $ and any non-ASCII character. */
function continuesIdentifier(c: number): boolean {
  return isIdentifierChar(c) || c === DOLLAR || c >= 0x80;
}

/** The index after the closing quote of a literal or quoted identifier whose text starts at `from`; a doubled quote is one character of it. */
function endOfQuoted(sql: string, from: number, quote: number, backslashEscapes: boolean): number {
  const n = sql.length;
  let i = from;
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (backslashEscapes && c === BACKSLASH) {
      i += 2;
    } else if (c === quote) {
      if (sql.charCodeAt(i + 1) !== quote) return i + 1;
      i += 2;
    } else {
      i += 1;
    }
  }
  return n;
}

/** The index after the end of a block comment whose text starts at `from`; they nest, as in PostgreSQL. */
function endOfBlockComment(sql: string, from: number): number {
  const n = sql.length;
  let depth = 1;
  let i = from;
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (c === STAR && sql.charCodeAt(i + 1) === SLASH) {
      depth -= 1;
      i += 2;
      if (depth === 0) return i;
    } else if (c === SLASH && sql.charCodeAt(i + 1) === STAR) {
      depth += 1;
      i += 2;
    } else {
      i += 1;
    }
  }
  return n;
}

/**
 * Where the named parameters of a statement are: its text with each `:name` replaced by `$n`,
 * and the names in the order of n. Only real parameters count: a `:name` inside a string
 * literal ('...', E'...' with backslash escapes, '' doubled), a quoted identifier ("..."), a
 * dollar-quoted string ($$...$$, $tag$...$tag$) or a comment (-- and nested /* *\/) stays as
 * it is, and so does a cast (`::int`). One pass over the text.
 */
function parseNamedParameters(sql: string): Rewrite {
  const names: string[] = [];
  const positions = new Map<string, number>();
  let out = '';
  let copiedTo = 0;
  const n = sql.length;
  let i = 0;
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (c === QUOTE) {
      // E'...' (or e'...'): backslash escapes; otherwise standard_conforming_strings, '' only.
      const escapes = i > 0 && (sql[i - 1] === 'E' || sql[i - 1] === 'e') && !isIdentifierChar(sql.charCodeAt(i - 2));
      i = endOfQuoted(sql, i + 1, QUOTE, escapes);
    } else if (c === DOUBLE_QUOTE) {
      i = endOfQuoted(sql, i + 1, DOUBLE_QUOTE, false);
    } else if (c === DASH && sql.charCodeAt(i + 1) === DASH) {
      const newline = sql.indexOf('\n', i + 2);
      i = newline === -1 ? n : newline + 1;
    } else if (c === SLASH && sql.charCodeAt(i + 1) === STAR) {
      i = endOfBlockComment(sql, i + 2);
    } else if (c === DOLLAR && !continuesIdentifier(sql.charCodeAt(i - 1))) {
      // $tag$ or $$ opens a dollar-quoted string; $1 (a positional parameter) does not.
      DOLLAR_TAG.lastIndex = i;
      const tag = DOLLAR_TAG.exec(sql);
      if (tag) {
        const close = sql.indexOf(tag[0], i + tag[0].length);
        i = close === -1 ? n : close + tag[0].length;
      } else {
        i += 1;
      }
    } else if (c === COLON) {
      const next = sql.charCodeAt(i + 1);
      if (next === COLON) {
        i += 2; // a cast: ::type
      } else if (
        isIdentifierStart(next) &&
        !isIdentifierChar(sql.charCodeAt(i - 1)) &&
        sql.charCodeAt(i - 1) !== COLON
      ) {
        let end = i + 2;
        while (end < n && isIdentifierChar(sql.charCodeAt(end))) end += 1;
        const name = sql.slice(i + 1, end);
        let position = positions.get(name);
        if (position === undefined) {
          names.push(name);
          position = names.length;
          positions.set(name, position);
        }
        out += `${sql.slice(copiedTo, i)}$${position}`;
        copiedTo = end;
        i = end;
      } else {
        i += 1;
      }
    } else {
      i += 1;
    }
  }
  return { text: copiedTo === 0 ? sql : out + sql.slice(copiedTo), names };
}

/** Each text's rewrite: the daemon runs the same few dozen texts all day. */
const rewrites = new Map<string, Rewrite>();
/** A bound on the cache, should some caller build texts without end. */
const MAX_REWRITES = 2_000;

function rewriteOf(sql: string): Rewrite {
  let rewrite = rewrites.get(sql);
  if (rewrite === undefined) {
    rewrite = parseNamedParameters(sql);
    if (rewrites.size >= MAX_REWRITES) rewrites.clear();
    rewrites.set(sql, rewrite);
  }
  return rewrite;
}

/**
 * Rewrites `:name` to `$n` (not inside literals, quoted identifiers, dollar quotes or comments;
 * `::type` stays). A name with no value is an error, never a silent NULL.
 */
export function toPositional(sql: string, params: SqlParams): [string, unknown[]] {
  const { text, names } = rewriteOf(sql);
  const values = names.map((name) => {
    if (!Object.hasOwn(params, name)) {
      throw new Error(`SQL parameter :${name} has no value`);
    }
    return params[name];
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
export async function sql<Row = Record<string, unknown>>(
  runner: Runner,
  text: string,
  params: SqlParams = {},
): Promise<SqlResult<Row>> {
  const [positional, values] = toPositional(text, params);
  const release = !('release' in runner);
  const queryRunner = 'release' in runner ? runner : runner.createQueryRunner();
  try {
    const client = (await queryRunner.connect()) as PoolClient;
    const result = await client.query(
      values.length > 0 ? { name: statementName(positional), text: positional, values } : positional,
    );
    const rows = (result.rows ?? []) as Row[];
    return { rows, rowCount: result.rowCount ?? rows.length };
  } finally {
    if (release) await queryRunner.release();
  }
}

/**
 * toPositional: only real parameters become $n; literals, quoted identifiers, dollar quotes,
 * comments and casts keep their text.
 */
import { describe, expect, it } from 'vitest';
import { toPositional } from '../src/sql/sql';

describe('toPositional', () => {
  it('numbers each name once, in order of first use, and keeps casts', () => {
    expect(toPositional('SELECT :a, :b, :a', { a: 1, b: 2 })).toEqual(['SELECT $1, $2, $1', [1, 2]]);
    expect(toPositional('SELECT CAST(:n AS integer)::int, :n::text, x::int', { n: 5 })).toEqual([
      'SELECT CAST($1 AS integer)::int, $1::text, x::int',
      [5],
    ]);
    expect(toPositional('SELECT :x::int', { x: 1 })).toEqual(['SELECT $1::int', [1]]);
    expect(toPositional('SELECT 1::numeric(3,1),:x', { x: 1 })).toEqual(['SELECT 1::numeric(3,1),$1', [1]]);
  });

  it('a name with no value is an error', () => {
    expect(() => toPositional('SELECT :missing', {})).toThrow('SQL parameter :missing has no value');
    // Inherited properties are no value either.
    expect(() => toPositional('SELECT :toString', {})).toThrow('SQL parameter :toString has no value');
  });

  it('leaves a text without parameters as it is', () => {
    expect(toPositional('SELECT 1', {})).toEqual(['SELECT 1', []]);
    expect(toPositional('', {})).toEqual(['', []]);
  });

  it('does not rewrite inside string literals', () => {
    expect(toPositional("SELECT ':x', :y", { y: 1 })).toEqual(["SELECT ':x', $1", [1]]);
    // '' is a quote inside the literal, not its end.
    expect(toPositional("SELECT 'it''s :x', :y", { y: 1 })).toEqual(["SELECT 'it''s :x', $1", [1]]);
    expect(toPositional("SELECT '''', :y, ''':x'''", { y: 1 })).toEqual(["SELECT '''', $1, ''':x'''", [1]]);
    // A backslash in a standard string is just a character: the quote after it ends the literal.
    expect(toPositional("SELECT 'a\\', :y", { y: 1 })).toEqual(["SELECT 'a\\', $1", [1]]);
    expect(toPositional("SELECT to_char(:t, 'HH24:MI:SS')", { t: 'now' })).toEqual([
      "SELECT to_char($1, 'HH24:MI:SS')",
      ['now'],
    ]);
  });

  it("does not rewrite inside E'...' strings, whose \\' and \\\\ are escapes", () => {
    expect(toPositional("SELECT E'it\\'s :x', :y", { y: 1 })).toEqual(["SELECT E'it\\'s :x', $1", [1]]);
    expect(toPositional("SELECT e'\\\\', :y", { y: 1 })).toEqual(["SELECT e'\\\\', $1", [1]]);
    expect(toPositional("SELECT E'a''b :x', :y", { y: 1 })).toEqual(["SELECT E'a''b :x', $1", [1]]);
    // A name ending in E before a quote is no E string: its backslash is a character.
    expect(toPositional("SELECT typE'\\', :y", { y: 1 })).toEqual(["SELECT typE'\\', $1", [1]]);
  });

  it('does not rewrite inside quoted identifiers', () => {
    expect(toPositional('SELECT "ident:x", :y FROM "a""b:z"', { y: 1 })).toEqual([
      'SELECT "ident:x", $1 FROM "a""b:z"',
      [1],
    ]);
  });

  it('does not rewrite inside dollar-quoted strings', () => {
    expect(toPositional('SELECT $$ :x \' " -- $$, :y', { y: 1 })).toEqual(['SELECT $$ :x \' " -- $$, $1', [1]]);
    expect(toPositional('DO $body$ BEGIN PERFORM :x; $$ :z $$; END $body$; SELECT :y', { y: 1 })).toEqual([
      'DO $body$ BEGIN PERFORM :x; $$ :z $$; END $body$; SELECT $1',
      [1],
    ]);
    // $1 is a positional parameter, and a $ inside a name opens nothing.
    expect(toPositional('SELECT $1, :y, a$b, :z', { y: 1, z: 2 })).toEqual(['SELECT $1, $1, a$b, $2', [1, 2]]);
  });

  it('does not rewrite inside comments', () => {
    expect(toPositional('SELECT :y -- not :x\n, :z', { y: 1, z: 2 })).toEqual(['SELECT $1 -- not :x\n, $2', [1, 2]]);
    expect(toPositional('SELECT :y -- :x to the end', { y: 1 })).toEqual(['SELECT $1 -- :x to the end', [1]]);
    expect(toPositional("SELECT /* :x ' */ :y", { y: 1 })).toEqual(["SELECT /* :x ' */ $1", [1]]);
    // Block comments nest in PostgreSQL.
    expect(toPositional('SELECT /* a /* :x */ :w */ :y', { y: 1 })).toEqual(['SELECT /* a /* :x */ :w */ $1', [1]]);
    // A minus and a slash alone are operators.
    expect(toPositional('SELECT :a - :b / :c', { a: 1, b: 2, c: 3 })).toEqual(['SELECT $1 - $2 / $3', [1, 2, 3]]);
  });

  it('rewrites a name only at its start, as before', () => {
    expect(toPositional('SELECT a:b, :c_1d', { c_1d: 1 })).toEqual(['SELECT a:b, $1', [1]]);
    expect(toPositional('SELECT ARRAY[1,2][1:2], :x', { x: 1 })).toEqual(['SELECT ARRAY[1,2][1:2], $1', [1]]);
  });

  it('gives the same answer for the same text every time (cached) with the values of each call', () => {
    const text = "SELECT :a, ':a', :b";
    expect(toPositional(text, { a: 1, b: 2 })).toEqual(["SELECT $1, ':a', $2", [1, 2]]);
    expect(toPositional(text, { a: 3, b: 4 })).toEqual(["SELECT $1, ':a', $2", [3, 4]]);
    expect(() => toPositional(text, { a: 3 })).toThrow('SQL parameter :b has no value');
  });

  it('stays linear on a long text', () => {
    const text = `SELECT ${Array.from({ length: 20_000 }, (_, i) => `:p${i % 50} || 'x:y' /* :c */ || $$:d$$`).join(' || ')}`;
    const params = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`p${i}`, i]));
    const began = performance.now();
    const [positional, values] = toPositional(text, params);
    expect(performance.now() - began).toBeLessThan(1_000);
    expect(values).toHaveLength(50);
    expect(positional).not.toMatch(/:p\d/);
  });
});

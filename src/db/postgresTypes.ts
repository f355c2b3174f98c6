/**
 * The seed's timestamps are `timestamp without time zone` holding UTC. node-postgres, left
 * alone, reads such a value as *local* time and writes a Date as local time with an offset
 * that PostgreSQL then ignores for `timestamp` columns; on a host with TZ=America/Los_Angeles
 * every time would be off by hours. So, deliberately:
 *  - reads: this pool's type parser turns `timestamp` text into a Date at that UTC instant;
 *  - writes: the connection's client (UtcDateClient in pgConnection.ts) sends every Date
 *    parameter as UTC (utcDateParameters), as pg's process-wide `parseInputDatesAsUTC` would;
 *    this package leaves that default, and every other pg default, as it finds them;
 *  - the session TimeZone is UTC, so column defaults like now() also store UTC;
 *  - the DbManager passes instants as ISO strings ("...Z"), which `CAST(... AS timestamp)`
 *    reads as UTC wall time.
 */
import { isDate } from 'node:util/types';
import pg from 'pg';

const TIMESTAMP_OID = 1114;
const PLAIN_TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(\.\d{1,6})?$/;

/** Parses PostgreSQL's text form of a `timestamp` as UTC. Infinity and BC dates keep pg's parsing. */
export function parseUtcTimestamp(text: string): Date {
  if (!PLAIN_TIMESTAMP.test(text)) return pg.types.getTypeParser(TIMESTAMP_OID, 'text')(text) as Date;
  return new Date(`${text.replace(' ', 'T')}Z`);
}

/** The `types` option for a pg pool: pg's parsers, except `timestamp` read as UTC. */
export const utcTimestampTypes = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === TIMESTAMP_OID && format !== 'binary') return parseUtcTimestamp;
    return format === 'binary' ? pg.types.getTypeParser(oid, 'binary') : pg.types.getTypeParser(oid, 'text');
  },
};

/**
 * A Date as pg sends it with `parseInputDatesAsUTC` on: its UTC wall time with +00:00, a year
 * before 1 as BC. Text, so pg sends it on unchanged whatever its defaults.
 */
export function utcDateParameter(date: Date): string {
  let year = date.getUTCFullYear();
  const bc = year < 1;
  if (bc) year = Math.abs(year) + 1; // year 0 is 1 BC
  const two = (n: number) => String(n).padStart(2, '0');
  return `${String(year).padStart(4, '0')}-${two(date.getUTCMonth() + 1)}-${two(date.getUTCDate())}T${two(date.getUTCHours())}:${two(date.getUTCMinutes())}:${two(date.getUTCSeconds())}.${String(date.getUTCMilliseconds()).padStart(3, '0')}+00:00${bc ? ' BC' : ''}`;
}

/**
 * Query parameters with each valid Date, also inside arrays, as utcDateParameter() text; the
 * same array when there is none. An invalid Date is left to pg (which warns about it).
 */
export function utcDateParameters(values: unknown[]): unknown[] {
  let changed: unknown[] | undefined;
  for (let i = 0; i < values.length; i += 1) {
    const value = values[i];
    let prepared = value;
    if (isDate(value)) {
      if (!Number.isNaN(value.getTime())) prepared = utcDateParameter(value);
    } else if (Array.isArray(value)) {
      prepared = utcDateParameters(value);
    }
    if (prepared !== value) {
      changed ??= values.slice();
      changed[i] = prepared;
    }
  }
  return changed ?? values;
}

/** An instant as a SQL parameter for `CAST(:x AS timestamp)`: UTC wall time. */
export function sqlTime(instant: Date): string {
  if (Number.isNaN(instant.getTime())) throw new Error('sqlTime: invalid Date');
  return instant.toISOString();
}

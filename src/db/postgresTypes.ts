/**
 * The seed's timestamps are `timestamp without time zone` holding UTC. node-postgres, left
 * alone, reads such a value as *local* time and writes a Date as local time with an offset
 * that PostgreSQL then ignores for `timestamp` columns; on a host with TZ=America/Los_Angeles
 * every time would be off by hours. So, deliberately:
 *  - reads: this pool's type parser turns `timestamp` text into a Date at that UTC instant;
 *  - writes: pg's process-wide `parseInputDatesAsUTC` makes every Date parameter UTC
 *    (pg has no per-pool switch for that; this package sets it when it is loaded);
 *  - the session TimeZone is UTC, so column defaults like now() also store UTC;
 *  - the DbManager passes instants as ISO strings ("...Z"), which `CAST(... AS timestamp)`
 *    reads as UTC wall time.
 */
import pg from 'pg';

pg.defaults.parseInputDatesAsUTC = true;

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

/** An instant as a SQL parameter for `CAST(:x AS timestamp)`: UTC wall time. */
export function sqlTime(instant: Date): string {
  if (Number.isNaN(instant.getTime())) throw new Error('sqlTime: invalid Date');
  return instant.toISOString();
}

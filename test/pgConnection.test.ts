/**
 * One factory for node-postgres options (pgConnection.ts): TLS mapped once, the bounds and the
 * session settings each site asks for, and Date parameters sent as UTC on our connections only,
 * with pg's process-wide defaults left as they are.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import type { PostgresConnection } from '../src/config';
import { createDataSource } from '../src/db/database';
import { createPgClient, pgConnectionConfig, pgSsl, UtcDateClient } from '../src/db/pgConnection';
import { utcDateParameter, utcDateParameters, utcTimestampTypes } from '../src/db/postgresTypes';
import { sql } from '../src/sql/sql';
import { useTestDatabase } from './helpers/database';

const run = promisify(execFile);
const connection: PostgresConnection = {
  host: 'db.example',
  port: 6543,
  user: 'lexus',
  password: undefined,
  database: 'lexus',
  ssl: false,
};

describe('pgConnectionConfig', () => {
  it('maps the TLS mode once', () => {
    expect(pgSsl({ ssl: false })).toBe(false);
    expect(pgSsl({ ssl: 'require' })).toEqual({ rejectUnauthorized: false });
    expect(pgSsl({ ssl: 'verify' })).toEqual({ rejectUnauthorized: true });
    expect(pgConnectionConfig({ ...connection, ssl: 'verify' }).ssl).toEqual({ rejectUnauthorized: true });
  });

  it('sends only what is asked for', () => {
    expect(pgConnectionConfig(connection)).toEqual({
      host: 'db.example',
      port: 6543,
      user: 'lexus',
      password: '',
      database: 'lexus',
      ssl: false,
    });
    expect(
      pgConnectionConfig(
        { ...connection, password: 'p w' },
        { database: 'postgres', connectionTimeoutMillis: 10_000, statementTimeoutMs: 0, lockTimeoutMs: 0 },
      ),
    ).toEqual({
      host: 'db.example',
      port: 6543,
      user: 'lexus',
      password: 'p w',
      database: 'postgres',
      ssl: false,
      connectionTimeoutMillis: 10_000,
    });
  });

  it("the account locks' connection as before", () => {
    const config = pgConnectionConfig(connection, {
      utcTimestamps: true,
      applicationName: 'lexus account locks',
      keepAliveInitialDelayMillis: 10_000,
      queryTimeoutMs: 5_000,
      connectionTimeoutMillis: 5_000,
      settings: { tcp_keepalives_idle: 10, tcp_keepalives_interval: 5, tcp_keepalives_count: 3 },
    });
    expect(config).toMatchObject({
      types: utcTimestampTypes,
      application_name: 'lexus account locks',
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
      query_timeout: 5_000,
      connectionTimeoutMillis: 5_000,
      options: '-c tcp_keepalives_idle=10 -c tcp_keepalives_interval=5 -c tcp_keepalives_count=3',
    });
    expect(createPgClient(connection, { utcTimestamps: true })).toBeInstanceOf(UtcDateClient);
    expect(createPgClient(connection)).toBeInstanceOf(pg.Client);
  });

  it("escapes a setting's spaces and backslashes as libpq wants", () => {
    expect(pgConnectionConfig(connection, { settings: { search_path: 'a, b', x: 'c\\d' } }).options).toBe(
      '-c search_path=a,\\ b -c x=c\\\\d',
    );
  });

  it('createDataSource: the options it had before, on a client that sends Dates as UTC', () => {
    const options = createDataSource(
      { ...connection, ssl: 'require' },
      { statementTimeoutMs: 30_000, lockTimeoutMs: 10_000 },
    ).options as unknown as Record<string, unknown>;
    expect(options).toMatchObject({
      host: 'db.example',
      port: 6543,
      username: 'lexus',
      password: '',
      database: 'lexus',
      ssl: { rejectUnauthorized: false },
      poolSize: 10,
      applicationName: 'lexus',
    });
    expect(options.extra).toEqual({
      types: utcTimestampTypes,
      Client: UtcDateClient,
      options: '-c TimeZone=UTC -c DateStyle=ISO,MDY',
      connectionTimeoutMillis: 10_000,
      statement_timeout: 30_000,
      query_timeout: 35_000,
      lock_timeout: 10_000,
    });
    const probe = createDataSource(connection, { timeoutMs: 2_000, applicationName: 'lexus health' })
      .options as unknown as Record<string, unknown>;
    expect(probe.applicationName).toBe('lexus health');
    expect(probe.extra).toEqual({
      types: utcTimestampTypes,
      Client: UtcDateClient,
      options: '-c TimeZone=UTC -c DateStyle=ISO,MDY',
      connectionTimeoutMillis: 2_000,
      statement_timeout: 2_000,
    });
  });
});

describe('Date parameters as UTC', () => {
  it('formats a Date as pg does with parseInputDatesAsUTC', () => {
    expect(utcDateParameter(new Date('2026-03-08T10:30:00.5Z'))).toBe('2026-03-08T10:30:00.500+00:00');
    expect(utcDateParameter(new Date('0000-06-01T00:00:00Z'))).toBe('0001-06-01T00:00:00.000+00:00 BC');
    const invalid = new Date(NaN);
    const values = ['x', 1, null, invalid];
    expect(utcDateParameters(values)).toBe(values);
    expect(utcDateParameters([new Date('2026-01-01T00:00:00Z'), [new Date('2026-01-02T00:00:00Z'), 'y']])).toEqual([
      '2026-01-01T00:00:00.000+00:00',
      ['2026-01-02T00:00:00.000+00:00', 'y'],
    ]);
  });

  describe('on a host in Los Angeles', () => {
    const t = useTestDatabase();
    const tz = process.env.TZ;
    afterEach(() => {
      process.env.TZ = tz;
    });

    it("our connections store the UTC wall time, a plain pg client (pg's defaults, untouched) the local one", async () => {
      process.env.TZ = 'America/Los_Angeles';
      expect(new Date('2026-07-01T12:00:00Z').getTimezoneOffset()).toBe(420);
      expect(pg.defaults.parseInputDatesAsUTC).toBe(false);
      const at = new Date('2026-07-01T23:30:00.000Z');
      const text = `SELECT to_char(CAST(:at AS timestamp), 'YYYY-MM-DD HH24:MI:SS') AS at,
                           to_char((CAST(:list AS timestamp[]))[1], 'YYYY-MM-DD HH24:MI:SS') AS first`;
      const {
        rows: [viaSql],
      } = await sql<{ at: string; first: string }>(t.dataSource, text, { at, list: [at] });
      expect(viaSql).toEqual({ at: '2026-07-01 23:30:00', first: '2026-07-01 23:30:00' });
      const [viaTypeorm] = (await t.dataSource.query(
        `SELECT to_char(CAST($1 AS timestamp), 'YYYY-MM-DD HH24:MI:SS') AS at`,
        [at],
      )) as { at: string }[];
      expect(viaTypeorm?.at).toBe('2026-07-01 23:30:00');
      const ours = createPgClient(t.connection, { utcTimestamps: true });
      const plain = new pg.Client({ ...t.connection, ssl: false });
      await ours.connect();
      await plain.connect();
      try {
        const query = `SELECT to_char(CAST($1 AS timestamp), 'YYYY-MM-DD HH24:MI:SS') AS at`;
        expect((await ours.query<{ at: string }>(query, [at])).rows[0]?.at).toBe('2026-07-01 23:30:00');
        expect((await ours.query<{ at: string }>({ text: query, values: [at] })).rows[0]?.at).toBe(
          '2026-07-01 23:30:00',
        );
        expect(
          (await ours.query<{ at: string }>({ name: 'lexus_test_at', text: query, values: [at] })).rows[0]?.at,
        ).toBe('2026-07-01 23:30:00');
        // A Submittable (pg.Query) takes its values when it is submitted.
        const submitted = await new Promise<pg.QueryResult<{ at: string }>>((resolve, reject) => {
          ours.query(
            new pg.Query({
              text: query,
              values: [at],
              callback: (error: Error | null, result: pg.QueryResult<{ at: string }>) =>
                error ? reject(error) : resolve(result),
            } as never),
          );
        });
        expect(submitted.rows[0]?.at).toBe('2026-07-01 23:30:00');
        expect((await plain.query<{ at: string }>(query, [at])).rows[0]?.at).toBe('2026-07-01 16:30:00');
      } finally {
        await ours.end();
        await plain.end();
      }
    });
  });
});

describe('importing the library', () => {
  const dist = path.resolve(__dirname, '../dist/index.js');

  it.skipIf(!existsSync(dist))(
    "leaves pg.defaults.parseInputDatesAsUTC (and pg's other defaults) as they were",
    async () => {
      const script = `
      const pg = require('pg');
      const before = JSON.stringify(pg.defaults);
      const lexus = require(${JSON.stringify(dist)});
      lexus.createDataSource({ host: 'localhost', port: 5432, user: 'u', password: undefined, database: 'd', ssl: false });
      process.stdout.write(JSON.stringify({ utc: pg.defaults.parseInputDatesAsUTC, same: JSON.stringify(pg.defaults) === before, loaded: typeof lexus.openDatabase }));
    `;
      const { stdout } = await run(process.execPath, ['-e', script], { cwd: path.resolve(__dirname, '..') });
      expect(JSON.parse(stdout)).toEqual({ utc: false, same: true, loaded: 'function' });
    },
  );
});

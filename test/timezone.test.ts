/**
 * The seed's timestamps hold UTC in `timestamp without time zone`. This file runs in the utc
 * project and again with TZ=America/Los_Angeles (vitest.config.mts): stored values, values read
 * back, and the UTC day of the limits must be the same in both.
 */

import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { createDataSource } from '../src/db/database';
import { Account, Target } from '../src/db/entities';
import { parseUtcTimestamp } from '../src/db/postgresTypes';
import { useTestDatabase } from './helpers/database';
import { counters, insertAccount, insertBoundTarget, storedText } from './helpers/fixtures';

const t = useTestDatabase();

describe(`timestamps with TZ=${process.env.TZ}`, () => {
  it('runs in the time zone its project says', () => {
    // 2026-03-08 is the day Los Angeles moves to summer time: the offset there is not 0.
    const offset = new Date('2026-03-08T12:00:00Z').getTimezoneOffset();
    expect(offset).toBe(process.env.TZ === 'America/Los_Angeles' ? 420 : 0);
  });

  it('DbManager writes UTC wall time and reads back the same instant, across a DST change', async () => {
    const a = await insertAccount(t, 'acc');
    t.clock.set('2026-03-08T12:00:00.000Z');
    // 10:30 UTC on 2026-03-08 is 02:30 in Los Angeles, an hour that does not exist there.
    await t.db.assignGroup('@group_g', a, new Date('2026-03-08T10:30:00.000Z'));
    expect(await storedText(t, 'targets', 'joined_at', 1)).toBe('2026-03-08T10:30:00.000');
    expect(await storedText(t, 'targets', 'warmup_ends_at', 1)).toBe('2026-03-09T10:30:00.000');
    const target = await t.dataSource.getRepository(Target).findOneByOrFail({ id: 1 });
    expect(target.joinedAt?.toISOString()).toBe('2026-03-08T10:30:00.000Z');
    expect(target.warmupEndsAt?.toISOString()).toBe('2026-03-09T10:30:00.000Z');
    await t.db.setAccountFloodWait(a, new Date('2026-03-08T10:45:00.000Z'));
    expect(await storedText(t, 'accounts', 'next_allowed_action_time', a)).toBe('2026-03-08T10:45:00.000');
  });

  it('entities saved through TypeORM store UTC too', async () => {
    const repo = t.dataSource.getRepository(Account);
    const saved = await repo.save(
      repo.create({ sessionName: 'orm', nextAllowedActionTime: new Date('2026-07-01T23:30:00.000Z') }),
    );
    expect(await storedText(t, 'accounts', 'next_allowed_action_time', saved.id)).toBe('2026-07-01T23:30:00.000');
    const loaded = await repo.findOneByOrFail({ id: saved.id });
    expect(loaded.nextAllowedActionTime?.toISOString()).toBe('2026-07-01T23:30:00.000Z');
  });

  it("column defaults (now()) store UTC even where the database's own zone is not UTC", async () => {
    await t.query(`ALTER DATABASE ${t.connection.database} SET timezone = 'Asia/Tokyo'`);
    const insert = `INSERT INTO accounts (session_name) VALUES ($1)
                    RETURNING to_char(created_at, 'YYYY-MM-DD HH24:MI:SS') AS stored,
                              to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') AS utc_now`;
    const app = createDataSource(t.connection, { poolSize: 1 });
    const plain = new pg.Client({ ...t.connection, ssl: false });
    await app.initialize();
    await plain.connect();
    try {
      const [fromApp] = await app.query(insert, ['app']);
      expect(fromApp.stored).toBe(fromApp.utc_now);
      // Without the app's session settings the same default would store Tokyo time.
      const {
        rows: [fromPlain],
      } = await plain.query(insert, ['plain']);
      expect(fromPlain.stored).not.toBe(fromPlain.utc_now);
    } finally {
      await app.destroy();
      await plain.end();
      await t.query(`ALTER DATABASE ${t.connection.database} RESET timezone`);
    }
  });

  it('reads timestamps right on a shared database set to another DateStyle', async () => {
    await t.query(`ALTER DATABASE ${t.connection.database} SET datestyle = 'SQL, DMY'`);
    const app = createDataSource(t.connection, { poolSize: 1 });
    await app.initialize();
    try {
      const [row] = await app.query(`SELECT CAST('2026-03-08 10:30:00.5' AS timestamp) AS at`);
      expect((row.at as Date).toISOString()).toBe('2026-03-08T10:30:00.500Z');
    } finally {
      await app.destroy();
      await t.query(`ALTER DATABASE ${t.connection.database} RESET datestyle`);
    }
  });

  it("the limits' day is the UTC day, not the host's", async () => {
    const a = await insertAccount(t, 'acc');
    t.clock.set('2026-03-10T06:00:00.000Z');
    const g = await insertBoundTarget(t, '@g', a);
    // 23:30 UTC on the 10th is 16:30 in Los Angeles; 00:30 UTC on the 11th is still the 10th there.
    t.clock.set('2026-03-10T23:30:00.000Z');
    expect(await t.db.reservePostSlot({ accountId: a, targetId: g })).not.toBeNull();
    expect(await t.db.reservePostSlot({ accountId: a, targetId: g })).not.toBeNull();
    expect(await t.db.reservePostSlot({ accountId: a, targetId: g })).toBeNull();
    t.clock.set('2026-03-11T00:30:00.000Z');
    expect(await t.db.reservePostSlot({ accountId: a, targetId: g })).not.toBeNull();
    expect(await counters(t, a, g)).toEqual({ account: 1, group: 1 });
  });

  it("parses PostgreSQL's text form as UTC, and leaves infinity to pg", () => {
    expect(parseUtcTimestamp('2026-03-08 10:30:00.123456').toISOString()).toBe('2026-03-08T10:30:00.123Z');
    expect(parseUtcTimestamp('2026-03-08 10:30:00').toISOString()).toBe('2026-03-08T10:30:00.000Z');
    expect(parseUtcTimestamp('infinity')).toBe(Infinity);
  });
});

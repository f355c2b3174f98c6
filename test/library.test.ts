/** The package entry, used as the README shows. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MIGRATION_NAMES } from '../src/db/migrations';
import * as lexus from '../src/index';
import { createEmptyDatabase } from './helpers/database';

let database: Awaited<ReturnType<typeof createEmptyDatabase>>;
beforeAll(async () => {
  database = await createEmptyDatabase();
});
afterAll(async () => {
  await database?.drop();
});

describe('the library entry', () => {
  it('exports the data layer', () => {
    for (const name of [
      'openDatabase',
      'DbManager',
      'normalizeGroupLink',
      'loadConfig',
      'Account',
      'Target',
      'PostHistory',
      'runMigrations',
    ] as const) {
      expect(typeof lexus[name], name).toBe('function');
    }
    expect(lexus.rules.GROUP_DAILY_POST_LIMIT).toBe(2);
    expect(lexus.rules.ACCOUNT_DAILY_POST_LIMIT).toBe(20);
  });

  it("openDatabase from the environment's rules, then the seed's examples", async () => {
    const c = database.connection;
    const config = lexus.loadConfig(
      {
        DATABASE_URL: `postgresql+asyncpg://${c.user}:${encodeURIComponent(c.password ?? '')}@${c.host}:${c.port}/${c.database}`,
      },
      { inDocker: false },
    );
    const db = await lexus.openDatabase(config, { migrate: true });
    try {
      expect(db.migrationsRun).toEqual(MIGRATION_NAMES);
      expect(db.description).toBe(`postgresql://${c.user}@${c.host}:${c.port}/${c.database} (from DATABASE_URL)`);
      const clock = new lexus.ManualClock('2026-05-01T10:00:00Z');
      const manager = new lexus.DbManager(db.dataSource, { clock });
      const account = await db.dataSource
        .getRepository(lexus.Account)
        .save({ sessionName: 'lexus_1', phone: '+380501112233' });
      expect(
        await manager.assignGroup('https://t.me/autobazar_com_ua', account.id, new Date('2026-04-30T09:00:00Z')),
      ).toBe(true);
      const [group] = await manager.getGroupsReadyForPosting('ukraine_cars', 50);
      expect(group?.link).toBe('@autobazar_com_ua');
      expect(group?.assignedAccount?.sessionName).toBe('lexus_1');
      await manager.recordPost({
        accountId: account.id,
        targetId: group!.id,
        messageContent: 'Продається Lexus IS 250...',
      });
      await manager.setAccountFloodWait(account.id, new Date('2026-05-01T11:00:00Z'));
      expect(await manager.getGroupsReadyForPosting()).toEqual([]);
      clock.set('2026-05-01T11:00:00Z');
      expect(await manager.clearAccountFloodWait(account.id)).toBe(true);
      const [again] = await manager.getGroupsReadyForPosting();
      expect(again?.dailyPostsInGroup).toBe(1);
      expect(again?.assignedAccount?.dailyPostsCount).toBe(1);
    } finally {
      await db.close();
    }
    expect(db.dataSource.isInitialized).toBe(false);
  });
});

/**
 * Backups that restore (issue 15, part 7). A restore from a dump makes new tables whose rows
 * forget what Telegram received since the dump: no post is reserved until `lexus repair
 * counters` rebuilds the counters from post_history. The README's pg_dump / pg_restore commands,
 * run for real into an empty and into an existing database, where a pg_dump as new as the server
 * is installed (Debian's PostgreSQL 15 in CI's second pass; the embedded 18 has none).
 */
import { existsSync, readdirSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DbManager } from '../src/db/DbManager';
import { repairCounters, restoreHold } from '../src/sql/restore';
import { formatStatus } from '../src/status/formatStatus';
import { loadStatus } from '../src/status/loadStatus';
import { run, runLexus, tempDir } from './helpers/cli';
import { TEST_SETTINGS } from './helpers/daemon';
import { createEmptyDatabase, useTestDatabase } from './helpers/database';
import { insertBoundTarget, insertDrivableAccount } from './helpers/fixtures';
import { databaseUrl } from './helpers/net';

const t = useTestDatabase({ start: '2026-03-10T12:00:00.000Z' });

/** Two posts to @g today, and counters that forgot them (as a dump from before them would have). */
async function forgottenPosts() {
  const a = await insertDrivableAccount(t, 'acc_1');
  const g = await insertBoundTarget(t, '@g', a);
  await t.query(
    `INSERT INTO post_history (account_id, target_id, status, created_at) VALUES ($1, $2, 'success', '2026-03-10 08:00:00'), ($1, $2, 'unknown', '2026-03-10 10:00:00')`,
    [a, g],
  );
  await t.query(
    `UPDATE targets SET daily_posts_in_group = 0, last_group_stats_reset = '2026-03-09 09:00:00', last_post_at = NULL`,
  );
  await t.query(
    `UPDATE accounts SET daily_posts_count = 0, last_stats_reset = '2026-03-09 09:00:00', last_post_at = NULL`,
  );
  return { a, g };
}

describe('after a restore', () => {
  it('no post is reserved until lexus repair counters rebuilds the counters from post_history, and status says so', async () => {
    const { a } = await forgottenPosts();
    const db = new DbManager(t.dataSource, { clock: t.clock });
    // The tables are not the ones the database knew (what a restore makes).
    await t.query(`UPDATE lexus_restore_guard SET tables_oid = 1`);
    expect(await restoreHold(t.dataSource)).toEqual({ held: true, since: null });
    expect(await db.reservePostSlot({ accountId: a })).toBeNull();
    expect(await db.getGroupsReadyForPosting()).toEqual([]);
    expect(formatStatus(await loadStatus(t.dataSource, t.clock.now(), TEST_SETTINGS))).toContain(
      'Posting is HELD: the database was restored from a dump; its rows forget the posts made since. Check, then run lexus repair counters.',
    );
    // Repaired: today's 2 posts counted again, so @g gets none more today.
    expect(await repairCounters(t.dataSource, t.clock.now(), true)).toEqual({
      accounts: 1,
      groups: 1,
      liftedHold: true,
    });
    expect((await restoreHold(t.dataSource)).held).toBe(true);
    expect(await repairCounters(t.dataSource, t.clock.now())).toEqual({ accounts: 1, groups: 1, liftedHold: true });
    expect(await restoreHold(t.dataSource)).toEqual({ held: false, since: null });
    expect(await t.query(`SELECT daily_posts_in_group AS n, last_post_at FROM targets`)).toEqual([
      { n: 2, last_post_at: new Date('2026-03-10T10:00:00Z') },
    ]);
    expect(await t.query(`SELECT daily_posts_count AS n FROM accounts`)).toEqual([{ n: 2 }]);
    expect(await db.reservePostSlot({ accountId: a })).toBeNull();
    t.clock.set('2026-03-11T09:00:00Z');
    expect(await db.reservePostSlot({ accountId: a })).not.toBeNull();
    // Run again on counters that agree with the history: nothing to change.
    expect(await repairCounters(t.dataSource, t.clock.now())).toEqual({ accounts: 0, groups: 0, liftedHold: false });
  });
});

describe('lexus repair counters', () => {
  it('says what it changes (or would, with --dry-run) and lets posting go on after a restore', async () => {
    await forgottenPosts();
    await t.query(`UPDATE lexus_restore_guard SET tables_oid = 1`);
    const repair = (args: string[]) =>
      runLexus(['repair', 'counters', ...args], { env: { DATABASE_URL: databaseUrl(t.connection) } });
    const dry = repair(['--dry-run']);
    expect(dry.stdout).toMatch(
      /^Counters rebuilt from post_history \(dry run: nothing was written\): would change \d+ account\(s\) and 1 group\(s\)\.\nPosting was held after a restore; it would go on now\.\n$/,
    );
    expect(dry.status).toBe(0);
    expect((await restoreHold(t.dataSource)).held).toBe(true);
    const real = repair([]);
    expect(real.stdout).toContain('Posting was held after a restore; it goes on now.');
    expect(real.status).toBe(0);
    expect((await restoreHold(t.dataSource)).held).toBe(false);
  });
});

/** A pg_dump and pg_restore at least as new as the server, or why there is none. */
function dumpTools(serverMajor: number): { dump: string; restore: string } | string {
  const dirs = existsSync('/usr/lib/postgresql')
    ? readdirSync('/usr/lib/postgresql').map((v) => `/usr/lib/postgresql/${v}/bin`)
    : [];
  for (const dir of ['', ...dirs]) {
    const dump = dir ? path.join(dir, 'pg_dump') : 'pg_dump';
    const version = run(dump, ['--version']);
    const major = Number(/(\d+)/.exec(version.stdout ?? '')?.[1]);
    if (version.status === 0 && major >= serverMajor)
      return { dump, restore: dir ? path.join(dir, 'pg_restore') : 'pg_restore' };
  }
  return `no pg_dump of PostgreSQL ${serverMajor} or newer is installed here`;
}

describe('the backup commands of docs/operations.md', async () => {
  const probe = await createEmptyDatabase();
  let serverMajor = 0;
  try {
    const { default: pg } = await import('pg');
    const client = new pg.Client({ ...probe.connection, ssl: false });
    await client.connect();
    serverMajor = Math.floor(
      Number(
        (await client.query<{ server_version_num: string }>('SHOW server_version_num')).rows[0]!.server_version_num,
      ) / 10_000,
    );
    await client.end();
  } finally {
    await probe.drop();
  }
  const tools = dumpTools(serverMajor);

  it.skipIf(typeof tools === 'string')(
    `restore a dump into an empty and into an existing database with no error, and hold posting until the repair${typeof tools === 'string' ? ` - skipped: ${tools}` : ''}`,
    async () => {
      const { dump, restore } = tools as { dump: string; restore: string };
      const dir = await tempDir('lexus-dump-');
      const empty = await createEmptyDatabase();
      try {
        const { a } = await forgottenPosts();
        const file = path.join(dir, 'lexus.dump');
        const dumped = run(dump, ['-Fc', '-f', file, databaseUrl(t.connection)]);
        expect(dumped.stderr).toBe('');
        expect(dumped.status).toBe(0);
        for (const target of [empty.connection, t.connection]) {
          const restored = run(restore, ['--clean', '--if-exists', '--no-owner', '-d', databaseUrl(target), file]);
          expect(restored.stderr).toBe('');
          expect(restored.status).toBe(0);
        }
        // Restored into the existing database: the rows are back, and posting is held.
        expect(await t.query(`SELECT count(*)::int AS n FROM post_history`)).toEqual([{ n: 2 }]);
        expect((await restoreHold(t.dataSource)).held).toBe(true);
        expect(await new DbManager(t.dataSource, { clock: t.clock }).reservePostSlot({ accountId: a })).toBeNull();
        expect((await repairCounters(t.dataSource, t.clock.now())).liftedHold).toBe(true);
        expect((await restoreHold(t.dataSource)).held).toBe(false);
      } finally {
        await empty.drop();
        await rm(dir, { recursive: true, force: true });
      }
    },
  );
});

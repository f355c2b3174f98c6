import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * What on-call reads and relies on (issue 15):
 * - accounts.last_connect_at, last_connect_outcome: Telegram's last answer to connecting the
 *   account (lexus status: "last connect").
 * - lexus_restore_guard: the tables as this database knows them (the oid of `accounts`), and
 *   when a process found them changed. A restore from a dump (pg_restore, into this database or
 *   a new one) makes new tables: the rows say what was true when the dump was taken, not what
 *   Telegram has received since, so no post is reserved until `lexus repair counters` rebuilds
 *   the counters from the history and takes the new tables as known (rules.ts postingNotHeldSql).
 */
export class OpsState1765000000000 implements MigrationInterface {
  name = 'OpsState1765000000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE accounts ADD COLUMN IF NOT EXISTS last_connect_at TIMESTAMP`);
    await q.query(`ALTER TABLE accounts ADD COLUMN IF NOT EXISTS last_connect_outcome VARCHAR(50)`);
    await q.query(`
      CREATE TABLE IF NOT EXISTS lexus_restore_guard (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        tables_oid OID NOT NULL,
        restored_at TIMESTAMP
      )`);
    await q.query(
      `INSERT INTO lexus_restore_guard (id, tables_oid) VALUES (1, 'accounts'::regclass) ON CONFLICT (id) DO NOTHING`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE IF EXISTS lexus_restore_guard`);
    for (const column of ['last_connect_outcome', 'last_connect_at'])
      await q.query(`ALTER TABLE accounts DROP COLUMN IF EXISTS ${column}`);
  }
}

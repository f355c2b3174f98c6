import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Which session the last `lexus import` brought in (its SHA-256, never the session itself).
 * A re-import changes an account's session only when the files' session changed since: a
 * session made meanwhile by `lexus login` is not overwritten by the old files.
 */
export class ImportedSessionHash1764300000000 implements MigrationInterface {
  name = 'ImportedSessionHash1764300000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE accounts ADD COLUMN IF NOT EXISTS imported_session_sha256 VARCHAR(64)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE accounts DROP COLUMN IF EXISTS imported_session_sha256`);
  }
}

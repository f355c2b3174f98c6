import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * targets.post_hold_kind: what holds the group's posts until next_post_allowed_at (issue 16), so
 * that lexus status says it instead of calling every hold a slow mode: 'slow_mode' (Telegram's
 * SLOWMODE_WAIT), 'failing' (its posts failed), 'refuses_message' (it refused our message),
 * 'restriction' (reopened after an account's restriction). NULL: a hold written before this
 * column (or by hand), of no known kind.
 */
export class GroupHoldKind1765100000000 implements MigrationInterface {
  name = 'GroupHoldKind1765100000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE targets ADD COLUMN IF NOT EXISTS post_hold_kind VARCHAR(20)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE targets DROP COLUMN IF EXISTS post_hold_kind`);
  }
}

import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * What the posting daemon keeps beside the seed's columns:
 * - accounts.status_reason, targets.status_reason: why an account or group stopped (for ops);
 * - targets.next_post_allowed_at: the group's slow mode runs until then;
 * - targets.join_claimed_by / join_retry_at: the account that is joining the group (a join in
 *   flight, or a request waiting for an admin), so that no other account ever tries it, and when
 *   to ask again;
 * - join_history: every join attempt, for the daily join budget and the daily summary.
 * Target statuses gain 'requested' (a join request waits for an admin).
 */
export class DaemonState1764400000000 implements MigrationInterface {
  name = 'DaemonState1764400000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE accounts ADD COLUMN IF NOT EXISTS status_reason TEXT`);
    await q.query(`ALTER TABLE targets ADD COLUMN IF NOT EXISTS status_reason TEXT`);
    await q.query(`ALTER TABLE targets ADD COLUMN IF NOT EXISTS next_post_allowed_at TIMESTAMP`);
    await q.query(
      `ALTER TABLE targets ADD COLUMN IF NOT EXISTS join_claimed_by INTEGER REFERENCES accounts(id) ON DELETE SET NULL`,
    );
    await q.query(`ALTER TABLE targets ADD COLUMN IF NOT EXISTS join_retry_at TIMESTAMP`);
    await q.query(`
      CREATE TABLE IF NOT EXISTS join_history (
        id SERIAL PRIMARY KEY,
        account_id INTEGER REFERENCES accounts(id) ON DELETE CASCADE,
        target_id INTEGER REFERENCES targets(id) ON DELETE CASCADE,
        outcome VARCHAR(50) NOT NULL,
        error_message TEXT,
        created_at TIMESTAMP NOT NULL DEFAULT NOW()
      )`);
    await q.query(`CREATE INDEX IF NOT EXISTS join_history_account_time_idx ON join_history (account_id, created_at)`);
    // The join queue: one niche's groups nobody has joined yet.
    await q.query(
      `CREATE INDEX IF NOT EXISTS targets_join_queue_idx ON targets (niche, id) WHERE status IN ('new', 'requested')`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX IF EXISTS targets_join_queue_idx`);
    await q.query(`DROP TABLE IF EXISTS join_history`);
    for (const column of ['join_retry_at', 'join_claimed_by', 'next_post_allowed_at', 'status_reason']) {
      await q.query(`ALTER TABLE targets DROP COLUMN IF EXISTS ${column}`);
    }
    await q.query(`ALTER TABLE accounts DROP COLUMN IF EXISTS status_reason`);
  }
}

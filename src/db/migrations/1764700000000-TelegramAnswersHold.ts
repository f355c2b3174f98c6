import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * What keeps Telegram's answers from being lost or misread (issue 12):
 * - accounts.call_started_at: a Telegram call of this account whose answer is not recorded yet.
 *   Set before each call and cleared in the same transaction that records its answer; a process
 *   taking the account over and finding it set knows the answer may still be on its way from a
 *   process cut off from the database, and holds the account a while.
 * - accounts.driven_by / driven_until: the lease. The process driving the account (host, pid and a
 *   random tag) may have a live Telegram session of it until driven_until, renewed every few
 *   seconds while it can confirm its lock; a process taking the account over waits until that
 *   instant (plus the time to stop a session) before its first call. Cleared on a clean stop.
 * - accounts.limited_since / limited_until: the last time Telegram limited the account (PEER_FLOOD,
 *   or the same refusal from several groups within an hour) and when that pause ends; its daily
 *   budgets grow back from there.
 * - targets.join_uncertain: a join of the claiming account may have happened (a timeout): the claim
 *   never goes to another account (a trigger refuses it).
 * - targets.peer_access_hash: with telegram_id, the stored peer the bound account posts to without
 *   looking the link up.
 * - targets.closed_at / refused_account_id: when a group refused which account, so that refusals of
 *   several groups within a window are read as the account's restriction; reopened_at and
 *   reopen_count: when and how often such a refusal was reopened (at most a week of them).
 * - answer_records: the answers recorded, by an id the recording process gave each, so that a record
 *   tried again after a commit whose acknowledgement was lost is not applied twice.
 * - Status 'duplicate': a second row for a chat another row already stands for. One row per chat
 *   (telegram_id) among the others: a unique index. Rows that already break it (the old system's
 *   data) are closed as duplicates of the bound, else the oldest, row, with the reason.
 */
export class TelegramAnswersHold1764700000000 implements MigrationInterface {
  name = 'TelegramAnswersHold1764700000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE accounts ADD COLUMN IF NOT EXISTS call_started_at TIMESTAMP`);
    await q.query(`ALTER TABLE accounts ADD COLUMN IF NOT EXISTS driven_by VARCHAR(255)`);
    await q.query(`ALTER TABLE accounts ADD COLUMN IF NOT EXISTS driven_until TIMESTAMP`);
    await q.query(`ALTER TABLE accounts ADD COLUMN IF NOT EXISTS limited_since TIMESTAMP`);
    await q.query(`ALTER TABLE accounts ADD COLUMN IF NOT EXISTS limited_until TIMESTAMP`);
    await q.query(`ALTER TABLE targets ADD COLUMN IF NOT EXISTS join_uncertain BOOLEAN NOT NULL DEFAULT false`);
    await q.query(`ALTER TABLE targets ADD COLUMN IF NOT EXISTS peer_access_hash VARCHAR(32)`);
    await q.query(`ALTER TABLE targets ADD COLUMN IF NOT EXISTS closed_at TIMESTAMP`);
    await q.query(
      `ALTER TABLE targets ADD COLUMN IF NOT EXISTS refused_account_id INTEGER REFERENCES accounts(id) ON DELETE SET NULL`,
    );
    await q.query(`ALTER TABLE targets ADD COLUMN IF NOT EXISTS reopened_at TIMESTAMP`);
    await q.query(`ALTER TABLE targets ADD COLUMN IF NOT EXISTS reopen_count INTEGER NOT NULL DEFAULT 0`);
    await q.query(`
      CREATE TABLE IF NOT EXISTS answer_records (
        answer_id TEXT PRIMARY KEY,
        account_id INTEGER REFERENCES accounts(id) ON DELETE CASCADE,
        recorded_at TIMESTAMP NOT NULL
      )`);
    await q.query(`CREATE INDEX IF NOT EXISTS answer_records_time_idx ON answer_records (recorded_at)`);

    await q.query(`
      WITH ranked AS (
        SELECT id, first_value(id) OVER w AS keeper, first_value(link) OVER w AS keeper_link, row_number() OVER w AS n
          FROM targets
         WHERE telegram_id IS NOT NULL AND status IS DISTINCT FROM 'duplicate'
        WINDOW w AS (PARTITION BY telegram_id
                    ORDER BY assigned_account_id IS NULL, status IS DISTINCT FROM 'banned' AND status IS DISTINCT FROM 'joined',
                             status IS DISTINCT FROM 'requested', joined_at IS NULL, id))
      UPDATE targets t
         SET status = 'duplicate',
             status_reason = 'the same chat as ' || r.keeper_link || ' (target #' || r.keeper || ')',
             updated_at = now() AT TIME ZONE 'UTC'
        FROM ranked r
       WHERE t.id = r.id AND r.n > 1`);
    await q.query(`
      CREATE UNIQUE INDEX IF NOT EXISTS targets_one_row_per_chat_idx ON targets (telegram_id)
       WHERE telegram_id IS NOT NULL AND status IS DISTINCT FROM 'duplicate'`);
    // Refusals of one account within a window (the restriction check).
    await q.query(
      `CREATE INDEX IF NOT EXISTS targets_refusals_idx ON targets (refused_account_id, closed_at) WHERE refused_account_id IS NOT NULL`,
    );

    // Rule 1 for joins whose outcome is unknown: the account may be a member, so the claim stays
    // with it (it asks again) unless it is bound to that very account or the account is deleted.
    await q.query(`
      CREATE OR REPLACE FUNCTION lexus_uncertain_claim_stays() RETURNS trigger
      LANGUAGE plpgsql AS $$
      BEGIN
        IF OLD.join_uncertain AND OLD.join_claimed_by IS NOT NULL
           AND NEW.join_claimed_by IS DISTINCT FROM OLD.join_claimed_by
           AND NEW.assigned_account_id IS DISTINCT FROM OLD.join_claimed_by
           AND EXISTS (SELECT 1 FROM accounts WHERE id = OLD.join_claimed_by) THEN
          RAISE EXCEPTION 'group % (%) may already have account % in it (a join whose answer was lost); it stays with that account',
            OLD.id, OLD.link, OLD.join_claimed_by
            USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN NEW;
      END $$`);
    await q.query(`DROP TRIGGER IF EXISTS targets_uncertain_claim_stays ON targets`);
    await q.query(`
      CREATE TRIGGER targets_uncertain_claim_stays
        BEFORE UPDATE OF join_claimed_by ON targets
        FOR EACH ROW EXECUTE FUNCTION lexus_uncertain_claim_stays()`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TRIGGER IF EXISTS targets_uncertain_claim_stays ON targets`);
    await q.query(`DROP FUNCTION IF EXISTS lexus_uncertain_claim_stays()`);
    await q.query(`DROP INDEX IF EXISTS targets_refusals_idx`);
    await q.query(`DROP INDEX IF EXISTS targets_one_row_per_chat_idx`);
    await q.query(`DROP TABLE IF EXISTS answer_records`);
    for (const column of [
      'reopen_count',
      'reopened_at',
      'refused_account_id',
      'closed_at',
      'peer_access_hash',
      'join_uncertain',
    ]) {
      await q.query(`ALTER TABLE targets DROP COLUMN IF EXISTS ${column}`);
    }
    for (const column of ['limited_until', 'limited_since', 'driven_until', 'driven_by', 'call_started_at']) {
      await q.query(`ALTER TABLE accounts DROP COLUMN IF EXISTS ${column}`);
    }
  }
}

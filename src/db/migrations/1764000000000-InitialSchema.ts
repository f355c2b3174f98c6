import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The seed's schema, plus what the daemon needs to keep its rules.
 *
 * It must work on an empty database AND on one where the old Python system already applied the
 * seed's DDL and wrote rows: every statement creates only what is missing (IF NOT EXISTS,
 * OR REPLACE) and no existing column, row or constraint is changed.
 */
export class InitialSchema1764000000000 implements MigrationInterface {
  name = 'InitialSchema1764000000000';

  async up(q: QueryRunner): Promise<void> {
    // --- The seed's DDL, verbatim but for IF NOT EXISTS. ---
    await q.query(`
      CREATE TABLE IF NOT EXISTS accounts (
        id SERIAL PRIMARY KEY,
        phone VARCHAR(20),
        session_string TEXT,
        session_name VARCHAR(255) UNIQUE NOT NULL,
        status VARCHAR(50) DEFAULT 'active',
        next_allowed_action_time TIMESTAMP,
        daily_posts_count INTEGER DEFAULT 0,
        last_stats_reset TIMESTAMP,
        created_at TIMESTAMP DEFAULT NOW(),
        updated_at TIMESTAMP DEFAULT NOW()
      )`);
    await q.query(`
      CREATE TABLE IF NOT EXISTS targets (
        id SERIAL PRIMARY KEY,
        telegram_id BIGINT,
        link VARCHAR(500) UNIQUE NOT NULL,
        title VARCHAR(500),
        niche VARCHAR(100) NOT NULL,
        status VARCHAR(50) DEFAULT 'new',
        assigned_account_id INTEGER REFERENCES accounts(id) ON DELETE SET NULL,
        joined_at TIMESTAMP,
        warmup_ends_at TIMESTAMP,
        last_post_at TIMESTAMP,
        daily_posts_in_group INTEGER DEFAULT 0,
        last_group_stats_reset TIMESTAMP,
        created_at TIMESTAMP DEFAULT NOW(),
        updated_at TIMESTAMP DEFAULT NOW()
      )`);
    await q.query(`
      CREATE TABLE IF NOT EXISTS post_history (
        id SERIAL PRIMARY KEY,
        account_id INTEGER REFERENCES accounts(id) ON DELETE CASCADE,
        target_id INTEGER REFERENCES targets(id) ON DELETE CASCADE,
        message_content TEXT,
        photo_path VARCHAR(500),
        status VARCHAR(50) DEFAULT 'success',
        error_message TEXT,
        created_at TIMESTAMP DEFAULT NOW()
      )`);

    // --- Indexes. ---
    // getGroupsReadyForPosting: scans one niche's bound, joined groups in serving order
    // (never posted first, then oldest last_post_at) and stops at the limit.
    await q.query(`
      CREATE INDEX IF NOT EXISTS targets_ready_by_niche_idx
        ON targets (niche, last_post_at ASC NULLS FIRST, id)
        WHERE status = 'joined' AND assigned_account_id IS NOT NULL`);
    // A worker's claim: one account's joined groups, in the same order.
    await q.query(`
      CREATE INDEX IF NOT EXISTS targets_ready_by_account_idx
        ON targets (assigned_account_id, last_post_at ASC NULLS FIRST, id)
        WHERE status = 'joined'`);
    // The midnight reset touches only counters that are not zero.
    await q.query(`
      CREATE INDEX IF NOT EXISTS targets_counter_to_reset_idx
        ON targets (last_group_stats_reset) WHERE daily_posts_in_group <> 0`);
    await q.query(`
      CREATE INDEX IF NOT EXISTS accounts_counter_to_reset_idx
        ON accounts (last_stats_reset) WHERE daily_posts_count <> 0`);
    // History by account and by group over time (status views, reports); pending slots.
    await q.query(`CREATE INDEX IF NOT EXISTS post_history_account_time_idx ON post_history (account_id, created_at)`);
    await q.query(`CREATE INDEX IF NOT EXISTS post_history_target_time_idx ON post_history (target_id, created_at)`);
    await q.query(
      `CREATE INDEX IF NOT EXISTS post_history_pending_idx ON post_history (account_id) WHERE status = 'pending'`,
    );

    // --- Rule 1 in the database: a binding is never moved. ---
    // Once a group is bound to an account, no UPDATE may bind it to another one or unbind it.
    // The one exception is the seed's ON DELETE SET NULL when the account row is deleted; the
    // group then stays 'joined' with no account, which no query serves and no join picks up
    // (an operator who wants it joined again resets it to 'new' by hand).
    await q.query(`
      CREATE OR REPLACE FUNCTION lexus_binding_is_permanent() RETURNS trigger
      LANGUAGE plpgsql AS $$
      BEGIN
        IF OLD.assigned_account_id IS NOT NULL
           AND NEW.assigned_account_id IS DISTINCT FROM OLD.assigned_account_id
           AND NOT (NEW.assigned_account_id IS NULL
                    AND NOT EXISTS (SELECT 1 FROM accounts WHERE id = OLD.assigned_account_id)) THEN
          RAISE EXCEPTION 'group % (%) is bound to account % for good; it cannot be bound to %',
            OLD.id, OLD.link, OLD.assigned_account_id, coalesce(NEW.assigned_account_id::text, 'no account')
            USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN NEW;
      END $$`);
    await q.query(`DROP TRIGGER IF EXISTS targets_binding_is_permanent ON targets`);
    await q.query(`
      CREATE TRIGGER targets_binding_is_permanent
        BEFORE UPDATE OF assigned_account_id ON targets
        FOR EACH ROW EXECUTE FUNCTION lexus_binding_is_permanent()`);

    // Rule 1 for the history: a post (reserved or recorded as sent) can only come from the
    // group's bound account.
    await q.query(`
      CREATE OR REPLACE FUNCTION lexus_post_only_from_bound_account() RETURNS trigger
      LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.status IN ('pending', 'success') AND NOT EXISTS (
             SELECT 1 FROM targets WHERE id = NEW.target_id AND assigned_account_id = NEW.account_id) THEN
          RAISE EXCEPTION 'account % may not post to group %: the group is not bound to it',
            NEW.account_id, NEW.target_id
            USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN NEW;
      END $$`);
    await q.query(`DROP TRIGGER IF EXISTS post_history_only_bound_account ON post_history`);
    await q.query(`
      CREATE TRIGGER post_history_only_bound_account
        BEFORE INSERT ON post_history
        FOR EACH ROW EXECUTE FUNCTION lexus_post_only_from_bound_account()`);
  }

  async down(q: QueryRunner): Promise<void> {
    // The tables may hold the old system's data: going down removes only what this migration
    // added on top of the seed's DDL, never the tables.
    await q.query(`DROP TRIGGER IF EXISTS post_history_only_bound_account ON post_history`);
    await q.query(`DROP FUNCTION IF EXISTS lexus_post_only_from_bound_account()`);
    await q.query(`DROP TRIGGER IF EXISTS targets_binding_is_permanent ON targets`);
    await q.query(`DROP FUNCTION IF EXISTS lexus_binding_is_permanent()`);
    for (const index of [
      'targets_ready_by_niche_idx',
      'targets_ready_by_account_idx',
      'targets_counter_to_reset_idx',
      'accounts_counter_to_reset_idx',
      'post_history_account_time_idx',
      'post_history_target_time_idx',
      'post_history_pending_idx',
    ]) {
      await q.query(`DROP INDEX IF EXISTS ${index}`);
    }
  }
}

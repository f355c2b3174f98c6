import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * What spreading the posts over the audience's day needs (issue 13):
 * - accounts.first_driven_at: when a daemon first drove the account; a new account's budgets grow
 *   from there (rules.ts, the ramp-up). Accounts that have posted or joined already count from
 *   their first such attempt.
 * - accounts.seasoned: the account ran before it came here (lexus import --seasoned): no ramp-up.
 * - accounts.next_post_planned_at: when the daemon plans the account's next post (lexus status).
 * - accounts.last_post_at: when the account last reserved a post; the next one waits
 *   LEXUS_POST_SPACING_MIN after it (rules.ts, the pace). Filled from the history.
 */
export class PostingPlan1764800000000 implements MigrationInterface {
  name = 'PostingPlan1764800000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE accounts ADD COLUMN IF NOT EXISTS first_driven_at TIMESTAMP`);
    await q.query(`ALTER TABLE accounts ADD COLUMN IF NOT EXISTS seasoned BOOLEAN NOT NULL DEFAULT false`);
    await q.query(`ALTER TABLE accounts ADD COLUMN IF NOT EXISTS next_post_planned_at TIMESTAMP`);
    await q.query(`ALTER TABLE accounts ADD COLUMN IF NOT EXISTS last_post_at TIMESTAMP`);
    await q.query(
      `UPDATE accounts a SET last_post_at = (SELECT max(h.created_at) FROM post_history h WHERE h.account_id = a.id) WHERE a.last_post_at IS NULL`,
    );
    await q.query(`
      UPDATE accounts a
         SET first_driven_at = LEAST((SELECT min(h.created_at) FROM post_history h WHERE h.account_id = a.id),
                                     (SELECT min(j.created_at) FROM join_history j WHERE j.account_id = a.id))
       WHERE a.first_driven_at IS NULL`);
  }

  async down(q: QueryRunner): Promise<void> {
    for (const column of ['last_post_at', 'next_post_planned_at', 'seasoned', 'first_driven_at']) {
      await q.query(`ALTER TABLE accounts DROP COLUMN IF EXISTS ${column}`);
    }
  }
}

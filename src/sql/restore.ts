/**
 * After a restore from a dump the rows say what was true when the dump was taken: posts Telegram
 * received since are forgotten, today's counters rewound, and a group could get a third post. The
 * tables a restore makes are new ones, which is how it is noticed (lexus_restore_guard keeps the
 * oid of the table `accounts` as last known): no post is reserved meanwhile (rules.ts
 * postingNotHeldSql), until `lexus repair counters` rebuilds the counters from post_history and
 * takes the tables as known. Each operation one statement; "now" from the caller.
 */
import type { DataSource } from 'typeorm';
import { sqlTime } from '../db/postgresTypes';
import { COUNTED_POST_STATUSES_SQL, SENT_POST_STATUSES_SQL, TODAY_UTC_SQL, TOMORROW_UTC_SQL } from './rules';
import { type Runner, sql } from './sql';

export interface RestoreHold {
  /** No post is reserved: the tables changed (a restore), or a process noted one not repaired yet. */
  held: boolean;
  /** When a process noticed it (null: not noticed yet, or none). */
  since: Date | null;
}

/** Whether posting is held after a restore. */
export async function restoreHold(db: Runner): Promise<RestoreHold> {
  const { rows } = await sql<{ held: boolean; since: Date | null }>(
    db,
    `SELECT (g.restored_at IS NOT NULL OR g.tables_oid <> 'accounts'::regclass) AS held, g.restored_at AS since FROM lexus_restore_guard g`,
  );
  // No row: nothing vouches for the tables (rules.ts postingNotHeldSql holds then too).
  return { held: rows[0]?.held ?? true, since: rows[0]?.since ?? null };
}

/** Notes a restore the first time a process sees the tables changed; returns when, if it is this call that noted it. */
export async function noticeRestore(db: Runner, now: Date): Promise<Date | null> {
  const { rows } = await sql<{ restored_at: Date }>(
    db,
    `UPDATE lexus_restore_guard SET restored_at = CAST(:now AS timestamp)
      WHERE restored_at IS NULL AND tables_oid <> 'accounts'::regclass
      RETURNING restored_at`,
    { now: sqlTime(now) },
  );
  return rows[0]?.restored_at ?? null;
}

export interface CounterRepair {
  /** Accounts and groups whose counters or last post changed. */
  accounts: number;
  groups: number;
  /** The restore hold that was lifted (false: there was none). */
  liftedHold: boolean;
}

/**
 * `lexus repair counters`: every account's and group's posts of today at least as post_history
 * counts them (sent, maybe sent, reserved), and their last post at least the latest there (an
 * account's at the reservation, a group's once settled): never lower than they are, as a hold only
 * tightens; then the tables taken as known, in one transaction. `dryRun` says what it would
 * change and changes nothing.
 */
export async function repairCounters(ds: DataSource, now: Date, dryRun = false): Promise<CounterRepair> {
  // Today's counts as the counters hold them (0 when stale); what history shows more is added,
  // nothing is ever lowered: a hold only tightens.
  const accountToday = `COALESCE(CASE WHEN a.last_stats_reset >= ${TODAY_UTC_SQL} AND a.last_stats_reset < ${TOMORROW_UTC_SQL} THEN a.daily_posts_count END, 0)`;
  const groupToday = `COALESCE(CASE WHEN t.last_group_stats_reset >= ${TODAY_UTC_SQL} AND t.last_group_stats_reset < ${TOMORROW_UTC_SQL} THEN t.daily_posts_in_group END, 0)`;
  return ds
    .transaction(async (manager) => {
      const q = manager.queryRunner!;
      const params = { now: sqlTime(now) };
      const { rows: accounts } = await sql<{ n: number }>(
        q,
        `WITH h AS (
         SELECT a.id,
                (SELECT count(*) FROM post_history p WHERE p.account_id = a.id AND p.status IN ${COUNTED_POST_STATUSES_SQL}
                    AND p.created_at >= ${TODAY_UTC_SQL} AND p.created_at < ${TOMORROW_UTC_SQL})::int AS today,
                (SELECT max(p.created_at) FROM post_history p WHERE p.account_id = a.id AND p.status IN ${COUNTED_POST_STATUSES_SQL}) AS last_at
           FROM accounts a
       ), changed AS (
         UPDATE accounts a SET daily_posts_count = GREATEST(${accountToday}, h.today), last_stats_reset = CAST(:now AS timestamp),
                               last_post_at = GREATEST(a.last_post_at, h.last_at)
           FROM h
          WHERE a.id = h.id AND (${accountToday} < h.today OR a.last_post_at < h.last_at OR (a.last_post_at IS NULL AND h.last_at IS NOT NULL))
          RETURNING a.id
       )
       SELECT count(*)::int AS n FROM changed`,
        params,
      );
      const { rows: groups } = await sql<{ n: number }>(
        q,
        `WITH h AS (
         SELECT t.id,
                (SELECT count(*) FROM post_history p WHERE p.target_id = t.id AND p.status IN ${COUNTED_POST_STATUSES_SQL}
                    AND p.created_at >= ${TODAY_UTC_SQL} AND p.created_at < ${TOMORROW_UTC_SQL})::int AS today,
                -- A group's last post is set when the post is settled (sent, or maybe sent).
                (SELECT max(p.created_at) FROM post_history p WHERE p.target_id = t.id AND p.status IN ${SENT_POST_STATUSES_SQL}) AS last_at
           FROM targets t
       ), changed AS (
         UPDATE targets t SET daily_posts_in_group = GREATEST(${groupToday}, h.today), last_group_stats_reset = CAST(:now AS timestamp),
                              last_post_at = GREATEST(t.last_post_at, h.last_at)
           FROM h
          WHERE t.id = h.id AND (${groupToday} < h.today OR t.last_post_at < h.last_at OR (t.last_post_at IS NULL AND h.last_at IS NOT NULL))
          RETURNING t.id
       )
       SELECT count(*)::int AS n FROM changed`,
        params,
      );
      const hold = await restoreHold(q);
      await sql(
        q,
        `INSERT INTO lexus_restore_guard (id, tables_oid, restored_at) VALUES (1, 'accounts'::regclass, NULL)
       ON CONFLICT (id) DO UPDATE SET tables_oid = EXCLUDED.tables_oid, restored_at = NULL`,
      );
      const result = { accounts: accounts[0]?.n ?? 0, groups: groups[0]?.n ?? 0, liftedHold: hold.held };
      if (dryRun) throw new DryRunRollback(result);
      return result;
    })
    .catch((error: unknown) => {
      if (error instanceof DryRunRollback) return error.result;
      throw error;
    });
}

/** Rolls a dry run's transaction back, carrying what it would have done. */
class DryRunRollback extends Error {
  constructor(readonly result: CounterRepair) {
    super('dry run');
  }
}

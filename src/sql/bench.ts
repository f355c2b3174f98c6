/**
 * The benchmark's statements (npm run bench, src/bench/dataLayer.ts): the fleet generated at scale
 * (generate_series), the small fleet of the daemon's memory run, the bare primary-key reads and
 * writes that the hot paths are measured against, the counts around the midnight reset, and the
 * plans of the DbManager's statements (EXPLAIN). Each operation is one function with its SQL in
 * full; "now" comes from the caller, as the UTC ISO text of sqlTime.
 */

import { warmupEndSql } from './rules';
import { type Runner, type SqlParams, sql } from './sql';

/**
 * Accounts bench_1..bench_n: every 50th in a FloodWait for an hour, every 97th banned, the rest
 * active; 0 to 20 posts today, counters reset at 00:30 today.
 */
export async function insertBenchAccounts(db: Runner, input: { n: number; now: string }): Promise<void> {
  await sql(
    db,
    `INSERT INTO accounts (session_name, session_string, status, next_allowed_action_time, daily_posts_count, last_stats_reset, created_at, updated_at)
     SELECT 'bench_' || i, 'bench-session-' || i,
            CASE WHEN i % 50 = 0 THEN 'flood_wait' WHEN i % 97 = 0 THEN 'banned' ELSE 'active' END,
            CASE WHEN i % 50 = 0 THEN CAST(:now AS timestamp) + interval '1 hour' END,
            i % 21, date_trunc('day', CAST(:now AS timestamp)) + interval '30 minutes', CAST(:now AS timestamp), CAST(:now AS timestamp)
       FROM generate_series(1, CAST(:n AS integer)) AS i`,
    { n: input.n, now: input.now },
  );
}

/**
 * Groups @bench_group_1..n: 60 % joined and bound to one of the `accounts` accounts (joined 1 to
 * 72 hours ago, so a third still in warm-up; most posted in during the last two days), 30 %
 * waiting to be joined, 10 % closed; 90 % in ukraine_cars, the rest spread over four other niches.
 */
export async function insertBenchGroups(
  db: Runner,
  input: { n: number; accounts: number; now: string },
): Promise<void> {
  await sql(
    db,
    `INSERT INTO targets (link, niche, status, assigned_account_id, joined_at, warmup_ends_at, last_post_at,
                          daily_posts_in_group, last_group_stats_reset, created_at, updated_at)
     SELECT '@bench_group_' || i,
            CASE WHEN i % 10 = 0 THEN 'niche_' || (i % 4) ELSE 'ukraine_cars' END,
            CASE WHEN i % 10 < 6 THEN 'joined' WHEN i % 10 < 9 THEN 'new' ELSE 'banned' END,
            CASE WHEN i % 10 < 6 THEN 1 + i % CAST(:accounts AS integer) END,
            j.joined_at, ${warmupEndSql('j.joined_at')},
            CASE WHEN i % 10 < 6 AND i % 3 <> 0 THEN CAST(:now AS timestamp) - (i % 2880) * interval '1 minute' END,
            CASE WHEN i % 10 < 6 THEN i % 3 ELSE 0 END,
            CASE WHEN i % 10 < 6 THEN date_trunc('day', CAST(:now AS timestamp)) - (i % 2) * interval '1 day' END,
            CAST(:now AS timestamp), CAST(:now AS timestamp)
       FROM generate_series(1, CAST(:n AS integer)) AS i
       CROSS JOIN LATERAL (SELECT CASE WHEN i % 10 < 6 THEN CAST(:now AS timestamp) - (1 + i % 72) * interval '1 hour' END AS joined_at) j`,
    { n: input.n, accounts: input.accounts, now: input.now },
  );
}

/** The memory run's fleet: 100 active accounts mem_1... and 3,000 new groups @mem_group_1... in ukraine_cars. */
export async function insertMemoryRunFleet(db: Runner): Promise<void> {
  await sql(
    db,
    `INSERT INTO accounts (session_name, session_string, status) SELECT 'mem_' || i, 'fake-' || i, 'active' FROM generate_series(1, 100) i`,
  );
  await sql(
    db,
    `INSERT INTO targets (link, niche, status) SELECT '@mem_group_' || i, 'ukraine_cars', 'new' FROM generate_series(1, 3000) i`,
  );
}

/** Posts and joins recorded, together. */
export async function countPostsAndJoins(db: Runner): Promise<number> {
  const { rows } = await sql<{ n: number }>(
    db,
    `SELECT (SELECT count(*) FROM post_history) + (SELECT count(*) FROM join_history) AS n`,
  );
  return Number(rows[0]!.n);
}

/** One group by primary key: the floor of any read. */
export async function selectTargetById(db: Runner, id: number): Promise<void> {
  await sql(db, `SELECT id, link, status FROM targets WHERE id = :id`, { id });
}

/** One account updated by primary key, changing nothing: the floor of any write (with its commit). */
export async function touchAccountById(db: Runner, id: number): Promise<void> {
  await sql(db, `UPDATE accounts SET updated_at = updated_at WHERE id = :id`, { id });
}

/** Groups with posts counted for the day (what a midnight reset has to zero). */
export async function countGroupsWithDailyPosts(db: Runner): Promise<number> {
  const { rows } = await sql<{ n: number }>(
    db,
    `SELECT count(*)::int AS n FROM targets WHERE daily_posts_in_group <> 0`,
  );
  return rows[0]!.n;
}

/** The plan PostgreSQL chooses for a statement with `:name` parameters (EXPLAIN, as JSON; the statement is not run). */
export async function explainPlan(db: Runner, text: string, params: SqlParams = {}): Promise<unknown> {
  const { rows } = await sql<{ 'QUERY PLAN': unknown }>(db, `EXPLAIN (FORMAT JSON) ${text}`, params);
  return rows[0]!['QUERY PLAN'];
}

/**
 * The simulator's statements (lexus simulate, src/simulate/): the scratch database made fast and
 * filled (accounts sim_001..., groups @ua_cars_00001..., second links of some chats), kept
 * vacuumed and analyzed as autovacuum would on a live server, and read back afterwards for the
 * report (bindings, ramp-up) and the invariants (the counted history, the bindings, the groups
 * closed). Each operation is one function with its SQL in full; "now" comes from the caller, as
 * the UTC ISO text of sqlTime.
 */

import { COUNTED_POST_STATUSES_SQL } from './rules';
import { type Runner, sql } from './sql';

/**
 * Commits of this database no longer wait for the disk (a scratch database: nothing in it
 * outlives the run). Takes effect for the sessions that connect afterwards.
 */
export async function turnOffSynchronousCommit(db: Runner): Promise<void> {
  await sql(
    db,
    `DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET synchronous_commit = off', current_database()); END $$`,
  );
}

/**
 * Accounts 1..n, active, named 'sim_' and i padded to `width` digits, with a session and a phone
 * of their own.
 */
export async function insertSimulatedAccounts(
  db: Runner,
  input: { n: number; width: number; now: string },
): Promise<void> {
  await sql(
    db,
    `INSERT INTO accounts (session_name, session_string, phone, status, created_at, updated_at)
     SELECT 'sim_' || lpad(i::text, :w, '0'), 'simulated-session-' || i, '+38050' || lpad(i::text, 7, '0'), 'active', CAST(:now AS timestamp), CAST(:now AS timestamp)
       FROM generate_series(1, CAST(:n AS integer)) AS i`,
    { n: input.n, w: input.width, now: input.now },
  );
}

/** Groups 1..n, new, in ukraine_cars, linked '@ua_cars_' and i padded to `width` digits. */
export async function insertSimulatedGroups(
  db: Runner,
  input: { n: number; width: number; now: string },
): Promise<void> {
  await sql(
    db,
    `INSERT INTO targets (link, niche, status, created_at, updated_at)
     SELECT '@ua_cars_' || lpad(i::text, :w, '0'), 'ukraine_cars', 'new', CAST(:now AS timestamp), CAST(:now AS timestamp)
       FROM generate_series(1, CAST(:n AS integer)) AS i`,
    { n: input.n, w: input.width, now: input.now },
  );
}

/** Groups of these links, new, in ukraine_cars: second links of chats already listed (chaos's aliases). */
export async function insertAliasGroups(db: Runner, input: { links: string[]; now: string }): Promise<void> {
  await sql(
    db,
    `INSERT INTO targets (link, niche, status, created_at, updated_at)
     SELECT link, 'ukraine_cars', 'new', CAST(:now AS timestamp), CAST(:now AS timestamp) FROM unnest(CAST(:links AS text[])) AS link`,
    input,
  );
}

/** Every account seasoned (it ran before: full budgets from the first day, no ramp-up). */
export async function markAllAccountsSeasoned(db: Runner): Promise<void> {
  await sql(db, `UPDATE accounts SET seasoned = true`);
}

/** Fresh statistics of accounts and targets after a bulk load, as autovacuum would gather them. */
export async function analyzeAccountsAndTargets(db: Runner): Promise<void> {
  await sql(db, `ANALYZE accounts, targets`);
}

/** Dead rows removed and statistics refreshed on the tables the daemon writes all day. */
export async function vacuumAnalyzeTables(db: Runner): Promise<void> {
  await sql(db, `VACUUM (ANALYZE) accounts, targets, post_history, join_history`);
}

/** Every account's session name, in the order they were made. */
export async function loadAccountNames(db: Runner): Promise<string[]> {
  const { rows } = await sql<{ session_name: string }>(db, `SELECT session_name FROM accounts ORDER BY id`);
  return rows.map((r) => r.session_name);
}

/** Every group's link, in the order they were made. */
export async function loadGroupLinks(db: Runner): Promise<string[]> {
  const { rows } = await sql<{ link: string }>(db, `SELECT link FROM targets ORDER BY id`);
  return rows.map((r) => r.link);
}

/** How many of these links the daemon closed as second links of a chat it had (status 'duplicate'). */
export async function countClosedAliases(db: Runner, links: string[]): Promise<number> {
  const { rows } = await sql<{ n: number }>(
    db,
    `SELECT count(*)::int AS n FROM targets WHERE status = 'duplicate' AND link = ANY(CAST(:links AS text[]))`,
    {
      links,
    },
  );
  return rows[0]?.n ?? 0;
}

export interface JoinedGroupRow {
  account_id: number;
  /** The bound account's session name. */
  account: string;
  link: string;
  joined_at: Date;
}

/** Every group joined, with the account it is bound to. */
export async function loadJoinedGroups(db: Runner): Promise<JoinedGroupRow[]> {
  const { rows } = await sql<JoinedGroupRow>(
    db,
    `SELECT t.assigned_account_id AS account_id, a.session_name AS account, t.link, t.joined_at
       FROM targets t JOIN accounts a ON a.id = t.assigned_account_id
      WHERE t.joined_at IS NOT NULL`,
  );
  return rows;
}

/** Each account's ramp-up: when it was first driven, and whether it is seasoned. */
export async function loadAccountsRampUp(
  db: Runner,
): Promise<{ session_name: string; first_driven_at: Date | null; seasoned: boolean }[]> {
  const { rows } = await sql<{ session_name: string; first_driven_at: Date | null; seasoned: boolean }>(
    db,
    `SELECT session_name, first_driven_at, seasoned FROM accounts`,
  );
  return rows;
}

export interface CountedPostRow {
  id: number;
  /** The account that posted, and the account the group is bound to now (null: none). */
  account: string;
  link: string;
  bound: string | null;
  created_at: Date;
  joined_at: Date | null;
}

/** The post_history rows that count as posts (rules.ts COUNTED_POST_STATUSES_SQL), in the order they were written. */
export async function loadCountedPosts(db: Runner): Promise<CountedPostRow[]> {
  const { rows } = await sql<CountedPostRow>(
    db,
    `SELECT h.id, a.session_name AS account, t.link, b.session_name AS bound, h.created_at, t.joined_at
       FROM post_history h
       JOIN accounts a ON a.id = h.account_id
       JOIN targets t ON t.id = h.target_id
       LEFT JOIN accounts b ON b.id = t.assigned_account_id
      WHERE h.status IN ${COUNTED_POST_STATUSES_SQL}
      ORDER BY h.id`,
  );
  return rows;
}

/** Every bound group's link, with its account's session name. */
export async function loadGroupBindings(db: Runner): Promise<{ link: string; bound: string }[]> {
  const { rows } = await sql<{ link: string; bound: string }>(
    db,
    `SELECT t.link, a.session_name AS bound FROM targets t JOIN accounts a ON a.id = t.assigned_account_id`,
  );
  return rows;
}

/** The groups closed to us as refusing us (status 'banned'). */
export async function loadBannedGroups(db: Runner): Promise<{ link: string; status: string }[]> {
  const { rows } = await sql<{ link: string; status: string }>(
    db,
    `SELECT link, status FROM targets WHERE status = 'banned'`,
  );
  return rows;
}

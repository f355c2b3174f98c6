/**
 * The daemon's own database operations, beside the seed's API in DbManager: the join queue,
 * what happens to an account or a group after Telegram's answer, and crash recovery. Each is one
 * function with its SQL in full; "now" comes from the caller's clock.
 */
import type { DataSource } from 'typeorm';
import {
  ACCOUNT_DAILY_POST_LIMIT,
  DEFAULT_NICHE,
  GROUP_DAILY_POST_LIMIT,
  NO_PACE,
  TODAY_UTC_SQL,
  TOMORROW_UTC_SQL,
  WARMUP_HOURS,
  accountJoinBudgetSql,
  accountMayActSql,
  accountNextPostAtSql,
  accountPostBudgetSql,
  accountPostsTodaySql,
  groupPostsTodaySql,
  paceParams,
  targetNextPostAtSql,
  type Pace,
} from '../sql/rules';
import { accountLockHeldSql } from './accountLocks';
import { CLEAR_PASSED_FLOOD_WAIT_SQL } from './DbManager';
import { sqlTime } from './postgresTypes';
import { sql, type Runner } from './sql';

export interface DrivableAccount {
  id: number;
  sessionName: string;
  sessionString: string;
  apiId: number | null;
  apiHash: string | null;
  proxy: string | null;
  boundGroups: number;
}

/** Account `a` is one a daemon drives: not banned (a FloodWait passes), with a session, its own settings usable. */
export const accountDrivableSql = (a: string) =>
  `(COALESCE(${a}.status, 'active') IN ('active', 'flood_wait') AND ${a}.session_string IS NOT NULL AND ${a}.config_problem IS NULL)`;

/**
 * Account `a`'s join budget, as a subquery to join LATERAL: `today`, the joins it tried since
 * today's UTC midnight; `too_many_until`, 24 h after Telegram last said it is in too many chats
 * (it joins nothing before); `spaced_until`, :joinSpacingMs after its last join (or lookup) was
 * answered: the pace (rules.ts), kept across restarts and processes. The
 * daemon's claim, its idle sleep and `lexus status` read it.
 */
export const joinBudgetSql = (a: string) =>
  `(SELECT count(*) FILTER (WHERE h.created_at >= ${TODAY_UTC_SQL})::int AS today,
           max(h.created_at) FILTER (WHERE h.outcome = 'too_many_channels') + interval '24 hours' AS too_many_until,
           max(h.created_at) + CAST(:joinSpacingMs AS integer) * interval '1 millisecond' AS spaced_until,
           max(h.created_at) AS last_at
      FROM join_history h WHERE h.account_id = ${a}.id)`;

/**
 * Accounts a daemon may drive: not banned, with a session. Fewest joined groups first (joins go
 * to them); the count reads the index of each account's joined groups.
 */
export async function loadDrivableAccounts(db: Runner): Promise<DrivableAccount[]> {
  const { rows } = await sql<{ id: number; session_name: string; session_string: string; api_id: number | null; api_hash: string | null; proxy: string | null; bound: number }>(
    db,
    `SELECT a.id, a.session_name, a.session_string, a.api_id, a.api_hash, a.proxy,
            (SELECT count(*)::int FROM targets t WHERE t.assigned_account_id = a.id AND t.status = 'joined') AS bound
       FROM accounts a
      WHERE ${accountDrivableSql('a')}
      ORDER BY bound, a.id`,
  );
  return rows.map((r) => ({
    id: r.id, sessionName: r.session_name, sessionString: r.session_string, apiId: r.api_id, apiHash: r.api_hash, proxy: r.proxy, boundGroups: r.bound,
  }));
}

/**
 * Whether the account may talk to Telegram now (rule 4), as the database sees it; a FloodWait
 * whose time has passed is ended on the way (status back to 'active'), and said so.
 */
export async function accountMayAct(db: Runner, accountId: number, now: Date): Promise<{ mayAct: boolean; floodWaitEnded: boolean }> {
  const { rows } = await sql<{ ok: boolean; cleared: boolean }>(
    db,
    `WITH cleared AS (${CLEAR_PASSED_FLOOD_WAIT_SQL})
     SELECT ${accountMayActSql('a')} AS ok, EXISTS (SELECT 1 FROM cleared) AS cleared FROM accounts a WHERE a.id = :accountId`,
    { accountId, now: sqlTime(now) },
  );
  return { mayAct: rows[0]?.ok ?? false, floodWaitEnded: rows[0]?.cleared ?? false };
}

/**
 * Whether the account may try a join now: under its join budget (LEXUS_JOINS_PER_DAY, reduced
 * after Telegram limited it: rules.ts), not told "too many chats" in the last 24 h, and its last
 * join at least the spacing ago.
 */
export async function mayTryJoin(db: Runner, accountId: number, joinsPerDay: number, now: Date, pace: Pace = NO_PACE): Promise<boolean> {
  const { rows } = await sql<{ ok: boolean }>(
    db,
    `SELECT b.today < ${accountJoinBudgetSql('a')} AND COALESCE(b.too_many_until <= CAST(:now AS timestamp), true)
            AND COALESCE(b.spaced_until <= CAST(:now AS timestamp), true) AS ok
       FROM accounts a CROSS JOIN LATERAL ${joinBudgetSql('a')} b
      WHERE a.id = :accountId`,
    { accountId, joinsPerDay, now: sqlTime(now), ...paceParams(pace) },
  );
  return rows[0]?.ok ?? false;
}

export interface NextChanceInput {
  accountId: number;
  niches: string[];
  minGapMs: number;
  joinsPerDay: number;
  now: Date;
  /** The daemon's pace (ramp-up, spacing); default none. */
  pace?: Pace;
}

/**
 * The join queue: a group (alias `t`) of the niches :niches that no account of ours has joined or
 * been bound to, waiting to be joined (or for an admin to approve our request). The daemon's
 * claim, its idle sleep and `lexus status` all read the queue through this one predicate.
 */
export const inJoinQueueSql = (t: string) =>
  `(${t}.status IN ('new', 'requested') AND ${t}.assigned_account_id IS NULL AND ${t}.joined_at IS NULL AND ${t}.niche = ANY(CAST(:niches AS text[])))`;

/** A group of :niches waiting to be joined by account a (or anyone), retry time aside. */
const JOINABLE_SQL = `${inJoinQueueSql('t')} AND (t.join_claimed_by IS NULL OR t.join_claimed_by = a.id)`;

/**
 * The earliest instant at which this account could post or join, as far as the database knows
 * now (null: nothing in sight). An account with nothing to do sleeps until then instead of
 * asking every minute; the reservation and the join claim still decide when it wakes.
 * A join is possible when the account is under its daily join budget, not told "too many chats"
 * in the last 24 h, and a group of its niches waits to be joined (by it, or by anyone).
 */
export async function nextChanceAt(db: Runner, input: NextChanceInput): Promise<Date | null> {
  const { post, join } = await nextChances(db, input);
  const times = [post, join].filter((t): t is Date => t !== null).map((t) => t.getTime());
  return times.length ? new Date(Math.min(...times)) : null;
}

/** nextChanceAt's two halves: the next chance to post, and to join (null: none in sight). */
export async function nextChances(db: Runner, input: NextChanceInput): Promise<{ post: Date | null; join: Date | null }> {
  const { rows } = await sql<{ post_at: Date | null; join_at: Date | null }>(
    db,
    `SELECT CASE WHEN ready.at IS NULL THEN NULL ELSE GREATEST(ready.at, ${accountNextPostAtSql('a')}, CAST(:now AS timestamp)) END AS post_at,
            -- A join: only looked for within the budget; a group joinable now, else the next retry.
            CASE WHEN joins.today < ${accountJoinBudgetSql('a')} AND (joins.too_many_until IS NULL OR joins.too_many_until <= CAST(:now AS timestamp)) THEN
              CASE WHEN EXISTS (SELECT 1 FROM targets t WHERE ${JOINABLE_SQL} AND (t.join_retry_at IS NULL OR t.join_retry_at <= CAST(:now AS timestamp)))
                   THEN GREATEST(a.next_allowed_action_time, joins.spaced_until, CAST(:now AS timestamp))
                   ELSE (SELECT GREATEST(a.next_allowed_action_time, joins.spaced_until, r.at)
                           FROM (SELECT min(t.join_retry_at) AS at FROM targets t WHERE ${JOINABLE_SQL} AND t.join_retry_at > CAST(:now AS timestamp)) r
                          WHERE r.at IS NOT NULL)
              END
            ELSE
              CASE WHEN EXISTS (SELECT 1 FROM targets t WHERE ${JOINABLE_SQL})
                   THEN GREATEST(a.next_allowed_action_time, CASE WHEN joins.today >= ${accountJoinBudgetSql('a')} THEN ${TOMORROW_UTC_SQL} END, joins.too_many_until, joins.spaced_until)
              END
            END AS join_at
       FROM accounts a
       CROSS JOIN LATERAL (
         SELECT min(${targetNextPostAtSql('t')}) AS at FROM targets t
          WHERE t.assigned_account_id = a.id AND t.status = 'joined' AND t.niche = ANY(CAST(:niches AS text[]))) ready
       CROSS JOIN LATERAL ${joinBudgetSql('a')} joins
      WHERE a.id = :accountId AND COALESCE(a.status, 'active') IN ('active', 'flood_wait')`,
    {
      accountId: input.accountId,
      niches: input.niches.length ? input.niches : [DEFAULT_NICHE],
      minGapMs: Math.max(0, Math.round(input.minGapMs)),
      joinsPerDay: input.joinsPerDay,
      now: sqlTime(input.now),
      ...paceParams(input.pace ?? NO_PACE),
    },
  );
  const row = rows[0];
  return { post: row?.post_at ?? null, join: row?.join_at ?? null };
}

/**
 * What is left of the account's day until `horizon` (the end of the posting window, or the UTC
 * midnight if that comes first): the posts it can still make, the smaller of its budget and what
 * its groups can still take before then (each group its 2 posts of the day, minus those made, the
 * second only if the gap after the first ends in time), the joins it may still try, the groups
 * it posts in (any day), and when it last posted and joined. The daemon spreads them evenly over
 * what is left of the window.
 */
export interface DayLeft {
  posts: number;
  joins: number;
  groups: number;
  /** The account's last post (reserved) and join (answered), whenever they were. */
  lastPostAt: Date | null;
  lastJoinAt: Date | null;
}

export async function dayLeft(db: Runner, input: NextChanceInput & { horizon: Date }): Promise<DayLeft> {
  const first = `GREATEST(CAST(:now AS timestamp), t.warmup_ends_at, t.joined_at + interval '${WARMUP_HOURS} hours', t.next_post_allowed_at,
                          t.last_post_at + CAST(:minGapMs AS integer) * interval '1 millisecond')`;
  const { rows } = await sql<{ posts: number; joins: number; groups: number; last_post_at: Date | null; last_join_at: Date | null }>(
    db,
    `SELECT GREATEST(0, LEAST(${accountPostBudgetSql('a')} - COALESCE(${accountPostsTodaySql('a')}, ${ACCOUNT_DAILY_POST_LIMIT}), cap.n))::int AS posts, cap.groups,
            a.last_post_at, j.last_at AS last_join_at,
            CASE WHEN j.too_many_until > CAST(:now AS timestamp) THEN 0 ELSE GREATEST(0, ${accountJoinBudgetSql('a')} - j.today) END::int AS joins
       FROM accounts a
       CROSS JOIN LATERAL (
         SELECT COALESCE(sum(CASE WHEN ${GROUP_DAILY_POST_LIMIT} - COALESCE(${groupPostsTodaySql('t')}, ${GROUP_DAILY_POST_LIMIT}) <= 0 OR ${first} >= CAST(:horizon AS timestamp) THEN 0
                                  WHEN ${GROUP_DAILY_POST_LIMIT} - ${groupPostsTodaySql('t')} = 1
                                       OR ${first} + CAST(:minGapMs AS integer) * interval '1 millisecond' >= CAST(:horizon AS timestamp) THEN 1
                                  ELSE 2 END), 0) AS n,
                count(*)::int AS groups
           FROM targets t
          WHERE t.assigned_account_id = a.id AND t.status = 'joined' AND t.niche = ANY(CAST(:niches AS text[]))) cap
       CROSS JOIN LATERAL ${joinBudgetSql('a')} j
      WHERE a.id = :accountId`,
    {
      accountId: input.accountId,
      niches: input.niches.length ? input.niches : [DEFAULT_NICHE],
      minGapMs: Math.max(0, Math.round(input.minGapMs)),
      joinsPerDay: input.joinsPerDay,
      now: sqlTime(input.now),
      horizon: sqlTime(input.horizon),
      ...paceParams(input.pace ?? NO_PACE),
    },
  );
  const r = rows[0];
  return { posts: r?.posts ?? 0, joins: r?.joins ?? 0, groups: r?.groups ?? 0, lastPostAt: r?.last_post_at ?? null, lastJoinAt: r?.last_join_at ?? null };
}

export interface JoinClaim {
  targetId: number;
  link: string;
}

/**
 * Claims one group for this account to join: first one it claimed before and must finish (a
 * join whose answer was lost, a join request due to be asked again), else a new group of its
 * niches nobody claimed. One statement; SKIP LOCKED so that several daemons never wait on each
 * other. The claim is what keeps any other account away from the group.
 */
export async function claimJoinTarget(db: Runner, accountId: number, niches: string[], now: Date, lockHolderPid?: number): Promise<JoinClaim | null> {
  // Rule 4 and the account's lock are checked in the statement itself, as for posts. The
  // account's own claims come first (COALESCE asks for a new group only when there is none);
  // each half walks its index in id order and stops at the first group not locked.
  const claimable = `${inJoinQueueSql('q')}
           AND (q.join_retry_at IS NULL OR q.join_retry_at <= CAST(:now AS timestamp))`;
  const { rows } = await sql<{ id: number; link: string }>(
    db,
    `UPDATE targets SET join_claimed_by = :accountId, updated_at = CAST(:now AS timestamp)
      WHERE EXISTS (SELECT 1 FROM accounts a WHERE a.id = :accountId AND ${accountMayActSql('a')}
                      ${lockHolderPid === undefined ? '' : `AND ${accountLockHeldSql('a')}`})
        AND id = COALESCE(
          (SELECT q.id FROM targets q WHERE ${claimable} AND q.join_claimed_by = :accountId ORDER BY q.id LIMIT 1 FOR UPDATE SKIP LOCKED),
          (SELECT q.id FROM targets q WHERE ${claimable} AND q.join_claimed_by IS NULL ORDER BY q.id LIMIT 1 FOR UPDATE SKIP LOCKED))
      RETURNING id, link`,
    { accountId, niches: niches.length ? niches : [DEFAULT_NICHE], now: sqlTime(now), ...(lockHolderPid === undefined ? {} : { lockHolderPid }) },
  );
  const row = rows[0];
  return row ? { targetId: row.id, link: row.link } : null;
}

/** When the daemon plans the account's next post (lexus status shows it). */
export async function setPlannedPost(db: Runner, accountId: number, at: Date | null): Promise<void> {
  await sql(db, `UPDATE accounts SET next_post_planned_at = CAST(:at AS timestamp) WHERE id = :accountId`, { accountId, at: at ? sqlTime(at) : null });
}

/** What a pending slot will send, written before sending so that history says it even after a crash. */
export async function describeSlot(db: Runner, slotId: number, messageContent: string, photoPath: string | null): Promise<void> {
  await sql(db, `UPDATE post_history SET message_content = :messageContent, photo_path = :photoPath WHERE id = :slotId AND status = 'pending'`, {
    slotId,
    messageContent,
    photoPath,
  });
}

export interface DailySummary {
  day: string;
  postsByAccount: Record<string, number>;
  joins: number;
  floodWaits: number;
  groupsLost: number;
}

/** The UTC day before `now`: posts per account, joins, FloodWaits, groups that banned us. */
export async function summarizeDay(db: DataSource, now: Date): Promise<DailySummary> {
  const params = { now: sqlTime(now) };
  const day = `${TODAY_UTC_SQL} - interval '1 day'`;
  const { rows: posts } = await sql<{ session_name: string; n: number }>(
    db,
    `SELECT a.session_name, count(*)::int AS n FROM post_history h JOIN accounts a ON a.id = h.account_id
      WHERE h.status = 'success' AND h.created_at >= ${day} AND h.created_at < ${TODAY_UTC_SQL}
      GROUP BY a.session_name ORDER BY a.session_name`,
    params,
  );
  const { rows: counts } = await sql<{ joins: number; waits: number; lost: number; day: string }>(
    db,
    `SELECT (SELECT count(*)::int FROM join_history WHERE outcome IN ('joined', 'already_member') AND created_at >= ${day} AND created_at < ${TODAY_UTC_SQL}) AS joins,
            (SELECT count(*)::int FROM post_history WHERE status = 'flood_wait' AND created_at >= ${day} AND created_at < ${TODAY_UTC_SQL})
              + (SELECT count(*)::int FROM join_history WHERE outcome = 'account_flood_wait' AND created_at >= ${day} AND created_at < ${TODAY_UTC_SQL}) AS waits,
            (SELECT count(*)::int FROM targets WHERE status = 'banned' AND updated_at >= ${day} AND updated_at < ${TODAY_UTC_SQL}) AS lost,
            to_char(${day}, 'YYYY-MM-DD') AS day`,
    params,
  );
  const c = counts[0]!;
  return { day: c.day, postsByAccount: Object.fromEntries(posts.map((p) => [p.session_name, p.n])), joins: c.joins, floodWaits: c.waits, groupsLost: c.lost };
}

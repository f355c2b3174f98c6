/**
 * Posting: an account's next chance to post or join and what is left of its day (the daemon's
 * plan), a post slot's description and its settlement. The reservation itself is the seed's API
 * (DbManager.reservePostSlot). Each operation is one function with its SQL in full; "now" from
 * the caller.
 */
import {
  ACCOUNT_DAILY_POST_LIMIT,
  DEFAULT_NICHE,
  GROUP_DAILY_POST_LIMIT,
  NO_PACE,
  TOMORROW_UTC_SQL,
  WARMUP_HOURS,
  accountJoinBudgetSql,
  accountNextPostAtSql,
  accountPostBudgetSql,
  accountPostsTodaySql,
  groupPostsTodaySql,
  paceParams,
  targetNextPostAtSql,
  type Pace,
} from './rules';
import { sqlTime } from '../db/postgresTypes';
import { sql, type Runner } from '../db/sql';
import { NotFoundError, SlotAlreadySettledError } from '../db/errors';
import type { PostStatus } from '../db/entities';
import { JOINABLE_SQL, joinBudgetSql } from './rules';

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

/** What a pending slot will send, written before sending so that history says it even after a crash. */
export async function describeSlot(db: Runner, slotId: number, messageContent: string, photoPath: string | null): Promise<void> {
  await sql(db, `UPDATE post_history SET message_content = :messageContent, photo_path = :photoPath WHERE id = :slotId AND status = 'pending'`, {
    slotId,
    messageContent,
    photoPath,
  });
}

export type SettleOutcome =
  /** Telegram accepted the message. */
  | { outcome: 'sent' }
  /** Definitely not sent: the slot is given back. */
  | { outcome: 'not_sent'; status: Extract<PostStatus, 'error' | 'flood_wait' | 'skipped'>; errorMessage?: string | null }
  /** May or may not have been sent (timeout after sending, crash): the slot stays spent. */
  | { outcome: 'unknown'; errorMessage?: string | null };

/**
 * Settles a reserved slot, in one statement that locks in the reservation's order (account, then
 * group, then the row). 'sent': history 'success', the group's last post is now, and so is the
 * account's if it reserved earlier. 'unknown': the
 * same but 'unknown' (the post may have gone out: it stays counted). 'not_sent': the given
 * status, and the slot given back to both counters, but only to a counter that still counts the
 * reservation's day. `message`: what was finally sent, written into the row.
 * Throws NotFoundError for no such slot and SlotAlreadySettledError when it is not pending.
 */
export async function settlePostSlot(db: Runner, slotId: number, result: SettleOutcome, now: Date, message?: { text: string; photoPath: string | null }): Promise<void> {
  const status = result.outcome === 'sent' ? 'success' : result.outcome === 'unknown' ? 'unknown' : result.status;
  const { rows } = await sql<{ found: boolean; settled: boolean }>(
    db,
    `WITH slot AS (
       SELECT h.account_id, h.target_id
         FROM post_history h
         JOIN accounts a ON a.id = h.account_id
         JOIN targets t ON t.id = h.target_id
        WHERE h.id = :slotId
        FOR UPDATE OF a, t
     ), settled AS (
       UPDATE post_history
          SET status = :status, error_message = :errorMessage,
              message_content = COALESCE(:text, message_content),
              photo_path = CASE WHEN :describe THEN :photoPath ELSE photo_path END
        WHERE id = :slotId AND status = 'pending' AND EXISTS (SELECT 1 FROM slot)
        RETURNING account_id, target_id, created_at AS reserved_at
     ), group_posted AS (
       UPDATE targets SET last_post_at = CAST(:now AS timestamp), updated_at = CAST(:now AS timestamp)
         FROM settled WHERE targets.id = settled.target_id AND :spent
     ), account_posted AS (
       -- The spacing between two posts of the account counts from the later of reserving and
       -- sending: a slow send does not bring the next post closer to it.
       UPDATE accounts SET last_post_at = GREATEST(accounts.last_post_at, CAST(:now AS timestamp))
         FROM settled WHERE accounts.id = settled.account_id AND :spent
     ), account_given_back AS (
       UPDATE accounts
          SET daily_posts_count = GREATEST(COALESCE(daily_posts_count, 0) - 1, 0), updated_at = CAST(:now AS timestamp)
         FROM settled
        WHERE accounts.id = settled.account_id AND NOT :spent
          AND date_trunc('day', accounts.last_stats_reset) = date_trunc('day', settled.reserved_at)
     ), group_given_back AS (
       UPDATE targets
          SET daily_posts_in_group = GREATEST(COALESCE(daily_posts_in_group, 0) - 1, 0), updated_at = CAST(:now AS timestamp)
         FROM settled
        WHERE targets.id = settled.target_id AND NOT :spent
          AND date_trunc('day', targets.last_group_stats_reset) = date_trunc('day', settled.reserved_at)
     )
     SELECT EXISTS (SELECT 1 FROM slot) AS found, EXISTS (SELECT 1 FROM settled) AS settled`,
    {
      slotId,
      status,
      errorMessage: result.outcome === 'sent' ? null : (result.errorMessage ?? null),
      spent: result.outcome !== 'not_sent',
      text: message?.text ?? null,
      describe: message !== undefined,
      photoPath: message?.photoPath ?? null,
      now: sqlTime(now),
    },
  );
  if (!rows[0]?.found) throw new NotFoundError(`post slot ${slotId} does not exist`);
  if (!rows[0].settled) throw new SlotAlreadySettledError(slotId);
}

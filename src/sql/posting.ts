/**
 * Posting: an account's next chance to post or join and what is left of its day (the daemon's
 * plan), a post slot's description and its settlement. The reservation itself is the seed's API
 * (DbManager.reservePostSlot). Each operation is one function with its SQL in full; "now" from
 * the caller.
 */
import type { DataSource, QueryRunner } from 'typeorm';
import type { PostStatus } from '../db/entities';
import { Account, Target } from '../db/entities';
import { NotFoundError, SlotAlreadySettledError } from '../db/errors';
import { sqlTime } from '../db/postgresTypes';
import { hydrate, selectColumns } from './hydrate';
import { accountLockHeldSql } from './locks';
import {
  ACCOUNT_COUNT_ONE_POST_SQL,
  ACCOUNT_DAILY_POST_LIMIT,
  accountJoinsLeftTodaySql,
  accountMayPostSql,
  accountNextJoinAtSql,
  accountNextPostAtSql,
  accountNotBannedSql,
  accountPostBudgetSql,
  accountPostsTodaySql,
  accountServedGroupSql,
  COUNTED_POST_STATUSES_SQL,
  DEFAULT_NICHE,
  GROUP_COUNT_ONE_POST_SQL,
  GROUP_DAILY_POST_LIMIT,
  groupPostsTodaySql,
  joinBudgetSql,
  NO_PACE,
  nextJoinTargetSql,
  type Pace,
  paceParams,
  READY_ORDER_SQL,
  TODAY_UTC_SQL,
  targetGapKeptSql,
  targetMayReceivePostFromSql,
  targetNextPostAtSql,
  targetWarmupEndsSql,
} from './rules';
import { type Runner, sql } from './sql';

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
export async function nextChances(
  db: Runner,
  input: NextChanceInput,
): Promise<{ post: Date | null; join: Date | null }> {
  const { rows } = await sql<{ post_at: Date | null; join_at: Date | null }>(
    db,
    `SELECT CASE WHEN ready.at IS NULL THEN NULL ELSE GREATEST(ready.at, ${accountNextPostAtSql('a')}, CAST(:now AS timestamp)) END AS post_at,
            -- The join policy (rules.ts): the next group, and when the account may join it.
            CASE WHEN q.link IS NOT NULL THEN ${accountNextJoinAtSql('a', 'joins', 'q.join_retry_at')} END AS join_at
       FROM accounts a
       CROSS JOIN LATERAL (
         SELECT min(${targetNextPostAtSql('t')}) AS at FROM targets t
          WHERE ${accountServedGroupSql('t', 'a')}) ready
       CROSS JOIN LATERAL ${joinBudgetSql('a')} joins
       LEFT JOIN LATERAL ${nextJoinTargetSql('a')} q ON true
      WHERE a.id = :accountId AND ${accountNotBannedSql('a')}`,
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
  const first = `GREATEST(CAST(:now AS timestamp), ${targetWarmupEndsSql('t')}, t.next_post_allowed_at,
                          t.last_post_at + CAST(:minGapMs AS integer) * interval '1 millisecond')`;
  const { rows } = await sql<{
    posts: number;
    joins: number;
    groups: number;
    last_post_at: Date | null;
    last_join_at: Date | null;
  }>(
    db,
    `SELECT GREATEST(0, LEAST(${accountPostBudgetSql('a')} - COALESCE(${accountPostsTodaySql('a')}, ${ACCOUNT_DAILY_POST_LIMIT}), cap.n))::int AS posts, cap.groups,
            a.last_post_at, j.last_at AS last_join_at,
            ${accountJoinsLeftTodaySql('a', 'j')}::int AS joins
       FROM accounts a
       CROSS JOIN LATERAL (
         SELECT COALESCE(sum(CASE WHEN ${GROUP_DAILY_POST_LIMIT} - COALESCE(${groupPostsTodaySql('t')}, ${GROUP_DAILY_POST_LIMIT}) <= 0 OR ${first} >= CAST(:horizon AS timestamp) THEN 0
                                  WHEN ${GROUP_DAILY_POST_LIMIT} - ${groupPostsTodaySql('t')} = 1
                                       OR ${first} + CAST(:minGapMs AS integer) * interval '1 millisecond' >= CAST(:horizon AS timestamp) THEN 1
                                  ELSE 2 END), 0) AS n,
                count(*)::int AS groups
           FROM targets t
          WHERE ${accountServedGroupSql('t', 'a')}) cap
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
  return {
    posts: r?.posts ?? 0,
    joins: r?.joins ?? 0,
    groups: r?.groups ?? 0,
    lastPostAt: r?.last_post_at ?? null,
    lastJoinAt: r?.last_join_at ?? null,
  };
}

/** What a pending slot will send, written before sending so that history says it even after a crash. */
export async function describeSlot(
  db: Runner,
  slotId: number,
  messageContent: string,
  photoPath: string | null,
): Promise<void> {
  await sql(
    db,
    `UPDATE post_history SET message_content = :messageContent, photo_path = :photoPath WHERE id = :slotId AND status = 'pending'`,
    {
      slotId,
      messageContent,
      photoPath,
    },
  );
}

export type SettleOutcome =
  /** Telegram accepted the message. */
  | { outcome: 'sent' }
  /** Definitely not sent: the slot is given back. */
  | {
      outcome: 'not_sent';
      status: Extract<PostStatus, 'error' | 'flood_wait' | 'skipped'>;
      errorMessage?: string | null;
    }
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
export async function settlePostSlot(
  db: Runner,
  slotId: number,
  result: SettleOutcome,
  now: Date,
  message?: { text: string; photoPath: string | null },
): Promise<void> {
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

export interface ReserveSlotInput {
  accountId: number;
  /** The group to post to; without it, the account's ready group that waited longest. */
  targetId?: number;
  /** Only a group of this niche; default 'ukraine_cars'. */
  niche?: string;
  /** Only a group whose last post is at least this old (the daemon's spacing); default 0. */
  minGapMs?: number;
  /**
   * The backend pid of the connection holding this account's advisory lock (accountLocks.ts):
   * the reservation is refused unless that connection still holds it, so a process that lost
   * the account to another one cannot post from it any more.
   */
  lockHolderPid?: number;
  messageContent?: string | null;
  photoPath?: string | null;
  /**
   * The daemon sends right after: the account's call mark (accounts.call_started_at) is set in
   * the same statement, and cleared when the answer is recorded.
   */
  startsCall?: boolean;
}

/** A post slot counted against both daily limits, to be settled once the send is over. */
export interface PostSlot {
  /** The post_history row that stands for this attempt (status 'pending'). */
  id: number;
  accountId: number;
  targetId: number;
  link: string;
  /** The group's stored peer (the chat's id and the account's access hash), when known. */
  telegramId: string | null;
  accessHash: string | null;
  reservedAt: Date;
  /** The text last sent (or maybe sent) to this group before, so that the next one differs. */
  lastMessage: string | null;
}

export interface RecordPostInput {
  accountId: number;
  targetId: number;
  messageContent?: string | null;
  photoPath?: string | null;
  status?: Exclude<PostStatus, 'pending'>;
  errorMessage?: string | null;
}

export interface CounterResetResult {
  accounts: number;
  targets: number;
}

/**
 * The groups that pass every rule now (SPEC.md), as the seed's getGroupsReadyForPosting returns
 * them: its statement (the benchmark explains it). The niche's bound, joined groups are read in
 * serving order from their index (targets_ready_by_niche_idx), and each one is checked, with its
 * account looked up by primary key, in a LATERAL subquery (OFFSET 0 keeps it there): the
 * planner, which cannot know how many groups the rules keep, then counts on one row per group
 * rather than on a handful for the whole niche, and never prefers to check and sort them all.
 * With a limit, the scan stops at the limit-th ready group, so a million groups cost what the
 * first few dozen do.
 */
export function readyGroupsStatement(
  ds: DataSource,
  input: { niche: string; limit?: number; now: Date; pace: Pace },
): [string, Record<string, unknown>] {
  return [
    `SELECT ${selectColumns(ds, Target, 't', 't_')}, ${selectColumns(ds, Account, 'a', 'a_')}
       FROM targets t
      CROSS JOIN LATERAL (
            SELECT * FROM accounts a
             WHERE a.id = t.assigned_account_id AND ${targetMayReceivePostFromSql('t', 'a')} AND ${accountMayPostSql('a')}
            OFFSET 0) a
      WHERE t.niche = :niche AND t.status = 'joined' AND t.assigned_account_id IS NOT NULL
      ORDER BY ${READY_ORDER_SQL('t')}
      ${input.limit === undefined ? '' : 'LIMIT CAST(:limit AS integer)'}`,
    {
      niche: input.niche,
      now: sqlTime(input.now),
      ...paceParams(input.pace),
      ...(input.limit === undefined ? {} : { limit: input.limit }),
    },
  ];
}

/** The ready groups (readyGroupsStatement), each with its `assignedAccount`. */
export async function loadReadyGroups(
  ds: DataSource,
  db: Runner,
  input: { niche: string; limit?: number; now: Date; pace: Pace },
): Promise<Target[]> {
  const [text, params] = readyGroupsStatement(ds, input);
  const { rows } = await sql<Record<string, unknown>>(db, text, params);
  return rows.map((row) => {
    const target = hydrate(ds, Target, row, 't_');
    target.assignedAccount = hydrate(ds, Account, row, 'a_');
    return target;
  });
}

/** reservePostSlot's statement and its parameters (the benchmark explains it). */
export function reserveStatement(
  input: ReserveSlotInput & { now: Date; pace: Pace },
): [string, Record<string, unknown>] {
  return [
    `WITH slot AS (
         SELECT a.id AS account_id, t.id AS target_id, t.link, t.telegram_id, t.peer_access_hash
           FROM accounts a
           JOIN targets t ON ${targetMayReceivePostFromSql('t', 'a')}
          WHERE a.id = :accountId
            AND t.niche = :niche
            AND ${targetGapKeptSql('t')}
            ${input.targetId === undefined ? '' : 'AND t.id = :targetId'}
            ${input.lockHolderPid === undefined ? '' : `AND ${accountLockHeldSql('a')}`}
            AND ${accountMayPostSql('a')}
          ORDER BY ${READY_ORDER_SQL('t')}
          LIMIT 1
          FOR UPDATE OF a, t
       ), count_for_account AS (
         UPDATE accounts
            SET ${ACCOUNT_COUNT_ONE_POST_SQL}, last_post_at = CAST(:now AS timestamp), updated_at = CAST(:now AS timestamp),
                call_started_at = CASE WHEN :startsCall THEN CAST(:now AS timestamp) ELSE call_started_at END
           FROM slot
          WHERE accounts.id = slot.account_id
       ), count_for_group AS (
         UPDATE targets
            SET ${GROUP_COUNT_ONE_POST_SQL}, updated_at = CAST(:now AS timestamp)
           FROM slot
          WHERE targets.id = slot.target_id
       )
       INSERT INTO post_history (account_id, target_id, message_content, photo_path, status, created_at)
       SELECT slot.account_id, slot.target_id, :messageContent, :photoPath, 'pending', CAST(:now AS timestamp)
         FROM slot
       RETURNING id, account_id, target_id, created_at,
                 (SELECT link FROM slot) AS link, (SELECT telegram_id FROM slot) AS telegram_id,
                 (SELECT peer_access_hash FROM slot) AS peer_access_hash,
                 (SELECT h.message_content FROM post_history h
                   WHERE h.target_id = post_history.target_id AND h.status IN ${COUNTED_POST_STATUSES_SQL} AND h.message_content IS NOT NULL
                   ORDER BY h.created_at DESC, h.id DESC LIMIT 1) AS last_message`,
    {
      accountId: input.accountId,
      niche: input.niche ?? DEFAULT_NICHE,
      minGapMs: Math.max(0, Math.round(input.minGapMs ?? 0)),
      ...(input.lockHolderPid === undefined ? {} : { lockHolderPid: input.lockHolderPid }),
      ...(input.targetId === undefined ? {} : { targetId: input.targetId }),
      messageContent: input.messageContent ?? null,
      photoPath: input.photoPath ?? null,
      startsCall: input.startsCall ?? false,
      ...paceParams(input.pace),
      now: sqlTime(input.now),
    },
  ];
}

/**
 * Reserves one post for (account, group) if every rule holds at this instant, in one
 * statement: the account and group rows are locked, the rules re-checked on their latest
 * versions, both daily counters incremented (reset first if stale), and a 'pending' history
 * row written. Returns null when no slot is free. Under any number of concurrent callers at
 * most 2 posts per group and 20 per account per UTC day are ever reserved, and only by the
 * bound account.
 */
export async function reservePostSlot(
  db: Runner,
  input: ReserveSlotInput & { now: Date; pace: Pace },
): Promise<PostSlot | null> {
  const [text, params] = reserveStatement(input);
  const { rows } = await sql<{
    id: number;
    account_id: number;
    target_id: number;
    link: string;
    telegram_id: string | null;
    peer_access_hash: string | null;
    created_at: Date;
    last_message: string | null;
  }>(db, text, params);
  const row = rows[0];
  if (!row) return null;
  return {
    id: row.id,
    accountId: row.account_id,
    targetId: row.target_id,
    link: row.link,
    telegramId: row.telegram_id,
    accessHash: row.peer_access_hash,
    reservedAt: row.created_at,
    lastMessage: row.last_message,
  };
}

/**
 * The seed's record_post, for callers that post outside the reserve/settle flow: a history row
 * and, for 'success', both daily counters (reset first if stale) and last_post_at. `db` must be
 * a transaction's QueryRunner: the rows are locked first and the writes are one unit. Returns the
 * history row's id. A 'success' from an account the group is not bound to is refused by the
 * database (rule 1).
 */
export async function recordPost(db: QueryRunner, input: RecordPostInput, now: Date): Promise<number> {
  const status = input.status ?? 'success';
  const params = {
    accountId: input.accountId,
    targetId: input.targetId,
    messageContent: input.messageContent ?? null,
    photoPath: input.photoPath ?? null,
    status,
    errorMessage: input.errorMessage ?? null,
    now: sqlTime(now),
  };
  if (status === 'success') {
    await sql(
      db,
      `SELECT 1 FROM accounts a, targets t WHERE a.id = :accountId AND t.id = :targetId FOR UPDATE OF a, t`,
      params,
    );
  }
  const { rows } = await sql<{ id: number }>(
    db,
    `INSERT INTO post_history (account_id, target_id, message_content, photo_path, status, error_message, created_at)
     VALUES (:accountId, :targetId, :messageContent, :photoPath, :status, :errorMessage, CAST(:now AS timestamp))
     RETURNING id`,
    params,
  );
  if (status === 'success') {
    await sql(
      db,
      `UPDATE accounts SET ${ACCOUNT_COUNT_ONE_POST_SQL}, updated_at = CAST(:now AS timestamp) WHERE id = :accountId`,
      params,
    );
    await sql(
      db,
      `UPDATE targets
          SET ${GROUP_COUNT_ONE_POST_SQL}, last_post_at = CAST(:now AS timestamp), updated_at = CAST(:now AS timestamp)
        WHERE id = :targetId`,
      params,
    );
  }
  return rows[0]!.id;
}

/**
 * Rule 3's midnight: counters last reset before today's UTC midnight go back to 0. One
 * statement per table, touching only counters that are not already 0; idempotent and safe to
 * run concurrently. Rows locked by a reservation at that moment are skipped rather than
 * waited for (waiting could deadlock with it): every statement that reads the counters treats a
 * stale one as 0 anyway, so correctness never depends on this having run, and the
 * reservation resets the counter itself. Statuses are left alone: a banned account stays banned.
 */
export async function resetDailyCounters(db: Runner, now: Date): Promise<CounterResetResult> {
  const params = { now: sqlTime(now) };
  const accounts = await sql(
    db,
    `UPDATE accounts
        SET daily_posts_count = 0, last_stats_reset = CAST(:now AS timestamp), updated_at = CAST(:now AS timestamp)
      WHERE id IN (SELECT id FROM accounts
                    WHERE daily_posts_count <> 0
                      AND (last_stats_reset IS NULL OR last_stats_reset < ${TODAY_UTC_SQL})
                    FOR UPDATE SKIP LOCKED)`,
    params,
  );
  const targets = await sql(
    db,
    `UPDATE targets
        SET daily_posts_in_group = 0, last_group_stats_reset = CAST(:now AS timestamp), updated_at = CAST(:now AS timestamp)
      WHERE id IN (SELECT id FROM targets
                    WHERE daily_posts_in_group <> 0
                      AND (last_group_stats_reset IS NULL OR last_group_stats_reset < ${TODAY_UTC_SQL})
                    FOR UPDATE SKIP LOCKED)`,
    params,
  );
  return { accounts: accounts.rowCount, targets: targets.rowCount };
}

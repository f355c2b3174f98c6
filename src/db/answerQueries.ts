/**
 * Recording Telegram's answers. recordAnswer applies one answer's consequence (daemon/answers.ts)
 * in one transaction: to the account (a FloodWait, a pause, a dead session), to the group (bound,
 * closed, refused, held, its chat learnt), to the post slot, to the join history, and it ends
 * the account's call. Each answer has an id, recorded in the same transaction: a record tried again
 * after a commit whose acknowledgement was lost is not applied twice. Each operation is one
 * function with its SQL in full; times come from the caller (the instant Telegram answered),
 * never from the database's now().
 */
import type { DataSource, QueryRunner } from 'typeorm';
import type { Consequence } from '../daemon/answers';
import type { ChatIdentity } from '../telegram/outcomes';
import { DbManager } from './DbManager';
import { accountLockHeldSql } from './accountLocks';
import { SlotAlreadySettledError } from './errors';
import { holdAccount, settlePostSlot, type SettleOutcome } from './settleQueries';
import { SEND_DEADLINE_MS, claimStaysSql, targetHeldSql } from '../sql/rules';
import { sqlTime } from './postgresTypes';
import { sql, type Runner } from './sql';

/** How the daemon answers Telegram's limits (from its settings). */
export interface AnswerPolicy {
  /** Pause of an account Telegram limits (PEER_FLOOD, a restriction). */
  peerFloodPauseMs: number;
  /** This many refusals from different groups within `windowMs` are the account's restriction, not group bans. */
  restriction: { refusals: number; windowMs: number };
}

export interface AnswerRecord {
  /** Unique per answer (the recording process's name and a sequence number). */
  answerId: string;
  accountId: number;
  /** When Telegram answered: every hold is counted from here. */
  at: Date;
  /** The call Telegram answered, and how (join_history keeps it for joins and lookups). */
  call: 'connect' | 'lookup' | 'join' | 'post';
  outcome: string;
  error: string | null;
  consequence: Consequence;
  targetId?: number;
  /** What Telegram told of the chat (a lookup, a join, a post that looked its link up). */
  chat?: ChatIdentity | null;
  slotId?: number;
  /** What the post finally sent (a text-only group gets no photo): kept in the history row. */
  message?: { text: string; photoPath: string | null };
  /** This answer ends the account's call (accounts.call_started_at is cleared if it is this call's). */
  callStartedAt: Date | null;
  policy: AnswerPolicy;
}

export interface AnswerResult {
  /** The account's FloodWait or pause in force after this record; null: none set by it. */
  holdUntil: Date | null;
  /** The refusal made the account's refusals within the window reach the threshold: it is restricted. */
  restricted: { refusals: number } | null;
  /** For a bind: whether the group is now bound to this account. */
  bound: boolean | null;
  /** The chat is one another row already stands for: this row was closed as its duplicate. */
  duplicateOf: string | null;
  /** Another row was the same chat and was closed as this one's duplicate. */
  absorbed: string | null;
}

/** A group refusing one account is reopened as the account's restriction at most this often. */
export const MAX_REOPENS = 7;

const msSql = (name: string) => `CAST(:${name} AS bigint) * interval '1 millisecond'`;

/**
 * Marks the start of a Telegram call of this account, if it may act now (rule 4) and, when a lock
 * holder is named, that connection still holds the account's lock: false means no call may start.
 * The mark stays until the answer is recorded (endCall), so a process taking the account over
 * knows whether an answer may still be on its way.
 */
export async function beginCall(db: Runner, accountId: number, now: Date, lockHolderPid?: number): Promise<boolean> {
  const { rows } = await sql(
    db,
    `UPDATE accounts a SET call_started_at = CAST(:now AS timestamp)
      WHERE a.id = :accountId
        AND COALESCE(a.status, 'active') IN ('active', 'flood_wait')
        AND (a.next_allowed_action_time IS NULL OR a.next_allowed_action_time <= CAST(:now AS timestamp))
        ${lockHolderPid === undefined ? '' : `AND ${accountLockHeldSql('a')}`}
      RETURNING a.id`,
    { accountId, now: sqlTime(now), ...(lockHolderPid === undefined ? {} : { lockHolderPid }) },
  );
  return rows.length === 1;
}

/** The call that started at `startedAt` is answered and recorded: its mark goes (a later call's stays). */
export async function endCall(db: Runner, accountId: number, startedAt: Date): Promise<void> {
  await sql(db, `UPDATE accounts SET call_started_at = NULL WHERE id = :accountId AND call_started_at <= CAST(:startedAt AS timestamp)`, {
    accountId,
    startedAt: sqlTime(startedAt),
  });
}

/**
 * The lease: this process (`driver`) may have a live Telegram session of these accounts until
 * `until`. Written only for accounts whose advisory lock the connection `lockHolderPid` holds, in
 * the same statement; returns those. A process taking an account over reads it first (takeOverAccount).
 */
export async function renewLease(db: Runner, input: { accountIds: number[]; lockHolderPid: number; driver: string; until: Date }): Promise<number[]> {
  if (input.accountIds.length === 0) return [];
  const { rows } = await sql<{ id: number }>(
    db,
    `UPDATE accounts a SET driven_by = :driver, driven_until = CAST(:until AS timestamp)
      WHERE a.id = ANY(CAST(:ids AS int[])) AND ${accountLockHeldSql('a')}
      RETURNING a.id`,
    { ids: input.accountIds, driver: input.driver, until: sqlTime(input.until), lockHolderPid: input.lockHolderPid },
  );
  return rows.map((r) => r.id);
}

/** A clean stop: this process's sessions are closed, so its lease on these accounts ends now. */
export async function endLease(db: Runner, accountIds: number[], driver: string): Promise<void> {
  if (accountIds.length === 0) return;
  // No process plans its posts any more: lexus status shows none planned until one takes it.
  await sql(db, `UPDATE accounts SET driven_by = NULL, driven_until = NULL, next_post_planned_at = NULL WHERE id = ANY(CAST(:ids AS int[])) AND driven_by = :driver`, {
    ids: accountIds,
    driver,
  });
}

export interface TakeOver {
  /** Slots a previous process reserved and never settled: now 'unknown' (counted, never re-sent). */
  abandonedSlots: number;
  /** The previous process started a Telegram call whose answer was never recorded (then). */
  unansweredCallAt: Date | null;
  /** The previous driver's lease: it may have had a live session until then (null: none, or ended cleanly). */
  previousDriver: string | null;
  previousLeaseUntil: Date | null;
}

/**
 * What a process taking an account over finds of the previous one, settled in one transaction
 * (and, for an account never driven before, the start of its ramp-up):
 * its unsettled slots become 'unknown' (the post may or may not have gone out: counted, never
 * sent again; the group's and the account's last post is now), and, when a call of it was never answered, the
 * groups it was joining are marked uncertain (it may be in them: they stay with this account),
 * and the last one's join counts as tried (join_history 'unknown').
 */
export async function takeOverAccount(db: DataSource, accountId: number, now: Date): Promise<TakeOver> {
  return db.transaction(async (manager) => {
    const q = manager.queryRunner!;
    const params = { accountId, now: sqlTime(now) };
    // The account first (the order every writer locks in), and its lease as last committed: a
    // renewal of the previous driver still in flight is waited for, not read around.
    const { rows: accounts } = await sql<{ call_started_at: Date | null; driven_by: string | null; driven_until: Date | null }>(
      q,
      `SELECT call_started_at, driven_by, driven_until FROM accounts WHERE id = :accountId FOR UPDATE`,
      { accountId },
    );
    // A new account's ramp-up counts from the first time a daemon drives it.
    await sql(q, `UPDATE accounts SET first_driven_at = CAST(:now AS timestamp) WHERE id = :accountId AND first_driven_at IS NULL`, params);
    const { rows: slots } = await sql<{ n: number }>(
      q,
      `WITH abandoned AS (
         UPDATE post_history
            SET status = 'unknown', error_message = 'the process stopped between reserving and settling this post'
          WHERE account_id = :accountId AND status = 'pending'
          RETURNING target_id
       ), posted AS (
         UPDATE targets SET last_post_at = GREATEST(last_post_at, CAST(:now AS timestamp))
          WHERE id IN (SELECT target_id FROM abandoned)
       ), account_posted AS (
         -- The account's spacing counts from now too: such a post may have landed up to now.
         UPDATE accounts SET last_post_at = GREATEST(last_post_at, CAST(:now AS timestamp))
          WHERE id = :accountId AND EXISTS (SELECT 1 FROM abandoned)
       )
       SELECT count(*)::int AS n FROM abandoned`,
      params,
    );
    const unansweredCallAt = accounts[0]?.call_started_at ?? null;
    if (unansweredCallAt) {
      // The call may have been the join of the group it had claimed last: that join may have
      // happened (uncertain means taken), so it counts in the day's joins and the spacing from
      // the latest it may have landed.
      await sql(
        q,
        `INSERT INTO join_history (account_id, target_id, outcome, error_message, created_at)
         SELECT :accountId, t.id, 'unknown', 'the previous process stopped during a call of this account: this join may have happened',
                CAST(:landedBy AS timestamp)
           FROM targets t
          WHERE t.join_claimed_by = :accountId AND t.status IN ('new', 'requested') AND t.assigned_account_id IS NULL
          ORDER BY t.updated_at DESC, t.id DESC
          LIMIT 1`,
        { accountId, landedBy: sqlTime(new Date(unansweredCallAt.getTime() + SEND_DEADLINE_MS)) },
      );
      await sql(
        q,
        `UPDATE targets SET join_uncertain = true, updated_at = CAST(:now AS timestamp)
          WHERE join_claimed_by = :accountId AND status IN ('new', 'requested') AND assigned_account_id IS NULL AND NOT join_uncertain`,
        params,
      );
    }
    return {
      abandonedSlots: slots[0]?.n ?? 0, unansweredCallAt, previousDriver: accounts[0]?.driven_by ?? null, previousLeaseUntil: accounts[0]?.driven_until ?? null,
    };
  });
}

/**
 * A dead session (revoked, deactivated, duplicated): the account stops until `lexus login`, and
 * the groups it was about to join (or asked to join) go back to the queue for another account,
 * except those whose claim stays with it (rules.ts claimStaysSql: it may be in them, or they
 * refused it as its restriction).
 */
export async function banAccount(db: Runner, accountId: number, reason: string, now: Date): Promise<void> {
  await sql(
    db,
    `WITH banned AS (
       UPDATE accounts SET status = 'banned', status_reason = :reason, updated_at = CAST(:now AS timestamp) WHERE id = :accountId
     )
     UPDATE targets SET join_claimed_by = NULL, join_retry_at = NULL, status = 'new', status_reason = NULL, updated_at = CAST(:now AS timestamp)
      WHERE join_claimed_by = :accountId AND status IN ('new', 'requested') AND assigned_account_id IS NULL AND NOT ${claimStaysSql('targets')}`,
    { accountId, reason, now: sqlTime(now) },
  );
}

export async function recordJoinAttempt(db: Runner, accountId: number, targetId: number, outcome: string, errorMessage: string | null, now: Date): Promise<void> {
  await sql(
    db,
    `INSERT INTO join_history (account_id, target_id, outcome, error_message, created_at)
     VALUES (:accountId, :targetId, :outcome, :errorMessage, CAST(:now AS timestamp))`,
    { accountId, targetId, outcome, errorMessage, now: sqlTime(now) },
  );
}

/**
 * The claim goes back: this account will not join the group now (its FloodWait, its chat limit),
 * and another account may. Never a claim that stays with it (rules.ts claimStaysSql).
 */
export async function releaseJoinClaim(db: Runner, targetId: number, accountId: number, now: Date): Promise<void> {
  await sql(
    db,
    `UPDATE targets SET join_claimed_by = NULL, updated_at = CAST(:now AS timestamp)
      WHERE id = :targetId AND join_claimed_by = :accountId AND status = 'new' AND NOT ${claimStaysSql('targets')}`,
    { targetId, accountId, now: sqlTime(now) },
  );
}

/** A join request waits for an admin: ask again (by the same account only) after `retryAt`. */
export async function markJoinRequested(db: Runner, targetId: number, accountId: number, retryAt: Date, now: Date): Promise<void> {
  await sql(
    db,
    `UPDATE targets SET status = 'requested', status_reason = 'join request sent; an admin must approve it',
            join_claimed_by = :accountId, join_retry_at = CAST(:retryAt AS timestamp), updated_at = CAST(:now AS timestamp)
      WHERE id = :targetId AND assigned_account_id IS NULL AND status IN ('new', 'requested')`,
    { targetId, accountId, retryAt: sqlTime(retryAt), now: sqlTime(now) },
  );
}

/**
 * The same account joins again after `retryAt` (a failure): the claim stays with it. `uncertain`:
 * the join may have happened, so the claim never goes to another account from now on.
 */
export async function postponeJoin(db: Runner, targetId: number, retryAt: Date, uncertain: boolean, now: Date): Promise<void> {
  await sql(
    db,
    `UPDATE targets SET join_retry_at = CAST(:retryAt AS timestamp), join_uncertain = join_uncertain OR :uncertain,
            updated_at = CAST(:now AS timestamp)
      WHERE id = :targetId`,
    { targetId, retryAt: sqlTime(retryAt), uncertain, now: sqlTime(now) },
  );
}

/** The link leads nowhere: the group is done with for good. */
export async function closeDeadLink(db: Runner, targetId: number, reason: string, now: Date): Promise<void> {
  await sql(
    db,
    `UPDATE targets SET status = 'error', status_reason = :reason, join_retry_at = NULL, closed_at = CAST(:now AS timestamp),
            updated_at = CAST(:now AS timestamp)
      WHERE id = :targetId AND status IS DISTINCT FROM 'duplicate'`,
    { targetId, reason, now: sqlTime(now) },
  );
}

/**
 * The group refused `accountId` (banned it, read-only, private): closed, and no account ever tries
 * it again (that would get around the group's decision). `countsForRestriction`: a refusal an
 * account-wide restriction gives too. A restricted account is refused by every group and sends
 * nothing: when it got `refusals` of those from different groups within `windowMs` and no post of
 * it went out since the first of them, it is the account that is restricted, not the groups:
 * they are reopened for it (a bound group is 'joined' again, an unbound one stays claimed by it)
 * and the account is paused as for PEER_FLOOD. A reopened group that refuses the account again
 * after one of its posts went out meanwhile (the restriction is over): final; so is one reopened
 * MAX_REOPENS times (a week of daily pauses): an account whose every group banned it for real
 * looks the same as a restricted one, and this bounds what that costs the groups.
 * Returns how many refusals made it a restriction (null: it was not one).
 */
export async function refuseTarget(
  db: Runner,
  input: { targetId: number; accountId: number; reason: string; countsForRestriction: boolean; now: Date; policy: AnswerPolicy },
): Promise<{ restricted: number | null }> {
  const params = { targetId: input.targetId, accountId: input.accountId, reason: input.reason, now: sqlTime(input.now) };
  const { rows: closed } = await sql<{ counts: boolean }>(
    db,
    `UPDATE targets SET status = 'banned', status_reason = :reason, join_retry_at = NULL, closed_at = CAST(:now AS timestamp),
            -- Reopened before: its next refusal is final, unless the account has sent nothing since
            -- (then it is the same restriction going on), for at most a week of reopenings.
            refused_account_id = CASE WHEN :counts AND reopen_count < ${MAX_REOPENS} AND (reopened_at IS NULL OR NOT EXISTS (
                                        SELECT 1 FROM post_history h
                                         WHERE h.account_id = :accountId AND h.status = 'success' AND h.created_at > targets.reopened_at))
                                      THEN CAST(:accountId AS integer) END,
            updated_at = CAST(:now AS timestamp)
      WHERE id = :targetId AND status IS DISTINCT FROM 'duplicate'
      RETURNING refused_account_id IS NOT NULL AS counts`,
    { ...params, counts: input.countsForRestriction },
  );
  if (!closed[0]?.counts) return { restricted: null };
  const window = { accountId: input.accountId, now: sqlTime(input.now), windowMs: Math.round(input.policy.restriction.windowMs) };
  // Refusals of the window since the account's last post that went out.
  const sinceSql = `GREATEST(CAST(:now AS timestamp) - ${msSql('windowMs')},
                             (SELECT max(h.created_at) FROM post_history h WHERE h.account_id = :accountId AND h.status = 'success'))`;
  const { rows } = await sql<{ n: number }>(
    db,
    `SELECT count(*)::int AS n FROM targets
      WHERE refused_account_id = :accountId AND status = 'banned' AND closed_at > ${sinceSql}`,
    window,
  );
  const refusals = rows[0]?.n ?? 0;
  if (refusals < input.policy.restriction.refusals) return { restricted: null };
  // Reopened, but held until an hour after the account's pause: back, it tries its other groups
  // first, so that what they answer tells a restriction still going on (they refuse it too) from
  // bans of these groups (the others take its posts, these refuse again: final).
  await sql(
    db,
    `UPDATE targets
        SET status = CASE WHEN assigned_account_id IS NOT NULL THEN 'joined' ELSE 'new' END,
            status_reason = 'reopened: its refusal was the account''s restriction, not the group''s decision',
            closed_at = NULL, refused_account_id = NULL, reopened_at = CAST(:now AS timestamp), reopen_count = reopen_count + 1,
            next_post_allowed_at = GREATEST(next_post_allowed_at, CAST(:now AS timestamp) + ${msSql('holdMs')}),
            join_retry_at = CASE WHEN assigned_account_id IS NULL THEN CAST(:now AS timestamp) + ${msSql('holdMs')} ELSE join_retry_at END,
            updated_at = CAST(:now AS timestamp)
      WHERE refused_account_id = :accountId AND status = 'banned' AND closed_at > ${sinceSql}`,
    { ...window, holdMs: Math.round(input.policy.peerFloodPauseMs + 60 * 60_000) },
  );
  return { restricted: refusals };
}

/** The group takes no post before `until` (its slow mode, a failure, our message refused); a later hold is kept. */
export async function holdGroup(db: Runner, targetId: number, until: Date, now: Date): Promise<void> {
  await sql(
    db,
    `UPDATE targets SET next_post_allowed_at = GREATEST(next_post_allowed_at, CAST(:until AS timestamp)), updated_at = CAST(:now AS timestamp)
      WHERE id = :targetId`,
    { targetId, until: sqlTime(until), now: sqlTime(now) },
  );
}

/** The stored peer no longer leads to the chat: forgotten (the link is looked up next time), and said why. */
export async function forgetPeer(db: Runner, targetId: number, reason: string, now: Date): Promise<void> {
  await sql(db, `UPDATE targets SET peer_access_hash = NULL, status_reason = :reason, updated_at = CAST(:now AS timestamp) WHERE id = :targetId`, {
    targetId,
    reason,
    now: sqlTime(now),
  });
}

/**
 * What Telegram told of the chat row `targetId` leads to. A group is a chat, not a link: when
 * another row already stands for that chat (telegram_id), one of the two is closed as the
 * other's duplicate, so that one chat never has two rows, two accounts or twice the posts. The
 * row that keeps the chat is the one an account of ours holds (rules.ts targetHeldSql: bound,
 * joined or posted to before, claimed by another account, refused us); otherwise this one, and
 * the other is closed. A row closed already stays so. A unique index on telegram_id (rows not
 * 'duplicate') backs this up.
 */
export async function learnChat(db: Runner, input: { targetId: number; accountId: number; chat: ChatIdentity; now: Date }): Promise<{ duplicateOf: string | null; absorbed: string | null }> {
  const params = { targetId: input.targetId, accountId: input.accountId, telegramId: input.chat.telegramId, now: sqlTime(input.now) };
  const { rows } = await sql<{ id: number; link: string; status: string | null; held: boolean }>(
    db,
    `SELECT t.id, t.link, t.status, ${targetHeldSql('t', 'CAST(:accountId AS integer)')} AS held
       FROM targets t
      WHERE t.id = :targetId OR (t.telegram_id = CAST(:telegramId AS bigint) AND t.status IS DISTINCT FROM 'duplicate')
      ORDER BY t.id
      FOR UPDATE OF t`,
    params,
  );
  const me = rows.find((r) => r.id === input.targetId);
  const other = rows.find((r) => r.id !== input.targetId);
  if (!me) return { duplicateOf: null, absorbed: null };
  if (me.status === 'duplicate') return { duplicateOf: other?.link ?? 'another row', absorbed: null };
  const closeAsDuplicate = async (id: number, of: { id: number; link: string }) =>
    sql(
      db,
      `UPDATE targets SET status = 'duplicate', status_reason = :reason, join_retry_at = NULL, closed_at = CAST(:now AS timestamp),
              updated_at = CAST(:now AS timestamp)
        WHERE id = :id`,
      { id, reason: `the same chat as ${of.link} (target #${of.id})`, now: params.now },
    );
  if (other?.held) {
    await closeAsDuplicate(me.id, other);
    return { duplicateOf: other.link, absorbed: null };
  }
  if (other) await closeAsDuplicate(other.id, me);
  await sql(
    db,
    `UPDATE targets SET telegram_id = CAST(:telegramId AS bigint), peer_access_hash = COALESCE(:accessHash, peer_access_hash),
            title = COALESCE(:title, title), updated_at = CAST(:now AS timestamp)
      WHERE id = :targetId`,
    { ...params, accessHash: input.chat.accessHash, title: input.chat.title },
  );
  return { duplicateOf: null, absorbed: other?.link ?? null };
}

const slotResult = (effect: Consequence['slot'], error: string | null): SettleOutcome | null => {
  switch (effect.kind) {
    case 'sent':
      return { outcome: 'sent' };
    case 'unknown':
      return { outcome: 'unknown', errorMessage: error };
    case 'not_sent':
      return { outcome: 'not_sent', status: effect.status, errorMessage: error };
    default:
      return null;
  }
};

/**
 * Applies one answer's consequence, in one transaction (see the top of this file). A slot that
 * another process settled meanwhile (marked 'unknown' when it took the account over) is left
 * as it is.
 */
export async function recordAnswer(ds: DataSource, record: AnswerRecord): Promise<AnswerResult> {
  const { consequence: c, at, accountId, targetId, policy } = record;
  const result: AnswerResult = { holdUntil: null, restricted: null, bound: null, duplicateOf: null, absorbed: null };
  await ds.transaction(async (manager) => {
    const q: QueryRunner = manager.queryRunner!;
    const reason = record.error ?? record.outcome;
    // The account first (the order every writer locks in), and the answer's id: recorded already
    // (a commit whose acknowledgement was lost), it is not applied again.
    const { rows: fresh } = await sql<{ answer_id: string; hold_until: Date | null }>(
      q,
      `WITH account AS (SELECT id, next_allowed_action_time FROM accounts WHERE id = :accountId FOR UPDATE)
       INSERT INTO answer_records (answer_id, account_id, recorded_at)
       SELECT :answerId, id, CAST(:at AS timestamp) FROM account
       ON CONFLICT (answer_id) DO NOTHING
       RETURNING answer_id, (SELECT next_allowed_action_time FROM account) AS hold_until`,
      { accountId, answerId: record.answerId, at: sqlTime(at) },
    );
    if (fresh.length === 0) {
      const { rows } = await sql<{ hold_until: Date | null }>(q, `SELECT next_allowed_action_time AS hold_until FROM accounts WHERE id = :accountId`, { accountId });
      result.holdUntil = rows[0]?.hold_until && rows[0].hold_until > at ? rows[0].hold_until : null;
      return;
    }

    switch (c.account.kind) {
      case 'flood_wait':
        result.holdUntil = await holdAccount(q, { accountId, until: new Date(at.getTime() + c.account.seconds * 1000), now: at });
        break;
      case 'limited':
        result.holdUntil = await holdAccount(q, { accountId, until: new Date(at.getTime() + policy.peerFloodPauseMs), now: at, limited: true, reason: `limited by Telegram (${reason})` });
        break;
      case 'dead':
        await banAccount(q, accountId, `session dead: ${reason}`, at);
        break;
      default:
        break;
    }

    if (record.call === 'connect') {
      // lexus status: the last connect's answer, and when.
      await sql(q, `UPDATE accounts SET last_connect_at = CAST(:at AS timestamp), last_connect_outcome = :outcome WHERE id = :accountId`, {
        accountId, at: sqlTime(at), outcome: record.outcome,
      });
    }

    if (targetId !== undefined) {
      const group = c.group;
      const learn = async () => {
        if (!record.chat) return;
        const learnt = await learnChat(q, { targetId, accountId, chat: record.chat, now: at });
        result.duplicateOf = learnt.duplicateOf;
        result.absorbed = learnt.absorbed;
      };
      switch (group.kind) {
        case 'identify':
          await learn();
          break;
        case 'bind': {
          // The chat first: a row that turns out to be a second link of a chat another row
          // stands for is closed, never bound.
          await learn();
          if (result.duplicateOf === null) {
            const { rows } = await sql<{ link: string }>(q, `SELECT link FROM targets WHERE id = :targetId`, { targetId });
            result.bound = await new DbManager(ds, { clock: { now: () => at } }, q).assignGroup(rows[0]!.link, accountId, at);
          }
          break;
        }
        case 'requested':
          await markJoinRequested(q, targetId, accountId, new Date(at.getTime() + group.retryInMs), at);
          break;
        case 'dead_link':
          await closeDeadLink(q, targetId, reason, at);
          break;
        case 'refused': {
          const { restricted } = await refuseTarget(q, { targetId, accountId, reason: `${group.reason}: ${reason}`, countsForRestriction: group.countsForRestriction, now: at, policy });
          if (restricted !== null) {
            const minutes = Math.round(policy.restriction.windowMs / 60_000);
            const window = minutes % 60 === 0 && minutes >= 120 ? `${minutes / 60} h` : `${minutes} min`;
            result.restricted = { refusals: restricted };
            result.holdUntil = await holdAccount(q, {
              accountId, until: new Date(at.getTime() + policy.peerFloodPauseMs), now: at, limited: true,
              reason: `restricted by Telegram: ${restricted} groups refused it in a row within ${window} (${reason})`,
            });
          }
          break;
        }
        case 'hold':
          await holdGroup(q, targetId, new Date(at.getTime() + group.ms), at);
          break;
        case 'retry_join':
          await postponeJoin(q, targetId, new Date(at.getTime() + group.ms), group.uncertain, at);
          break;
        case 'release_claim':
          await releaseJoinClaim(q, targetId, accountId, at);
          break;
        case 'peer_invalid':
          await forgetPeer(q, targetId, `its stored peer stopped working (${reason}); the link is looked up again`, at);
          await holdGroup(q, targetId, new Date(at.getTime() + group.ms), at);
          break;
        default:
          break;
      }
      if (record.call === 'join' || (record.call === 'lookup' && c.next !== 'continue')) {
        await recordJoinAttempt(q, accountId, targetId, record.outcome, record.error, at);
      }
    }

    const settle = record.slotId === undefined ? null : slotResult(c.slot, record.error);
    if (settle && record.slotId !== undefined) {
      try {
        await settlePostSlot(q, record.slotId, settle, at, record.message);
      } catch (error) {
        if (!(error instanceof SlotAlreadySettledError)) throw error;
      }
    }
    if (record.callStartedAt) await endCall(q, accountId, record.callStartedAt);
  });
  return result;
}

/** Forgets answers recorded before `before` (the midnight job): a retry comes within seconds or minutes. */
export async function purgeAnswerRecords(db: Runner, before: Date): Promise<number> {
  const { rowCount } = await sql(db, `DELETE FROM answer_records WHERE recorded_at < CAST(:before AS timestamp)`, { before: sqlTime(before) });
  return rowCount;
}

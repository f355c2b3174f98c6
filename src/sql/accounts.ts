/**
 * Accounts: which ones a daemon drives, whether one may talk to Telegram now (rule 4), its call
 * and its lease (the process that drives it), its holds (a FloodWait, a pause, a dead session).
 * Each operation is one function with its SQL in full; "now" comes from the caller's clock.
 */
import type { DataSource } from 'typeorm';
import { NotFoundError } from '../db/errors';
import { sqlTime } from '../db/postgresTypes';
import { accountLockHeldSql } from './locks';
import {
  accountDrivableSql,
  accountMayActSql,
  claimStaysSql,
  floodWaitOverSql,
  floodWaitUntilSql,
  SEND_DEADLINE_MS,
  targetOpenUnboundSql,
} from './rules';
import { type Runner, sql } from './sql';

/** Ends account :accountId's FloodWait if its time has passed (status back to 'active'); RETURNING id. */
export const CLEAR_PASSED_FLOOD_WAIT_SQL = `
  UPDATE accounts
     SET status = 'active', next_allowed_action_time = NULL, updated_at = CAST(:now AS timestamp)
   WHERE id = :accountId
     AND status = 'flood_wait'
     AND ${floodWaitOverSql('accounts')}
   RETURNING id`;

export interface DrivableAccount {
  id: number;
  sessionName: string;
  sessionString: string;
  apiId: number | null;
  apiHash: string | null;
  proxy: string | null;
  boundGroups: number;
}

/**
 * Accounts a daemon may drive: not banned, with a session. Fewest joined groups first (joins go
 * to them); the count reads the index of each account's joined groups.
 */
export async function loadDrivableAccounts(db: Runner): Promise<DrivableAccount[]> {
  const { rows } = await sql<{
    id: number;
    session_name: string;
    session_string: string;
    api_id: number | null;
    api_hash: string | null;
    proxy: string | null;
    bound: number;
  }>(
    db,
    `SELECT a.id, a.session_name, a.session_string, a.api_id, a.api_hash, a.proxy,
            (SELECT count(*)::int FROM targets t WHERE t.assigned_account_id = a.id AND t.status = 'joined') AS bound
       FROM accounts a
      WHERE ${accountDrivableSql('a')}
      ORDER BY bound, a.id`,
  );
  return rows.map((r) => ({
    id: r.id,
    sessionName: r.session_name,
    sessionString: r.session_string,
    apiId: r.api_id,
    apiHash: r.api_hash,
    proxy: r.proxy,
    boundGroups: r.bound,
  }));
}

/**
 * Whether the account may talk to Telegram now (rule 4), as the database sees it; a FloodWait
 * whose time has passed is ended on the way (status back to 'active'), and said so.
 */
export async function accountMayAct(
  db: Runner,
  accountId: number,
  now: Date,
): Promise<{ mayAct: boolean; floodWaitEnded: boolean }> {
  const { rows } = await sql<{ ok: boolean; cleared: boolean }>(
    db,
    `WITH cleared AS (${CLEAR_PASSED_FLOOD_WAIT_SQL})
     SELECT ${accountMayActSql('a')} AS ok, EXISTS (SELECT 1 FROM cleared) AS cleared FROM accounts a WHERE a.id = :accountId`,
    { accountId, now: sqlTime(now) },
  );
  return { mayAct: rows[0]?.ok ?? false, floodWaitEnded: rows[0]?.cleared ?? false };
}

/** When the daemon plans the account's next post (lexus status shows it). */
export async function setPlannedPost(db: Runner, accountId: number, at: Date | null): Promise<void> {
  await sql(db, `UPDATE accounts SET next_post_planned_at = CAST(:at AS timestamp) WHERE id = :accountId`, {
    accountId,
    at: at ? sqlTime(at) : null,
  });
}

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
        AND ${accountMayActSql('a')}
        ${lockHolderPid === undefined ? '' : `AND ${accountLockHeldSql('a')}`}
      RETURNING a.id`,
    { accountId, now: sqlTime(now), ...(lockHolderPid === undefined ? {} : { lockHolderPid }) },
  );
  return rows.length === 1;
}

/** The call that started at `startedAt` is answered and recorded: its mark goes (a later call's stays). */
export async function endCall(db: Runner, accountId: number, startedAt: Date): Promise<void> {
  await sql(
    db,
    `UPDATE accounts SET call_started_at = NULL WHERE id = :accountId AND call_started_at <= CAST(:startedAt AS timestamp)`,
    {
      accountId,
      startedAt: sqlTime(startedAt),
    },
  );
}

/**
 * The lease: this process (`driver`) may have a live Telegram session of these accounts until
 * `until`. Written only for accounts whose advisory lock the connection `lockHolderPid` holds, in
 * the same statement; returns those. A process taking an account over reads it first (takeOverAccount).
 */
export async function renewLease(
  db: Runner,
  input: { accountIds: number[]; lockHolderPid: number; driver: string; until: Date },
): Promise<number[]> {
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
  await sql(
    db,
    `UPDATE accounts SET driven_by = NULL, driven_until = NULL, next_post_planned_at = NULL WHERE id = ANY(CAST(:ids AS int[])) AND driven_by = :driver`,
    {
      ids: accountIds,
      driver,
    },
  );
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
 * What a process taking an account over finds of the previous one, resolved in one transaction
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
    const { rows: accounts } = await sql<{
      call_started_at: Date | null;
      driven_by: string | null;
      driven_until: Date | null;
    }>(q, `SELECT call_started_at, driven_by, driven_until FROM accounts WHERE id = :accountId FOR UPDATE`, {
      accountId,
    });
    // A new account's ramp-up counts from the first time a daemon drives it.
    await sql(
      q,
      `UPDATE accounts SET first_driven_at = CAST(:now AS timestamp) WHERE id = :accountId AND first_driven_at IS NULL`,
      params,
    );
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
          WHERE t.join_claimed_by = :accountId AND ${targetOpenUnboundSql('t')}
          ORDER BY t.updated_at DESC, t.id DESC
          LIMIT 1`,
        { accountId, landedBy: sqlTime(new Date(unansweredCallAt.getTime() + SEND_DEADLINE_MS)) },
      );
      await sql(
        q,
        `UPDATE targets SET join_uncertain = true, updated_at = CAST(:now AS timestamp)
          WHERE join_claimed_by = :accountId AND ${targetOpenUnboundSql('targets')} AND NOT join_uncertain`,
        params,
      );
    }
    return {
      abandonedSlots: slots[0]?.n ?? 0,
      unansweredCallAt,
      previousDriver: accounts[0]?.driven_by ?? null,
      previousLeaseUntil: accounts[0]?.driven_until ?? null,
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
      WHERE join_claimed_by = :accountId AND ${targetOpenUnboundSql('targets')} AND NOT ${claimStaysSql('targets')}`,
    { accountId, reason, now: sqlTime(now) },
  );
}

/**
 * Rule 4: the account waits until `until` (status 'flood_wait'; a banned account stays banned);
 * a longer wait already set is never shortened. `limited`: Telegram limits the account (PEER_FLOOD,
 * a restriction): the pause is kept in limited_since / limited_until too, so that its budgets
 * grow back from its end, with `reason` for ops. Returns the wait now in force.
 */
export async function holdAccount(
  db: Runner,
  input: { accountId: number; until: Date; now: Date; limited?: boolean; reason?: string | null },
): Promise<Date> {
  const { rows } = await sql<{ next_allowed_action_time: Date }>(
    db,
    `UPDATE accounts
        SET status = CASE WHEN status = 'banned' THEN status ELSE 'flood_wait' END,
            next_allowed_action_time = GREATEST(next_allowed_action_time, CAST(:until AS timestamp)),
            status_reason = COALESCE(CAST(:reason AS text), status_reason),
            limited_since = CASE WHEN :limited THEN CAST(:now AS timestamp) ELSE limited_since END,
            limited_until = CASE WHEN :limited THEN GREATEST(limited_until, CAST(:until AS timestamp)) ELSE limited_until END,
            updated_at = CAST(:now AS timestamp)
      WHERE id = :accountId
      RETURNING next_allowed_action_time`,
    {
      accountId: input.accountId,
      until: sqlTime(input.until),
      now: sqlTime(input.now),
      limited: input.limited ?? false,
      reason: input.reason ?? null,
    },
  );
  const row = rows[0];
  if (!row) throw new NotFoundError(`account ${input.accountId} does not exist`);
  return row.next_allowed_action_time;
}

/**
 * Ends a FloodWait whose time has passed: status back to 'active'. A wait still running is not
 * cut short (false); so is an account with nothing to clear. True when it cleared a wait; throws
 * NotFoundError for an account that does not exist.
 */
export async function clearPassedFloodWait(db: Runner, accountId: number, now: Date): Promise<boolean> {
  const { rows } = await sql<{ cleared: boolean }>(
    db,
    `WITH cleared AS (${CLEAR_PASSED_FLOOD_WAIT_SQL})
     SELECT EXISTS (SELECT 1 FROM cleared) AS cleared FROM accounts WHERE id = :accountId`,
    { accountId, now: sqlTime(now) },
  );
  const row = rows[0];
  if (!row) throw new NotFoundError(`account ${accountId} does not exist`);
  return row.cleared;
}

export interface AccountRow {
  id: number;
  session_name: string;
  status: string | null;
  status_reason: string | null;
  session_string: string | null;
  api_id: number | null;
  api_hash: string | null;
  proxy: string | null;
  flood_wait_until: Date | null;
}

/** Every account, with what it needs to connect (read here, never printed). */
export async function loadAccountsToCheck(ds: DataSource, now: Date): Promise<AccountRow[]> {
  const { rows } = await sql<AccountRow>(
    ds,
    `SELECT id, session_name, COALESCE(status, 'active') AS status, status_reason, session_string, api_id, api_hash, proxy,
            ${floodWaitUntilSql('accounts')} AS flood_wait_until
       FROM accounts ORDER BY session_name`,
    { now: sqlTime(now) },
  );
  return rows;
}

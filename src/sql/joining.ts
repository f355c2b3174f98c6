/**
 * Joining: the join queue's claim, and what a join's answer leaves (history, a released claim, a
 * request to ask again, a retry). The policy itself ("who may join what next, and when") is
 * rules.ts's. Each operation is one function with its SQL in full; "now" from the caller.
 */

import { sqlTime } from '../db/postgresTypes';
import { accountLockHeldSql } from './locks';
import {
  accountJoinAllowedSql,
  accountMayActSql,
  claimStaysSql,
  DEFAULT_NICHE,
  inJoinQueueSql,
  joinBudgetSql,
  joinDueSql,
  NO_PACE,
  type Pace,
  paceParams,
  targetOpenUnboundSql,
} from './rules';
import { type Runner, sql } from './sql';

/**
 * Whether the account may try a join now: under its join budget (LEXUS_JOINS_PER_DAY, reduced
 * after Telegram limited it: rules.ts), not told "too many chats" in the last 24 h, and its last
 * join at least the spacing ago.
 */
export async function mayTryJoin(
  db: Runner,
  accountId: number,
  joinsPerDay: number,
  now: Date,
  pace: Pace = NO_PACE,
): Promise<boolean> {
  const { rows } = await sql<{ ok: boolean }>(
    db,
    `SELECT ${accountJoinAllowedSql('a', 'b')} AS ok
       FROM accounts a CROSS JOIN LATERAL ${joinBudgetSql('a')} b
      WHERE a.id = :accountId`,
    { accountId, joinsPerDay, now: sqlTime(now), ...paceParams(pace) },
  );
  return rows[0]?.ok ?? false;
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
export async function claimJoinTarget(
  db: Runner,
  accountId: number,
  niches: string[],
  now: Date,
  lockHolderPid?: number,
): Promise<JoinClaim | null> {
  // Rule 4 and the account's lock are checked in the statement itself, as for posts. The
  // account's own claims come first (COALESCE asks for a new group only when there is none);
  // each half walks its index in id order and stops at the first group not locked.
  const claimable = `${inJoinQueueSql('q')} AND ${joinDueSql('q')}`;
  const { rows } = await sql<{ id: number; link: string }>(
    db,
    `UPDATE targets SET join_claimed_by = :accountId, updated_at = CAST(:now AS timestamp)
      WHERE EXISTS (SELECT 1 FROM accounts a WHERE a.id = :accountId AND ${accountMayActSql('a')}
                      ${lockHolderPid === undefined ? '' : `AND ${accountLockHeldSql('a')}`})
        AND id = COALESCE(
          (SELECT q.id FROM targets q WHERE ${claimable} AND q.join_claimed_by = :accountId ORDER BY q.id LIMIT 1 FOR UPDATE SKIP LOCKED),
          (SELECT q.id FROM targets q WHERE ${claimable} AND q.join_claimed_by IS NULL ORDER BY q.id LIMIT 1 FOR UPDATE SKIP LOCKED))
      RETURNING id, link`,
    {
      accountId,
      niches: niches.length ? niches : [DEFAULT_NICHE],
      now: sqlTime(now),
      ...(lockHolderPid === undefined ? {} : { lockHolderPid }),
    },
  );
  const row = rows[0];
  return row ? { targetId: row.id, link: row.link } : null;
}

export async function recordJoinAttempt(
  db: Runner,
  accountId: number,
  targetId: number,
  outcome: string,
  errorMessage: string | null,
  now: Date,
): Promise<void> {
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
export async function markJoinRequested(
  db: Runner,
  targetId: number,
  accountId: number,
  retryAt: Date,
  now: Date,
): Promise<void> {
  await sql(
    db,
    `UPDATE targets SET status = 'requested', status_reason = 'join request sent; an admin must approve it',
            join_claimed_by = :accountId, join_retry_at = CAST(:retryAt AS timestamp), updated_at = CAST(:now AS timestamp)
      WHERE id = :targetId AND ${targetOpenUnboundSql('targets')}`,
    { targetId, accountId, retryAt: sqlTime(retryAt), now: sqlTime(now) },
  );
}

/**
 * The same account joins again after `retryAt` (a failure): the claim stays with it. `uncertain`:
 * the join may have happened, so the claim never goes to another account from now on.
 */
export async function postponeJoin(
  db: Runner,
  targetId: number,
  retryAt: Date,
  uncertain: boolean,
  now: Date,
): Promise<void> {
  await sql(
    db,
    `UPDATE targets SET join_retry_at = CAST(:retryAt AS timestamp), join_uncertain = join_uncertain OR :uncertain,
            updated_at = CAST(:now AS timestamp)
      WHERE id = :targetId`,
    { targetId, retryAt: sqlTime(retryAt), uncertain, now: sqlTime(now) },
  );
}

/**
 * The two writes the seed's API and the daemon's answers share: settling a post slot and holding
 * an account (rule 4). Each one statement, its SQL in full, "now" from the caller.
 */
import { NotFoundError, SlotAlreadySettledError } from './errors';
import { sqlTime } from './postgresTypes';
import { sql, type Runner } from './sql';
import type { PostStatus } from './entities';

export type SettleOutcome =
  /** Telegram accepted the message. */
  | { outcome: 'sent' }
  /** Definitely not sent: the slot is given back. */
  | { outcome: 'not_sent'; status: Extract<PostStatus, 'error' | 'flood_wait' | 'skipped'>; errorMessage?: string | null }
  /** May or may not have been sent (timeout after sending, crash): the slot stays spent. */
  | { outcome: 'unknown'; errorMessage?: string | null };

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
    { accountId: input.accountId, until: sqlTime(input.until), now: sqlTime(input.now), limited: input.limited ?? false, reason: input.reason ?? null },
  );
  const row = rows[0];
  if (!row) throw new NotFoundError(`account ${input.accountId} does not exist`);
  return row.next_allowed_action_time;
}

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


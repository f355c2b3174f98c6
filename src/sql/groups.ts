/**
 * Groups (targets): what Telegram's answers do to a group (closed, refused, held, its chat
 * learnt), and the old system's links normalized in place. Each operation is one function with
 * its SQL in full; "now" from the caller.
 */
import type { QueryRunner } from 'typeorm';
import type { GroupHoldKind } from '../db/entities';
import { sqlTime } from '../db/postgresTypes';
import { InvalidLinkError, normalizeGroupLink } from '../links';
import type { ChatIdentity } from '../telegram/outcomes';
import type { AnswerPolicy } from './answers';
import { targetFreeToBindSql, targetHeldSql, warmupEndSql } from './rules';
import { type Runner, sql } from './sql';

/** A group refusing one account is reopened as the account's restriction at most this often. */
export const MAX_REOPENS = 7;

const msSql = (name: string) => `CAST(:${name} AS bigint) * interval '1 millisecond'`;

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
  input: {
    targetId: number;
    accountId: number;
    reason: string;
    countsForRestriction: boolean;
    now: Date;
    policy: AnswerPolicy;
  },
): Promise<{ restricted: number | null }> {
  const params = {
    targetId: input.targetId,
    accountId: input.accountId,
    reason: input.reason,
    now: sqlTime(input.now),
  };
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
  const window = {
    accountId: input.accountId,
    now: sqlTime(input.now),
    windowMs: Math.round(input.policy.restriction.windowMs),
  };
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
            post_hold_kind = CASE WHEN next_post_allowed_at > CAST(:now AS timestamp) + ${msSql('holdMs')} THEN post_hold_kind ELSE 'restriction' END,
            next_post_allowed_at = GREATEST(next_post_allowed_at, CAST(:now AS timestamp) + ${msSql('holdMs')}),
            join_retry_at = CASE WHEN assigned_account_id IS NULL THEN CAST(:now AS timestamp) + ${msSql('holdMs')} ELSE join_retry_at END,
            updated_at = CAST(:now AS timestamp)
      WHERE refused_account_id = :accountId AND status = 'banned' AND closed_at > ${sinceSql}`,
    { ...window, holdMs: Math.round(input.policy.peerFloodPauseMs + 60 * 60_000) },
  );
  return { restricted: refusals };
}

/**
 * The group takes no post before `until`, held for `kind` (its slow mode, its posts failing, our
 * message refused); a later hold is kept, and with it its kind.
 */
export async function holdGroup(
  db: Runner,
  input: { targetId: number; until: Date; kind: GroupHoldKind; now: Date },
): Promise<void> {
  await sql(
    db,
    `UPDATE targets SET next_post_allowed_at = GREATEST(next_post_allowed_at, CAST(:until AS timestamp)),
            post_hold_kind = CASE WHEN next_post_allowed_at > CAST(:until AS timestamp) THEN post_hold_kind ELSE :kind END,
            updated_at = CAST(:now AS timestamp)
      WHERE id = :targetId`,
    { targetId: input.targetId, until: sqlTime(input.until), kind: input.kind, now: sqlTime(input.now) },
  );
}

/** The stored peer no longer leads to the chat: forgotten (the link is looked up next time), and said why. */
export async function forgetPeer(db: Runner, targetId: number, reason: string, now: Date): Promise<void> {
  await sql(
    db,
    `UPDATE targets SET peer_access_hash = NULL, status_reason = :reason, updated_at = CAST(:now AS timestamp) WHERE id = :targetId`,
    {
      targetId,
      reason,
      now: sqlTime(now),
    },
  );
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
export async function learnChat(
  db: Runner,
  input: { targetId: number; accountId: number; chat: ChatIdentity; now: Date },
): Promise<{ duplicateOf: string | null; absorbed: string | null }> {
  const params = {
    targetId: input.targetId,
    accountId: input.accountId,
    telegramId: input.chat.telegramId,
    now: sqlTime(input.now),
  };
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

/**
 * Rule 5 for rows already in the database: the old system stored links as it found them
 * ("t.me/kyiv_cars", "@AutoBazar_UA"), while the daemon looks groups up by their normalized link.
 * Left alone, such a row and a new "@kyiv_cars" row would be one group with two rows, and so
 * possibly two accounts. Each such row gets its normalized link, unless a row with that link
 * exists already: that collision is returned, to be resolved by a person.
 */
export interface StoredLinksResult {
  normalized: { id: number; from: string; to: string }[];
  collisions: { id: number; link: string; normalized: string; otherId: number }[];
  invalid: { id: number; link: string; reason: string }[];
}

export async function normalizeStoredLinks(runner: QueryRunner, now: Date): Promise<StoredLinksResult> {
  const result: StoredLinksResult = { normalized: [], collisions: [], invalid: [] };
  // Rows already in a normalized form are skipped by the pattern (cheap on a big table).
  const { rows } = await sql<{ id: number; link: string }>(
    runner,
    `SELECT id, link FROM targets
      WHERE link !~ '^@[a-z][a-z0-9_]{3,31}$' AND link NOT LIKE 'https://t.me/+%'
      ORDER BY id FOR UPDATE`,
  );
  for (const row of rows) {
    let normalized: string;
    try {
      normalized = normalizeGroupLink(row.link);
    } catch (error) {
      if (!(error instanceof InvalidLinkError)) throw error;
      result.invalid.push({ id: row.id, link: row.link, reason: error.message });
      continue;
    }
    if (normalized === row.link) continue;
    const { rows: other } = await sql<{ id: number }>(runner, `SELECT id FROM targets WHERE link = :normalized`, {
      normalized,
    });
    if (other[0]) {
      result.collisions.push({ id: row.id, link: row.link, normalized, otherId: other[0].id });
      continue;
    }
    await sql(runner, `UPDATE targets SET link = :normalized, updated_at = CAST(:now AS timestamp) WHERE id = :id`, {
      id: row.id,
      normalized,
      now: sqlTime(now),
    });
    result.normalized.push({ id: row.id, from: row.link, to: normalized });
  }
  return result;
}

/** One group stored under two links: a person must merge the rows before anything binds it. */
export class StoredLinkCollisionError extends Error {
  constructor(readonly collisions: StoredLinksResult['collisions']) {
    super(
      `the database holds one group under two links: ${collisions.map(describeCollision).join('; ')}. ` +
        'Merge each pair by hand (keep the row bound to an account, move or delete the other), then start again.',
    );
    this.name = 'StoredLinkCollisionError';
  }
}

export function describeCollision(c: StoredLinksResult['collisions'][number]): string {
  return `targets rows "${c.link}" (id ${c.id}) and "${c.normalized}" (id ${c.otherId}) are one group`;
}

/**
 * Binds a group to the account that has just joined it (rule 1) and starts its warm-up
 * (rule 2): status 'joined', warmup_ends_at = joined_at + 24 h. Creates the target if missing.
 *
 * Returns false when the group is bound to another account, banned, or was ever joined or
 * posted to by another account (its account was deleted, or the old system's history says
 * so); true when it is now bound to this account. Binding it again to the same account
 * changes nothing: the warm-up never restarts. One statement, so of two concurrent calls for
 * one new group from different accounts exactly one wins.
 */
export async function bindGroup(
  db: Runner,
  input: { link: string; niche: string; accountId: number; joinedAt: Date; now: Date },
): Promise<boolean> {
  const { rows } = await sql<{ id: number }>(
    db,
    `INSERT INTO targets AS t
            (link, niche, status, assigned_account_id, joined_at, warmup_ends_at, created_at, updated_at)
     VALUES (:link, :niche, 'joined', :accountId, CAST(:joinedAt AS timestamp),
             ${warmupEndSql('CAST(:joinedAt AS timestamp)')}, CAST(:now AS timestamp), CAST(:now AS timestamp))
     ON CONFLICT (link) DO UPDATE SET
       status = 'joined',
       status_reason = NULL,
       join_claimed_by = NULL,
       join_retry_at = NULL,
       join_uncertain = false,
       assigned_account_id = EXCLUDED.assigned_account_id,
       -- Newly bound: the warm-up starts now. Already bound to this account: it never restarts.
       joined_at = CASE WHEN t.assigned_account_id IS NULL THEN EXCLUDED.joined_at
                        ELSE COALESCE(t.joined_at, EXCLUDED.joined_at) END,
       warmup_ends_at = CASE WHEN t.assigned_account_id IS NULL THEN EXCLUDED.warmup_ends_at
                             ELSE COALESCE(t.warmup_ends_at, ${warmupEndSql('t.joined_at')}, EXCLUDED.warmup_ends_at) END,
       updated_at = EXCLUDED.updated_at
     -- Bound to this account already, or held by no other account of ours (no join, no post, no claim).
     WHERE ${targetFreeToBindSql('t', 'EXCLUDED.assigned_account_id')}
     RETURNING t.id`,
    {
      link: input.link,
      niche: input.niche,
      accountId: input.accountId,
      joinedAt: sqlTime(input.joinedAt),
      now: sqlTime(input.now),
    },
  );
  return rows.length === 1;
}

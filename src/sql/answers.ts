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
import { SlotAlreadySettledError } from '../db/errors';
import { sqlTime } from '../db/postgresTypes';
import { normalizeGroupLink } from '../links';
import type { ChatIdentity } from '../telegram/outcomes';
import { banAccount, endCall, holdAccount } from './accounts';
import { bindGroup, closeDeadLink, forgetPeer, holdGroup, learnChat, refuseTarget } from './groups';
import { markJoinRequested, postponeJoin, recordJoinAttempt, releaseJoinClaim } from './joining';
import { type SettleOutcome, settlePostSlot } from './posting';
import { DEFAULT_NICHE } from './rules';
import { type Runner, sql } from './sql';

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
      const { rows } = await sql<{ hold_until: Date | null }>(
        q,
        `SELECT next_allowed_action_time AS hold_until FROM accounts WHERE id = :accountId`,
        { accountId },
      );
      result.holdUntil = rows[0]?.hold_until && rows[0].hold_until > at ? rows[0].hold_until : null;
      return;
    }

    switch (c.account.kind) {
      case 'flood_wait':
        result.holdUntil = await holdAccount(q, {
          accountId,
          until: new Date(at.getTime() + c.account.seconds * 1000),
          now: at,
        });
        break;
      case 'limited':
        result.holdUntil = await holdAccount(q, {
          accountId,
          until: new Date(at.getTime() + policy.peerFloodPauseMs),
          now: at,
          limited: true,
          reason: `limited by Telegram (${reason})`,
        });
        break;
      case 'dead':
        await banAccount(q, accountId, `session dead: ${reason}`, at);
        break;
      default:
        break;
    }

    if (record.call === 'connect') {
      // lexus status: the last connect's answer, and when.
      await sql(
        q,
        `UPDATE accounts SET last_connect_at = CAST(:at AS timestamp), last_connect_outcome = :outcome WHERE id = :accountId`,
        {
          accountId,
          at: sqlTime(at),
          outcome: record.outcome,
        },
      );
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
            const { rows } = await sql<{ link: string }>(q, `SELECT link FROM targets WHERE id = :targetId`, {
              targetId,
            });
            result.bound = await bindGroup(q, {
              link: normalizeGroupLink(rows[0]!.link),
              niche: DEFAULT_NICHE,
              accountId,
              joinedAt: at,
              now: at,
            });
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
          const { restricted } = await refuseTarget(q, {
            targetId,
            accountId,
            reason: `${group.reason}: ${reason}`,
            countsForRestriction: group.countsForRestriction,
            now: at,
            policy,
          });
          if (restricted !== null) {
            const minutes = Math.round(policy.restriction.windowMs / 60_000);
            const window = minutes % 60 === 0 && minutes >= 120 ? `${minutes / 60} h` : `${minutes} min`;
            result.restricted = { refusals: restricted };
            result.holdUntil = await holdAccount(q, {
              accountId,
              until: new Date(at.getTime() + policy.peerFloodPauseMs),
              now: at,
              limited: true,
              reason: `restricted by Telegram: ${restricted} groups refused it in a row within ${window} (${reason})`,
            });
          }
          break;
        }
        case 'hold':
          await holdGroup(q, { targetId, until: new Date(at.getTime() + group.ms), kind: group.why, now: at });
          break;
        case 'retry_join':
          await postponeJoin(q, targetId, new Date(at.getTime() + group.ms), group.uncertain, at);
          break;
        case 'release_claim':
          await releaseJoinClaim(q, targetId, accountId, at);
          break;
        case 'peer_invalid':
          await forgetPeer(q, targetId, `its stored peer stopped working (${reason}); the link is looked up again`, at);
          await holdGroup(q, { targetId, until: new Date(at.getTime() + group.ms), kind: 'failing', now: at });
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
  const { rowCount } = await sql(db, `DELETE FROM answer_records WHERE recorded_at < CAST(:before AS timestamp)`, {
    before: sqlTime(before),
  });
  return rowCount;
}

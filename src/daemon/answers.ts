/**
 * What each of Telegram's answers means: the one table from an outcome (outcomes.ts) of a
 * connect, a lookup, a join or a post to its consequences for the account, the group and the
 * post slot, and to what the account does next. The daemon reads nothing else to decide; it
 * applies a consequence in one place (daemon.ts `answer`), under one persistence policy
 * (recorder.ts), and the database applies it in one transaction (src/sql/answers.ts recordAnswer).
 *
 * Pure: no clock, no database. Holds are durations from the instant of the answer.
 */
import { HOUR_MS, MINUTE_MS, SECOND_MS } from '../clock';
import { TOO_MANY_CHATS_PAUSE_HOURS } from '../sql/rules';
import type { ConnectOutcome, GroupRefusal, JoinOutcome, LookupOutcome, PostOutcome } from '../telegram/outcomes';

export type Call = 'connect' | 'lookup' | 'join' | 'post';
export type AnyOutcome = ConnectOutcome | LookupOutcome | JoinOutcome | PostOutcome;

/** A post that failed for no fault of the group: the group waits this long, so the account goes on with others. */
export const GROUP_RETRY_MS = 30 * MINUTE_MS;
/** A group that refused our message as it is (media, length): left alone this long. */
export const GROUP_REFUSED_MS = 6 * HOUR_MS;
/** A join that failed (network, Telegram's error): the same account asks again after this long. */
export const JOIN_RETRY_MS = 10 * MINUTE_MS;
/** A join request is asked again (by the same account) after this long. */
export const JOIN_REQUEST_RETRY_MS = 12 * HOUR_MS;
/** Our side cannot act for this account (credentials, proxy): look again after this long. */
export const MISCONFIGURED_RETRY_MS = HOUR_MS;

export type AccountEffect =
  | { kind: 'none' }
  /** Rule 4: no call at all before the wait is over. */
  | { kind: 'flood_wait'; seconds: number }
  /** PEER_FLOOD: paused for LEXUS_PEER_FLOOD_PAUSE_HOURS, then back at a reduced budget. */
  | { kind: 'limited' }
  /** The session is dead: the account stops until `lexus login`. */
  | { kind: 'dead' }
  /** CHANNELS_TOO_MUCH: joins nothing for TOO_MANY_CHATS_PAUSE_HOURS (src/sql/rules.ts, counted from join_history). */
  | { kind: 'too_many_channels' };

export type GroupEffect =
  | { kind: 'none' }
  /** The account is in the chat: the group is bound to it (rule 1), its warm-up starts (rule 2). */
  | { kind: 'bind' }
  /** What Telegram told of the chat: its id and the account's access hash (the stored peer). */
  | { kind: 'identify' }
  | { kind: 'requested'; retryInMs: number }
  /** Closed for good: the link leads nowhere. */
  | { kind: 'dead_link' }
  /**
   * The group refused this account: closed for good, unless it is the account's restriction
   * (`countsForRestriction`: the same refusal from several groups within a window).
   */
  | { kind: 'refused'; reason: GroupRefusal; countsForRestriction: boolean }
  /** The group takes no post before this long (its slow mode, a failure, our message refused). */
  | { kind: 'hold'; ms: number; why: 'slow_mode' | 'failing' | 'refuses_message' }
  /** The same account joins again later; `uncertain`: it may be a member already, the claim never moves. */
  | { kind: 'retry_join'; ms: number; uncertain: boolean }
  /** This account will certainly not join it now: another may (an uncertain claim stays, by the database). */
  | { kind: 'release_claim' }
  /** Its stored peer no longer leads to it: forgotten, the link is looked up next time; held a while. */
  | { kind: 'peer_invalid'; ms: number };

export type SlotEffect =
  | { kind: 'none' }
  | { kind: 'sent' }
  /** Certainly not sent: the slot is given back. */
  | { kind: 'not_sent'; status: 'error' | 'flood_wait' | 'skipped' }
  /** May have been sent: counted, never sent again. */
  | { kind: 'unknown' };

/**
 * What the account does next: its ordinary pause, a growing backoff, nothing before the hold of
 * its account effect, look again in an hour (our side is misconfigured), or stop for good.
 */
export type Next = 'pace' | 'backoff' | 'hold' | 'later' | 'stop' | 'continue';

export interface Consequence {
  account: AccountEffect;
  group: GroupEffect;
  slot: SlotEffect;
  next: Next;
  /** The daemon's log line for it. */
  log: { level: 'info' | 'warn' | 'error'; event: string; message: string };
}

/** What the log lines name besides the outcome. */
export interface AnswerContext {
  link?: string;
  peerFloodPauseHours?: number;
}

const none = { kind: 'none' } as const;

/** Refusals an account-wide restriction answers with, to every group (issue 12, part 6). */
function countsForRestriction(reason: GroupRefusal, error: string): boolean {
  return reason === 'banned' || error === 'CHAT_WRITE_FORBIDDEN' || error === 'CHAT_RESTRICTED';
}

function accountAnswer(outcome: AnyOutcome, ctx: AnswerContext): Omit<Consequence, 'group' | 'slot'> | undefined {
  switch (outcome.kind) {
    case 'account_flood_wait':
      return {
        account: { kind: 'flood_wait', seconds: outcome.seconds },
        next: 'hold',
        log: { level: 'warn', event: 'account.flood_wait', message: `FloodWait: ${outcome.seconds} s` },
      };
    case 'account_limited':
      return {
        account: { kind: 'limited' },
        next: 'hold',
        log: {
          level: 'warn',
          event: 'account.limited',
          message: `Telegram limits this account (${outcome.error}); paused for ${ctx.peerFloodPauseHours ?? 24} h`,
        },
      };
    case 'session_dead':
      return {
        account: { kind: 'dead' },
        next: 'stop',
        log: { level: 'error', event: 'account.session_dead', message: `the session is dead (${outcome.error})` },
      };
    default:
      return undefined;
  }
}

/** The consequence of `outcome`, Telegram's answer to `call`. */
export function consequenceOf(call: Call, outcome: AnyOutcome, ctx: AnswerContext = {}): Consequence {
  const link = ctx.link ?? 'the group';
  const error = 'error' in outcome ? outcome.error : '';
  const onAccount = accountAnswer(outcome, ctx);
  if (call === 'connect') {
    if (onAccount) return { ...onAccount, group: none, slot: none };
    if (outcome.kind === 'connected')
      return {
        account: none,
        group: none,
        slot: none,
        next: 'continue',
        log: { level: 'info', event: 'account.connected', message: 'connected to Telegram' },
      };
    if (outcome.kind === 'misconfigured')
      return {
        account: none,
        group: none,
        slot: none,
        next: 'later',
        log: { level: 'error', event: 'account.misconfigured', message: `cannot connect: ${error}` },
      };
    return {
      account: none,
      group: none,
      slot: none,
      next: 'backoff',
      log: { level: 'warn', event: 'account.connect_failed', message: 'could not connect; will retry' },
    };
  }

  if (call === 'post') {
    const notSent = (status: 'error' | 'flood_wait' | 'skipped' = 'error') => ({ kind: 'not_sent', status }) as const;
    if (onAccount)
      return {
        ...onAccount,
        group: none,
        slot: notSent(outcome.kind === 'account_flood_wait' ? 'flood_wait' : 'error'),
      };
    switch (outcome.kind) {
      case 'sent':
        return {
          account: none,
          group: outcome.chat ? { kind: 'identify' } : none,
          slot: { kind: 'sent' },
          next: 'pace',
          log: { level: 'info', event: 'post.sent', message: `posted to ${link}` },
        };
      case 'group_slow_mode':
        return {
          account: none,
          group: { kind: 'hold', ms: outcome.seconds * SECOND_MS, why: 'slow_mode' },
          slot: notSent('skipped'),
          next: 'pace',
          log: {
            level: 'info',
            event: 'group.slow_mode',
            message: `slow mode in ${link}: it waits ${outcome.seconds} s`,
          },
        };
      case 'group_refuses':
        return {
          account: none,
          group: {
            kind: 'refused',
            reason: outcome.reason,
            countsForRestriction: countsForRestriction(outcome.reason, error),
          },
          slot: notSent(),
          next: 'pace',
          log: { level: 'warn', event: 'group.banned', message: `${link} refuses us (${outcome.reason}): closed` },
        };
      case 'link_dead':
        return {
          account: none,
          group: { kind: 'dead_link' },
          slot: notSent(),
          next: 'pace',
          log: { level: 'warn', event: 'group.dead_link', message: `${link} leads nowhere; never tried again` },
        };
      case 'peer_invalid':
        return {
          account: none,
          group: { kind: 'peer_invalid', ms: GROUP_RETRY_MS },
          slot: notSent(),
          next: 'pace',
          log: {
            level: 'warn',
            event: 'group.peer_invalid',
            message: `the stored peer of ${link} no longer leads to it (${error}); its link is looked up next time`,
          },
        };
      case 'transient':
        return outcome.uncertain
          ? {
              account: none,
              group: none,
              slot: { kind: 'unknown' },
              next: 'backoff',
              log: {
                level: 'warn',
                event: 'post.unknown',
                message: 'the post may or may not have gone out; it counts as made and is not sent again',
              },
            }
          : {
              account: none,
              group: { kind: 'hold', ms: GROUP_RETRY_MS, why: 'failing' },
              slot: notSent(),
              next: 'backoff',
              log: { level: 'warn', event: 'post.failed', message: 'could not post; will retry later' },
            };
      default:
        // media_forbidden after the text-only retry, message_invalid, misconfigured, too_many_channels.
        return {
          account: none,
          group: { kind: 'hold', ms: GROUP_REFUSED_MS, why: 'refuses_message' },
          slot: notSent(),
          next: 'backoff',
          log: { level: 'error', event: 'post.refused', message: `could not post: ${error}` },
        };
    }
  }

  // A lookup before a join, and the join: the claim is what keeps other accounts away.
  const uncertain = call === 'join' && outcome.kind === 'transient' && outcome.uncertain;
  if (onAccount) {
    // The join certainly did not happen: another account may take the group (unless an earlier
    // attempt of this one was uncertain, which the database keeps).
    return { ...onAccount, group: outcome.kind === 'session_dead' ? none : { kind: 'release_claim' }, slot: none };
  }
  switch (outcome.kind) {
    case 'found':
      return {
        account: none,
        group: outcome.chat ? { kind: 'identify' } : none,
        slot: none,
        next: 'continue',
        log: { level: 'info', event: 'group.found', message: `found ${link}` },
      };
    case 'joined':
    case 'already_member':
      return {
        account: none,
        group: { kind: 'bind' },
        slot: none,
        next: 'pace',
        log: { level: 'info', event: 'group.joined', message: `joined ${link}; silent for 24 h` },
      };
    case 'join_request_pending':
      return {
        account: none,
        group: { kind: 'requested', retryInMs: JOIN_REQUEST_RETRY_MS },
        slot: none,
        next: 'pace',
        log: { level: 'info', event: 'group.join_requested', message: `asked to join ${link}; an admin must approve` },
      };
    case 'link_dead':
      return {
        account: none,
        group: { kind: 'dead_link' },
        slot: none,
        next: 'pace',
        log: { level: 'warn', event: 'group.dead_link', message: `${link} leads nowhere; never tried again` },
      };
    case 'group_refuses':
      return {
        account: none,
        group: {
          kind: 'refused',
          reason: outcome.reason,
          countsForRestriction: countsForRestriction(outcome.reason, error),
        },
        slot: none,
        next: 'pace',
        log: { level: 'warn', event: 'group.banned', message: `${link} refuses us (${outcome.reason}): closed` },
      };
    case 'too_many_channels':
      return {
        account: { kind: 'too_many_channels' },
        group: { kind: 'release_claim' },
        slot: none,
        next: 'pace',
        log: {
          level: 'warn',
          event: 'account.too_many_channels',
          message: `the account is in too many chats; it stops joining for ${TOO_MANY_CHATS_PAUSE_HOURS} h, another account may take the group`,
        },
      };
    default:
      // transient (uncertain: the join may have happened; the same account asks again), misconfigured, ...
      return {
        account: none,
        group: { kind: 'retry_join', ms: JOIN_RETRY_MS, uncertain },
        slot: none,
        next: 'backoff',
        log: {
          level: 'warn',
          event: 'group.join_failed',
          message: uncertain
            ? `the join of ${link} may or may not have happened; only this account asks again`
            : `could not join ${link}; will retry`,
        },
      };
  }
}

/**
 * The table of Telegram's answers (src/daemon/answers.ts), without a database: what each answer
 * to a connect, a lookup, a join or a post means for the account, the group and the slot.
 */
import { describe, expect, it } from 'vitest';
import {
  consequenceOf,
  GROUP_REFUSED_MS,
  GROUP_RETRY_MS,
  JOIN_REQUEST_RETRY_MS,
  JOIN_RETRY_MS,
} from '../src/daemon/answers';
import type { Failure } from '../src/telegram/outcomes';

const flood: Failure = { kind: 'account_flood_wait', seconds: 86400, error: 'FLOOD_WAIT_86400' };
const limited: Failure = { kind: 'account_limited', error: 'PEER_FLOOD' };
const dead: Failure = { kind: 'session_dead', error: 'AUTH_KEY_UNREGISTERED' };
const banned: Failure = { kind: 'group_refuses', reason: 'banned', error: 'USER_BANNED_IN_CHANNEL' };
const readOnly: Failure = { kind: 'group_refuses', reason: 'read_only', error: 'CHAT_WRITE_FORBIDDEN' };
const broadcast: Failure = {
  kind: 'group_refuses',
  reason: 'read_only',
  error: 'a broadcast channel: members cannot post',
};
const privateGroup: Failure = { kind: 'group_refuses', reason: 'private', error: 'CHANNEL_PRIVATE' };
const deadLink: Failure = { kind: 'link_dead', error: 'USERNAME_NOT_OCCUPIED' };
const timeout: Failure = { kind: 'transient', error: 'request timed out', uncertain: true };
const failed: Failure = { kind: 'transient', error: 'RPC_CALL_FAIL', uncertain: false };

const effects = (c: ReturnType<typeof consequenceOf>) => ({
  account: c.account,
  group: c.group,
  slot: c.slot,
  next: c.next,
});

describe('the table of answers', () => {
  it('an account-wide answer is the same whatever the call: a FloodWait, a pause, a dead session', () => {
    for (const call of ['connect', 'lookup', 'join', 'post'] as const) {
      expect(consequenceOf(call, flood).account).toEqual({ kind: 'flood_wait', seconds: 86400 });
      expect(consequenceOf(call, flood).next).toBe('hold');
      expect(consequenceOf(call, limited).account).toEqual({ kind: 'limited' });
      expect(consequenceOf(call, dead).account).toEqual({ kind: 'dead' });
      expect(consequenceOf(call, dead).next).toBe('stop');
    }
    // A post that met one gives its slot back (the FloodWait under its own status).
    expect(consequenceOf('post', flood).slot).toEqual({ kind: 'not_sent', status: 'flood_wait' });
    expect(consequenceOf('post', limited).slot).toEqual({ kind: 'not_sent', status: 'error' });
    // A join that met one certainly did not happen: another account may take the group (the
    // database keeps an uncertain claim where it is).
    expect(consequenceOf('join', flood).group).toEqual({ kind: 'release_claim' });
    expect(consequenceOf('lookup', limited).group).toEqual({ kind: 'release_claim' });
  });

  it('a post: sent, refused, held, unknown', () => {
    expect(effects(consequenceOf('post', { kind: 'sent', messageId: 7 }))).toEqual({
      account: { kind: 'none' },
      group: { kind: 'none' },
      slot: { kind: 'sent' },
      next: 'pace',
    });
    expect(
      consequenceOf('post', { kind: 'sent', messageId: 7, chat: { telegramId: '-1001', accessHash: '5', title: 'x' } })
        .group,
    ).toEqual({ kind: 'identify' });
    expect(
      effects(consequenceOf('post', { kind: 'group_slow_mode', seconds: 300, error: 'SLOWMODE_WAIT_300' })),
    ).toEqual({
      account: { kind: 'none' },
      group: { kind: 'hold', ms: 300_000, why: 'slow_mode' },
      slot: { kind: 'not_sent', status: 'skipped' },
      next: 'pace',
    });
    expect(effects(consequenceOf('post', timeout))).toEqual({
      account: { kind: 'none' },
      group: { kind: 'none' },
      slot: { kind: 'unknown' },
      next: 'backoff',
    });
    expect(effects(consequenceOf('post', failed))).toEqual({
      account: { kind: 'none' },
      group: { kind: 'hold', ms: GROUP_RETRY_MS, why: 'failing' },
      slot: { kind: 'not_sent', status: 'error' },
      next: 'backoff',
    });
    expect(consequenceOf('post', { kind: 'message_invalid', error: 'MEDIA_CAPTION_TOO_LONG' }).group).toEqual({
      kind: 'hold',
      ms: GROUP_REFUSED_MS,
      why: 'refuses_message',
    });
    expect(consequenceOf('post', deadLink).group).toEqual({ kind: 'dead_link' });
    expect(effects(consequenceOf('post', { kind: 'peer_invalid', error: 'CHANNEL_INVALID' }))).toEqual({
      account: { kind: 'none' },
      group: { kind: 'peer_invalid', ms: GROUP_RETRY_MS },
      slot: { kind: 'not_sent', status: 'error' },
      next: 'pace',
    });
  });

  it('a refusal may be the account restricted, not the group, when Telegram says so to every group', () => {
    expect(consequenceOf('post', banned).group).toEqual({
      kind: 'refused',
      reason: 'banned',
      countsForRestriction: true,
    });
    expect(consequenceOf('post', readOnly).group).toEqual({
      kind: 'refused',
      reason: 'read_only',
      countsForRestriction: true,
    });
    expect(consequenceOf('join', banned).group).toEqual({
      kind: 'refused',
      reason: 'banned',
      countsForRestriction: true,
    });
    // The group's own nature, never the account's state.
    expect(consequenceOf('lookup', broadcast).group).toEqual({
      kind: 'refused',
      reason: 'read_only',
      countsForRestriction: false,
    });
    expect(consequenceOf('post', privateGroup).group).toEqual({
      kind: 'refused',
      reason: 'private',
      countsForRestriction: false,
    });
  });

  it('a join: bound, requested, closed, retried by the same account when it may have happened', () => {
    expect(effects(consequenceOf('join', { kind: 'joined', telegramId: '-1001', title: 't' }))).toEqual({
      account: { kind: 'none' },
      group: { kind: 'bind' },
      slot: { kind: 'none' },
      next: 'pace',
    });
    expect(consequenceOf('join', { kind: 'already_member', telegramId: null, title: null }).group).toEqual({
      kind: 'bind',
    });
    expect(consequenceOf('join', { kind: 'join_request_pending', error: 'INVITE_REQUEST_SENT' }).group).toEqual({
      kind: 'requested',
      retryInMs: JOIN_REQUEST_RETRY_MS,
    });
    expect(consequenceOf('join', deadLink).group).toEqual({ kind: 'dead_link' });
    expect(consequenceOf('join', timeout).group).toEqual({ kind: 'retry_join', ms: JOIN_RETRY_MS, uncertain: true });
    expect(consequenceOf('join', failed).group).toEqual({ kind: 'retry_join', ms: JOIN_RETRY_MS, uncertain: false });
    expect(effects(consequenceOf('join', { kind: 'too_many_channels', error: 'CHANNELS_TOO_MUCH' }))).toEqual({
      account: { kind: 'too_many_channels' },
      group: { kind: 'release_claim' },
      slot: { kind: 'none' },
      next: 'pace',
    });
    // A dead session's claims are the database's business (banAccount keeps uncertain ones).
    expect(consequenceOf('join', dead).group).toEqual({ kind: 'none' });
  });

  it('a lookup changes nothing on Telegram: never uncertain, and it learns the chat', () => {
    expect(consequenceOf('lookup', timeout).group).toEqual({ kind: 'retry_join', ms: JOIN_RETRY_MS, uncertain: false });
    expect(
      effects(
        consequenceOf('lookup', {
          kind: 'found',
          chat: { telegramId: '-1001', accessHash: '5', title: 'x' },
          member: false,
        }),
      ),
    ).toEqual({
      account: { kind: 'none' },
      group: { kind: 'identify' },
      slot: { kind: 'none' },
      next: 'continue',
    });
    expect(consequenceOf('lookup', { kind: 'found', chat: null, member: false }).group).toEqual({ kind: 'none' });
    expect(consequenceOf('lookup', deadLink).group).toEqual({ kind: 'dead_link' });
  });

  it('a connect: on, or why not', () => {
    expect(consequenceOf('connect', { kind: 'connected', userId: '1', username: null }).next).toBe('continue');
    expect(consequenceOf('connect', { kind: 'misconfigured', error: 'no API credentials' }).next).toBe('later');
    expect(consequenceOf('connect', failed).next).toBe('backoff');
    expect(effects(consequenceOf('connect', flood))).toEqual({
      account: { kind: 'flood_wait', seconds: 86400 },
      group: { kind: 'none' },
      slot: { kind: 'none' },
      next: 'hold',
    });
  });
});

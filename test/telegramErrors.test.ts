/**
 * The error table, fed with GramJS's own error objects: the ones GramJS builds from Telegram's
 * wire answers (RPCMessageToError), and plain RPCErrors with each text of SPEC.md's table.
 */

import { Api, errors } from 'telegram';
import { describe, expect, it } from 'vitest';
import { classifyTelegramError } from '../src/telegram/errorTable';
import { TimeoutError } from '../src/telegram/gramjsGateway';

const request = new Api.messages.SendMessage({ peer: new Api.InputPeerEmpty(), message: 'x' });
/** As GramJS raises an error Telegram sent: the right subclass, with the request attached. */
const fromTelegram = (errorMessage: string, errorCode = 400) =>
  errors.RPCMessageToError(new Api.RpcError({ errorCode, errorMessage }), request);
const classify = (error: unknown, uncertain = false) => classifyTelegramError(error, { uncertain });

describe('the Telegram error table', () => {
  it('FLOOD_WAIT_X: the account waits X seconds', () => {
    const error = fromTelegram('FLOOD_WAIT_420', 420);
    expect(error).toBeInstanceOf(errors.FloodWaitError);
    expect(classify(error)).toEqual({ kind: 'account_flood_wait', seconds: 420, error: 'FLOOD_WAIT_420' });
    expect(classify(fromTelegram('FLOOD_PREMIUM_WAIT_7', 420))).toEqual({
      kind: 'account_flood_wait',
      seconds: 7,
      error: 'FLOOD_WAIT_7',
    });
    expect(classify(new errors.FloodWaitError({ request, capture: 86400 }))).toMatchObject({
      kind: 'account_flood_wait',
      seconds: 86400,
    });
  });

  it('SLOWMODE_WAIT_X: the group waits X seconds', () => {
    const error = fromTelegram('SLOWMODE_WAIT_300', 420);
    expect(error).toBeInstanceOf(errors.SlowModeWaitError);
    expect(classify(error)).toEqual({ kind: 'group_slow_mode', seconds: 300, error: 'SLOWMODE_WAIT_300' });
  });

  // SPEC.md's table, row by row.
  it.each([
    ['PEER_FLOOD', { kind: 'account_limited' }],
    ['USER_ALREADY_PARTICIPANT', { kind: 'already_member', telegramId: null, title: null }],
    ['INVITE_REQUEST_SENT', { kind: 'join_request_pending' }],
    ['CHANNELS_TOO_MUCH', { kind: 'too_many_channels' }],
    ['USERNAME_INVALID', { kind: 'link_dead' }],
    ['USERNAME_NOT_OCCUPIED', { kind: 'link_dead' }],
    ['INVITE_HASH_INVALID', { kind: 'link_dead' }],
    ['INVITE_HASH_EXPIRED', { kind: 'link_dead' }],
    ['CHANNEL_PRIVATE', { kind: 'group_refuses', reason: 'private' }],
    ['CHANNEL_INVALID', { kind: 'group_refuses', reason: 'removed' }],
    ['USER_BANNED_IN_CHANNEL', { kind: 'group_refuses', reason: 'banned' }],
    ['CHAT_WRITE_FORBIDDEN', { kind: 'group_refuses', reason: 'read_only' }],
    ['CHAT_ADMIN_REQUIRED', { kind: 'group_refuses', reason: 'admin_required' }],
    ['CHAT_RESTRICTED', { kind: 'group_refuses', reason: 'read_only' }],
    ['CHAT_SEND_MEDIA_FORBIDDEN', { kind: 'media_forbidden' }],
    ['CHAT_SEND_PHOTOS_FORBIDDEN', { kind: 'media_forbidden' }],
    ['MESSAGE_TOO_LONG', { kind: 'message_invalid' }],
    ['MEDIA_CAPTION_TOO_LONG', { kind: 'message_invalid' }],
    ['AUTH_KEY_UNREGISTERED', { kind: 'session_dead' }, 401],
    ['SESSION_REVOKED', { kind: 'session_dead' }, 401],
    ['USER_DEACTIVATED', { kind: 'session_dead' }, 401],
    ['USER_DEACTIVATED_BAN', { kind: 'session_dead' }, 401],
    ['AUTH_KEY_DUPLICATED', { kind: 'session_dead' }, 406],
    ['CHAT_FORBIDDEN', { kind: 'group_refuses', reason: 'private' }],
    ['TOPIC_CLOSED', { kind: 'group_refuses', reason: 'read_only' }],
    ['CHAT_SEND_PLAIN_FORBIDDEN', { kind: 'message_invalid' }],
  ] as [string, object, number?][])('%s', (errorMessage, expected, code) => {
    const wire = fromTelegram(errorMessage, code ?? 400);
    expect(wire).toBeInstanceOf(errors.RPCError);
    expect(classify(wire)).toMatchObject(expected);
    expect(classify(new errors.RPCError(errorMessage, request, code ?? 400))).toMatchObject(expected);
    const outcome = classify(wire);
    if ('error' in outcome) expect(outcome.error).toBe(errorMessage);
  });

  it('an unknown error is transient, with its text; an unknown 401 means the session is dead', () => {
    expect(classify(fromTelegram('SOMETHING_NEW', 400))).toEqual({
      kind: 'transient',
      error: 'SOMETHING_NEW',
      uncertain: false,
    });
    expect(classify(fromTelegram('SOME_AUTH_PROBLEM', 401))).toEqual({
      kind: 'session_dead',
      error: 'SOME_AUTH_PROBLEM',
    });
  });

  it("a 5xx may have been executed; Telegram's refusals were not", () => {
    expect(classify(fromTelegram('INTERNAL_SERVER_ERROR', 500), true)).toEqual({
      kind: 'transient',
      error: 'INTERNAL_SERVER_ERROR',
      uncertain: true,
    });
    expect(classify(fromTelegram('INTERNAL_SERVER_ERROR', 500), false)).toMatchObject({ uncertain: false });
    expect(classify(fromTelegram('CHAT_WRITE_FORBIDDEN', 403), true)).toMatchObject({ kind: 'group_refuses' });
  });

  it("Telegram's own timeout (-503) and RANDOM_ID_DUPLICATE may mean the message went out", () => {
    expect(classify(fromTelegram('Timeout', -503), true)).toEqual({
      kind: 'transient',
      error: 'Timeout',
      uncertain: true,
    });
    expect(classify(fromTelegram('RANDOM_ID_DUPLICATE', 500), true)).toEqual({
      kind: 'transient',
      error: 'RANDOM_ID_DUPLICATE',
      uncertain: true,
    });
    expect(classify(fromTelegram('PEER_ID_INVALID', 400), true)).toEqual({
      kind: 'transient',
      error: 'PEER_ID_INVALID',
      uncertain: false,
    });
  });

  it('timeouts and network errors are transient, uncertain when the request may have gone out', () => {
    expect(classify(new TimeoutError('sendFile', 60000), true)).toEqual({
      kind: 'transient',
      error: 'sendFile timed out after 60000 ms',
      uncertain: true,
    });
    expect(classify(new Error('Not connected'), false)).toEqual({
      kind: 'transient',
      error: 'Not connected',
      uncertain: false,
    });
    expect(classify('weird', false)).toEqual({ kind: 'transient', error: 'weird', uncertain: false });
  });
});

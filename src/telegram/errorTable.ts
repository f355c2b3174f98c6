/**
 * The one table from Telegram's errors (SPEC.md, "Telegram facts worth knowing") to outcomes.
 * GramJS raises RPCError subclasses: FloodWaitError and SlowModeWaitError carry `seconds`,
 * the others carry Telegram's text in `errorMessage` (USER_BANNED_IN_CHANNEL, ...).
 */
import { errors } from 'telegram';
import type { Failure, GroupRefusal, JoinOutcome } from './outcomes';

/** What an error can mean: a failure, or one of the two join results Telegram reports as errors. */
export type ClassifiedError = Failure | Extract<JoinOutcome, { kind: 'already_member' | 'join_request_pending' }>;

type Rule = (error: string, seconds: number) => ClassifiedError;

const refuses =
  (reason: GroupRefusal): Rule =>
  (error) => ({ kind: 'group_refuses', reason, error });
const simple =
  (
    kind:
      | 'link_dead'
      | 'media_forbidden'
      | 'account_limited'
      | 'too_many_channels'
      | 'session_dead'
      | 'message_invalid',
  ): Rule =>
  (error) => ({ kind, error });

/** Telegram's error text (the part before any number) -> outcome. */
export const TELEGRAM_ERRORS: Readonly<Record<string, Rule>> = {
  // Waits. GramJS turns FLOOD_WAIT_X / SLOWMODE_WAIT_X into classes; the texts are kept for raw errors.
  FLOOD_WAIT: (error, seconds) => ({ kind: 'account_flood_wait', seconds, error }),
  FLOOD_PREMIUM_WAIT: (error, seconds) => ({ kind: 'account_flood_wait', seconds, error }),
  FLOOD_TEST_PHONE_WAIT: (error, seconds) => ({ kind: 'account_flood_wait', seconds, error }),
  SLOWMODE_WAIT: (error, seconds) => ({ kind: 'group_slow_mode', seconds, error }),
  // Join results that come as errors.
  USER_ALREADY_PARTICIPANT: () => ({ kind: 'already_member', telegramId: null, title: null }),
  INVITE_REQUEST_SENT: (error) => ({ kind: 'join_request_pending', error }),
  // The account.
  PEER_FLOOD: simple('account_limited'),
  USER_RESTRICTED: simple('account_limited'),
  FROZEN_METHOD_INVALID: simple('account_limited'),
  CHANNELS_TOO_MUCH: simple('too_many_channels'),
  // The link leads nowhere.
  USERNAME_INVALID: simple('link_dead'),
  USERNAME_NOT_OCCUPIED: simple('link_dead'),
  INVITE_HASH_INVALID: simple('link_dead'),
  INVITE_HASH_EXPIRED: simple('link_dead'),
  INVITE_HASH_EMPTY: simple('link_dead'),
  // The group refuses us.
  CHANNEL_PRIVATE: refuses('private'),
  CHANNEL_INVALID: refuses('removed'),
  USER_NOT_PARTICIPANT: refuses('removed'),
  CHAT_GUEST_SEND_FORBIDDEN: refuses('removed'),
  USER_BANNED_IN_CHANNEL: refuses('banned'),
  CHAT_WRITE_FORBIDDEN: refuses('read_only'),
  CHAT_RESTRICTED: refuses('read_only'),
  CHAT_FORBIDDEN: refuses('private'),
  TOPIC_CLOSED: refuses('read_only'),
  // Posting there costs Stars: as good as read-only for us.
  ALLOW_PAYMENT_REQUIRED: refuses('read_only'),
  CHAT_ADMIN_REQUIRED: refuses('admin_required'),
  USERS_TOO_MUCH: refuses('full'),
  // Text only.
  CHAT_SEND_MEDIA_FORBIDDEN: simple('media_forbidden'),
  CHAT_SEND_PHOTOS_FORBIDDEN: simple('media_forbidden'),
  // The message itself (a group that takes no plain text may still take a photo).
  CHAT_SEND_PLAIN_FORBIDDEN: simple('message_invalid'),
  MESSAGE_TOO_LONG: simple('message_invalid'),
  MEDIA_CAPTION_TOO_LONG: simple('message_invalid'),
  MESSAGE_EMPTY: simple('message_invalid'),
  MEDIA_EMPTY: simple('message_invalid'),
  MEDIA_INVALID: simple('message_invalid'),
  PHOTO_INVALID: simple('message_invalid'),
  PHOTO_INVALID_DIMENSIONS: simple('message_invalid'),
  PHOTO_EXT_INVALID: simple('message_invalid'),
  PHOTO_SAVE_FILE_INVALID: simple('message_invalid'),
  IMAGE_PROCESS_FAILED: simple('message_invalid'),
  // The session is dead.
  AUTH_KEY_UNREGISTERED: simple('session_dead'),
  AUTH_KEY_INVALID: simple('session_dead'),
  AUTH_KEY_PERM_EMPTY: simple('session_dead'),
  AUTH_KEY_DUPLICATED: simple('session_dead'),
  SESSION_REVOKED: simple('session_dead'),
  SESSION_EXPIRED: simple('session_dead'),
  USER_DEACTIVATED: simple('session_dead'),
  USER_DEACTIVATED_BAN: simple('session_dead'),
};

export interface ClassifyContext {
  /** Whether a request that failed without Telegram's answer may still have taken effect. */
  uncertain: boolean;
}

/** Telegram's own text for an error: FLOOD_WAIT_420, USER_BANNED_IN_CHANNEL, or the message. */
export function describeTelegramError(error: unknown): string {
  if (error instanceof errors.FloodWaitError) return `FLOOD_WAIT_${error.seconds}`;
  if (error instanceof errors.SlowModeWaitError) return `SLOWMODE_WAIT_${error.seconds}`;
  if (error instanceof errors.RPCError) return error.errorMessage;
  if (error instanceof Error) return error.message;
  return String(error);
}

/** Maps anything a GramJS call threw to exactly one outcome. */
export function classifyTelegramError(error: unknown, context: ClassifyContext): ClassifiedError {
  const text = describeTelegramError(error);
  if (error instanceof errors.RPCError) {
    const match = /^([A-Z_]+?)(?:_(\d+))?$/.exec(text);
    const name = match?.[1] ?? text;
    const seconds =
      error instanceof errors.FloodWaitError || error instanceof errors.SlowModeWaitError
        ? error.seconds
        : Number(match?.[2] ?? 0);
    const rule = TELEGRAM_ERRORS[name] ?? TELEGRAM_ERRORS[text];
    if (rule) return rule(text, seconds);
    // 401 is Telegram's "unauthorized" family: whatever its text, the session cannot be used.
    if (error.code === 401) return { kind: 'session_dead', error: text };
    // RANDOM_ID_DUPLICATE: a message with this random id was sent already.
    if (text === 'RANDOM_ID_DUPLICATE') return { kind: 'transient', error: text, uncertain: context.uncertain };
    // Telegram answered with an error we do not know: a 5xx, or a negative code (Telegram's own
    // timeout, -503), may still have been executed.
    const serverSide = (error.code ?? 0) >= 500 || (error.code ?? 0) < 0;
    return { kind: 'transient', error: text, uncertain: serverSide && context.uncertain };
  }
  return { kind: 'transient', error: text, uncertain: context.uncertain };
}

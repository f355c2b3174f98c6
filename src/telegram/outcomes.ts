/**
 * What a Telegram call came to. Every GramJS result or error becomes exactly one of these
 * (errorTable.ts holds the mapping), so the daemon decides by kind, never by error text.
 */

/** Why a group will not have us; each is final for that group (SPEC: never get around it). */
export type GroupRefusal =
  | 'banned' // USER_BANNED_IN_CHANNEL: the group banned this account
  | 'read_only' // CHAT_WRITE_FORBIDDEN, CHAT_RESTRICTED, a broadcast channel: members may not write
  | 'admin_required' // CHAT_ADMIN_REQUIRED
  | 'private' // CHANNEL_PRIVATE: no access
  | 'removed' // CHANNEL_INVALID, USER_NOT_PARTICIPANT: the account is not (or no longer) in it
  | 'full'; // USERS_TOO_MUCH

export type Failure =
  /** FLOOD_WAIT_X: this account must wait `seconds` before talking to Telegram again. */
  | { kind: 'account_flood_wait'; seconds: number; error: string }
  /** SLOWMODE_WAIT_X: this group must wait `seconds`; the account may go on elsewhere. */
  | { kind: 'group_slow_mode'; seconds: number; error: string }
  | { kind: 'group_refuses'; reason: GroupRefusal; error: string }
  /** The link leads nowhere: username invalid or free, invite invalid or expired, not a group. */
  | { kind: 'link_dead'; error: string }
  /** CHAT_SEND_MEDIA_FORBIDDEN, CHAT_SEND_PHOTOS_FORBIDDEN: text only in this group. */
  | { kind: 'media_forbidden'; error: string }
  /** PEER_FLOOD: Telegram's anti-spam limits this account; stop it for a long time. */
  | { kind: 'account_limited'; error: string }
  /** CHANNELS_TOO_MUCH: the account is in too many chats to join another. */
  | { kind: 'too_many_channels'; error: string }
  /** Revoked, unregistered, deactivated, banned or duplicated: needs a new login, or is gone. */
  | { kind: 'session_dead'; error: string }
  /** The message itself is wrong (too long, bad media). */
  | { kind: 'message_invalid'; error: string }
  /**
   * Network, timeout, Telegram 5xx, anything unknown: try again later. `uncertain`: the request
   * may have reached Telegram and taken effect (a post that timed out may have been sent).
   */
  | { kind: 'transient'; error: string; uncertain: boolean }
  /** Our side cannot make this call: no API credentials, a proxy type GramJS cannot use. */
  | { kind: 'misconfigured'; error: string }
  /**
   * The chat's stored peer (its id and access hash, kept since the join) no longer leads to it
   * (CHANNEL_INVALID, PEER_ID_INVALID): nothing was sent; the group is reported, and its link is
   * looked up again next time.
   */
  | { kind: 'peer_invalid'; error: string };

/**
 * What Telegram told us of a chat: its id (marked, as GramJS's utils.getPeerId gives it: -100…
 * for a supergroup or channel, -… for a basic group), the access hash this account reaches it
 * with (supergroups and channels; null for a basic group), and its title.
 */
export interface ChatIdentity {
  telegramId: string;
  accessHash: string | null;
  title: string | null;
}

/**
 * A link looked up without joining (contacts.ResolveUsername, messages.CheckChatInvite): the chat
 * it leads to where Telegram says (an invite to a chat we are not in does not), and whether this
 * account is in it already.
 */
export type LookupOutcome = { kind: 'found'; chat: ChatIdentity | null; member: boolean } | Failure;

export type ConnectOutcome = { kind: 'connected'; userId: string; username: string | null } | Failure;

export type JoinOutcome =
  | { kind: 'joined'; telegramId: string | null; title: string | null; accessHash?: string | null }
  /** USER_ALREADY_PARTICIPANT or already in: the join succeeded before. */
  | { kind: 'already_member'; telegramId: string | null; title: string | null; accessHash?: string | null }
  /** INVITE_REQUEST_SENT: an admin must approve; not a member yet. */
  | { kind: 'join_request_pending'; error: string }
  | Failure;

/** `chat`: what a lookup of the link learnt on the way (the post had no stored peer). */
export type PostOutcome = { kind: 'sent'; messageId: number | null; chat?: ChatIdentity } | Failure;

/** Every kind of Failure, for the metrics to show each at 0 before it first happens. */
export const FAILURE_KINDS = [
  'account_flood_wait',
  'group_slow_mode',
  'group_refuses',
  'link_dead',
  'media_forbidden',
  'account_limited',
  'too_many_channels',
  'session_dead',
  'message_invalid',
  'transient',
  'misconfigured',
  'peer_invalid',
] as const satisfies readonly Failure['kind'][];
/** A Failure kind missing from FAILURE_KINDS fails the type check here. */
const everyFailureListed: Exclude<Failure['kind'], (typeof FAILURE_KINDS)[number]> extends never ? true : never = true;
void everyFailureListed;

/** Every outcome of a connect, a join and a post (the metrics' label values). */
export const CONNECT_OUTCOME_KINDS = ['connected', ...FAILURE_KINDS] as const;
export const JOIN_OUTCOME_KINDS = ['joined', 'already_member', 'join_request_pending', ...FAILURE_KINDS] as const;
export const POST_OUTCOME_KINDS = ['sent', ...FAILURE_KINDS] as const;

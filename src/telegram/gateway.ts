/**
 * The daemon's only way to Telegram. The GramJS implementation (gramjsGateway.ts) and the fake
 * (fakeGateway.ts, for tests and `lexus simulate`) both implement it, and no method throws for
 * anything Telegram or the network does: results are typed outcomes (outcomes.ts).
 */
import type { ConnectOutcome, JoinOutcome, LookupOutcome, PostOutcome } from './outcomes';

/** What one account needs to connect. Secrets: never log this object. */
export interface AccountCredentials {
  sessionName: string;
  sessionString: string;
  /** The account's own API credentials, else the gateway's defaults (TG_API_ID / TG_API_HASH). */
  apiId: number | null;
  apiHash: string | null;
  /** socks5://user:pass@host:port, socks4://..., or mtproxy://SECRET@host:port; null: direct. */
  proxy: string | null;
}

/**
 * A group as stored: its normalized link and, once known, its stored peer: the chat's id (marked,
 * -100… for a supergroup) and the access hash the bound account reaches it with. A post with a
 * stored peer sends to it directly; without one, the link is looked up first.
 */
export interface GroupRef {
  link: string;
  telegramId?: string | null;
  accessHash?: string | null;
}

export interface OutgoingMessage {
  /** The caption of the photo, or the text when there is no photo. Sent as plain text. */
  text: string;
  /** A local image file; null: text only. */
  photoPath: string | null;
}

/** One account's session. One call at a time; the daemon never overlaps them. */
export interface TelegramSession {
  readonly sessionName: string;
  /** Connects and checks the session is alive. */
  connect(): Promise<ConnectOutcome>;
  /** Finds the chat a link leads to, without joining it (the daemon checks the chat is not ours already). */
  lookup(group: GroupRef): Promise<LookupOutcome>;
  join(group: GroupRef): Promise<JoinOutcome>;
  post(group: GroupRef, message: OutgoingMessage): Promise<PostOutcome>;
  /** Always resolves; a session that was never connected is fine. */
  disconnect(): Promise<void>;
}

export interface TelegramGateway {
  session(account: AccountCredentials): TelegramSession;
}

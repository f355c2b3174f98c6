/**
 * The real gateway: one GramJS TelegramClient per account, on its StringSession (Telethon
 * strings from the old system work as they are).
 *
 * - floodSleepThreshold 0: GramJS never sleeps through a FloodWait on its own; every wait comes
 *   back as an outcome, so the daemon can store it.
 * - Every call has a timeout; GramJS's own reconnects are bounded (connectionRetries).
 * - Joining: a username by contacts.ResolveUsername + channels.JoinChannel; an invite link by
 *   messages.CheckChatInvite (which tells whether we are in already) + messages.ImportChatInvite
 *   with the hash exactly as given.
 * - Posting: plain text (no parse mode, no link preview); a photo goes with sendFile and the text
 *   as its caption.
 */
import { access } from 'node:fs/promises';
import { Api, TelegramClient, utils } from 'telegram';
import { Logger as GramjsBaseLogger, LogLevel } from 'telegram/extensions/Logger';
import { StringSession } from 'telegram/sessions';
import type { TelegramClientParams } from 'telegram/client/telegramBaseClient';
import type { Logger } from '../logger';
import { parseGroupLink } from '../links';
import { classifyTelegramError, describeTelegramError } from './errorTable';
import type { AccountCredentials, GroupRef, OutgoingMessage, TelegramGateway, TelegramSession } from './gateway';
import type { ConnectOutcome, Failure, JoinOutcome, PostOutcome } from './outcomes';
import { ProxyError, parseProxy } from './proxy';

export interface GatewayTimeouts {
  connectMs: number;
  joinMs: number;
  postMs: number;
  disconnectMs: number;
}

export const DEFAULT_TIMEOUTS: GatewayTimeouts = { connectMs: 30_000, joinMs: 30_000, postMs: 60_000, disconnectMs: 10_000 };

export type ClientFactory = (session: StringSession, apiId: number, apiHash: string, params: TelegramClientParams) => TelegramClient;

export interface GramjsGatewayOptions {
  /** TG_API_ID / TG_API_HASH: used for accounts that were imported without their own. */
  apiId?: number | null;
  apiHash?: string | null;
  log: Logger;
  timeouts?: Partial<GatewayTimeouts>;
  /** Builds the client. Tests pass one whose network calls are recorded. */
  createClient?: ClientFactory;
}

/** GramJS's log lines, into ours: its info is chatty (connections), so it becomes debug. */
export class GramjsLogger extends GramjsBaseLogger {
  constructor(private readonly target: Logger) {
    super(target.isLevelEnabled('debug') ? LogLevel.INFO : LogLevel.WARN);
  }

  override log(level: LogLevel, message: string): void {
    const fields = { event: 'gramjs' };
    if (level === LogLevel.ERROR) this.target.error(fields, message);
    else if (level === LogLevel.WARN) this.target.warn(fields, message);
    else if (level === LogLevel.INFO) this.target.debug(fields, message);
    else this.target.trace(fields, message);
  }
}

export class TimeoutError extends Error {
  constructor(what: string, ms: number) {
    super(`${what} timed out after ${ms} ms`);
    this.name = 'TimeoutError';
  }
}

export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new TimeoutError(what, ms)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

const defaultClientFactory: ClientFactory = (session, apiId, apiHash, params) => new TelegramClient(session, apiId, apiHash, params);

type Chat = Api.Channel | Api.Chat;

function isChat(entity: unknown): entity is Chat {
  return entity instanceof Api.Channel || entity instanceof Api.Chat;
}

/** A broadcast channel: only its admins post. */
function isBroadcast(chat: Chat | Api.ChatInvite): boolean {
  if (chat instanceof Api.Chat) return false; // a basic group
  return Boolean(chat.broadcast) && !chat.megagroup;
}

function chatOf(updates: unknown): Chat | undefined {
  const chats = (updates as { chats?: unknown[] } | undefined)?.chats ?? [];
  return chats.find(isChat);
}

/** Keeps the failures of a classified error; join-only results make no sense after a post. */
function asFailure(error: unknown, uncertain: boolean): Failure {
  const outcome = classifyTelegramError(error, { uncertain });
  if (outcome.kind === 'already_member' || outcome.kind === 'join_request_pending') {
    return { kind: 'transient', error: describeTelegramError(error), uncertain };
  }
  return outcome;
}

class GramjsSession implements TelegramSession {
  private client: TelegramClient | undefined;
  /** Peers resolved in this session, by normalized link: ResolveUsername is rate-limited. */
  private readonly peers = new Map<string, Api.TypeInputPeer>();
  private readonly timeouts: GatewayTimeouts;
  private readonly log: Logger;

  constructor(
    private readonly account: AccountCredentials,
    private readonly options: GramjsGatewayOptions,
  ) {
    this.timeouts = { ...DEFAULT_TIMEOUTS, ...options.timeouts };
    this.log = options.log.child({ account: account.sessionName });
  }

  get sessionName(): string {
    return this.account.sessionName;
  }

  /** The client, built on first use; a Failure when this account cannot have one. */
  private clientOrFailure(): TelegramClient | Failure {
    if (this.client) return this.client;
    const apiId = this.account.apiId ?? this.options.apiId ?? null;
    const apiHash = this.account.apiHash ?? this.options.apiHash ?? null;
    if (!apiId || !apiHash) {
      return { kind: 'misconfigured', error: 'no API credentials: set TG_API_ID and TG_API_HASH, or import the account with its own api_id and api_hash' };
    }
    let proxy;
    try {
      proxy = this.account.proxy ? parseProxy(this.account.proxy) : undefined;
    } catch (error) {
      if (error instanceof ProxyError) return { kind: 'misconfigured', error: error.message };
      throw error;
    }
    let session: StringSession;
    try {
      session = new StringSession(this.account.sessionString);
    } catch {
      return { kind: 'session_dead', error: 'the stored session string cannot be decoded' };
    }
    this.client = (this.options.createClient ?? defaultClientFactory)(session, apiId, apiHash, {
      floodSleepThreshold: 0,
      connectionRetries: 3,
      retryDelay: 1000,
      requestRetries: 2,
      autoReconnect: true,
      deviceModel: 'Lexus Promotion',
      baseLogger: new GramjsLogger(this.log),
      ...(proxy ? { proxy } : {}),
    });
    return this.client;
  }

  async connect(): Promise<ConnectOutcome> {
    const client = this.clientOrFailure();
    if (!(client instanceof TelegramClient)) return client;
    try {
      await withTimeout(client.connect(), this.timeouts.connectMs, 'connect');
      const me = await withTimeout(client.getMe(), this.timeouts.connectMs, 'getMe');
      return { kind: 'connected', userId: String(me.id), username: me.username ?? null };
    } catch (error) {
      return asFailure(error, false);
    }
  }

  private async invoke<R extends Api.AnyRequest>(client: TelegramClient, request: R, ms: number): Promise<R['__response']> {
    return withTimeout(client.invoke(request), ms, request.className);
  }

  /** The group a username names, or a link_dead failure (free, a user, a bot). */
  private async resolveUsername(client: TelegramClient, username: string): Promise<Chat | Failure> {
    const resolved = await this.invoke(client, new Api.contacts.ResolveUsername({ username }), this.timeouts.joinMs);
    const chat = resolved.chats.find(isChat);
    if (!chat || resolved.peer instanceof Api.PeerUser) return { kind: 'link_dead', error: `@${username} is not a group` };
    return chat;
  }

  async join(group: GroupRef): Promise<JoinOutcome> {
    const client = this.clientOrFailure();
    if (!(client instanceof TelegramClient)) return client;
    const link = parseGroupLink(group.link);
    try {
      if (link.kind === 'username') {
        const chat = await this.resolveUsername(client, link.username);
        if ('kind' in chat) return chat;
        if (isBroadcast(chat)) return { kind: 'group_refuses', reason: 'read_only', error: 'a broadcast channel: members cannot post' };
        this.peers.set(group.link, utils.getInputPeer(chat));
        if (chat instanceof Api.Channel && chat.left === false) {
          return { kind: 'already_member', telegramId: utils.getPeerId(chat), title: chat.title };
        }
        const updates = await this.invoke(client, new Api.channels.JoinChannel({ channel: utils.getInputChannel(chat) }), this.timeouts.joinMs);
        const joined = chatOf(updates) ?? chat;
        return { kind: 'joined', telegramId: utils.getPeerId(joined), title: joined.title };
      }
      const invite = await this.invoke(client, new Api.messages.CheckChatInvite({ hash: link.hash }), this.timeouts.joinMs);
      if (invite instanceof Api.ChatInviteAlready && isChat(invite.chat)) {
        this.peers.set(group.link, utils.getInputPeer(invite.chat));
        return { kind: 'already_member', telegramId: utils.getPeerId(invite.chat), title: invite.chat.title };
      }
      if (invite instanceof Api.ChatInvite && isBroadcast(invite)) {
        return { kind: 'group_refuses', reason: 'read_only', error: 'a broadcast channel: members cannot post' };
      }
      const updates = await this.invoke(client, new Api.messages.ImportChatInvite({ hash: link.hash }), this.timeouts.joinMs);
      const joined = chatOf(updates);
      if (joined) this.peers.set(group.link, utils.getInputPeer(joined));
      return { kind: 'joined', telegramId: joined ? utils.getPeerId(joined) : null, title: joined?.title ?? null };
    } catch (error) {
      // A join is safe to try again: Telegram answers USER_ALREADY_PARTICIPANT the second time.
      return classifyTelegramError(error, { uncertain: true });
    }
  }

  /** The peer to post to: from this session's cache, else resolved again. */
  private async peerFor(client: TelegramClient, group: GroupRef): Promise<Api.TypeInputPeer | Failure> {
    const cached = this.peers.get(group.link);
    if (cached) return cached;
    const link = parseGroupLink(group.link);
    if (link.kind === 'username') {
      const chat = await this.resolveUsername(client, link.username);
      if ('kind' in chat) return chat;
      this.peers.set(group.link, utils.getInputPeer(chat));
    } else {
      const invite = await this.invoke(client, new Api.messages.CheckChatInvite({ hash: link.hash }), this.timeouts.joinMs);
      if (!(invite instanceof Api.ChatInviteAlready) || !isChat(invite.chat)) {
        return { kind: 'group_refuses', reason: 'removed', error: 'no longer a member of this private group' };
      }
      this.peers.set(group.link, utils.getInputPeer(invite.chat));
    }
    return this.peers.get(group.link)!;
  }

  async post(group: GroupRef, message: OutgoingMessage): Promise<PostOutcome> {
    const client = this.clientOrFailure();
    if (!(client instanceof TelegramClient)) return client;
    if (message.photoPath) {
      try {
        await access(message.photoPath);
      } catch {
        return { kind: 'misconfigured', error: `photo ${message.photoPath} cannot be read` };
      }
    }
    let peer: Api.TypeInputPeer | Failure;
    try {
      peer = await this.peerFor(client, group);
    } catch (error) {
      return asFailure(error, false);
    }
    if ('kind' in peer) return peer;
    try {
      const sent = message.photoPath
        ? await withTimeout(
            client.sendFile(peer, { file: message.photoPath, caption: message.text, parseMode: false, forceDocument: false, workers: 1 }),
            this.timeouts.postMs,
            'sendFile',
          )
        : await withTimeout(client.sendMessage(peer, { message: message.text, parseMode: false, linkPreview: false }), this.timeouts.postMs, 'sendMessage');
      return { kind: 'sent', messageId: sent?.id ?? null };
    } catch (error) {
      // Telegram's own error means it refused; anything else (a timeout, a dropped connection)
      // may have happened after the message went out.
      return asFailure(error, true);
    }
  }

  async disconnect(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    this.peers.clear();
    if (!client) return;
    try {
      await withTimeout(client.destroy(), this.timeouts.disconnectMs, 'disconnect');
    } catch (error) {
      this.log.warn({ event: 'telegram.disconnect_failed', error: describeTelegramError(error) }, 'disconnect did not finish cleanly');
    }
  }
}

export class GramjsGateway implements TelegramGateway {
  constructor(private readonly options: GramjsGatewayOptions) {}

  session(account: AccountCredentials): TelegramSession {
    return new GramjsSession(account, this.options);
  }
}

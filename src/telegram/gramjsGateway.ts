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
import { Api, TelegramClient, utils } from 'telegram';
import { Logger as GramjsBaseLogger, LogLevel } from 'telegram/extensions/Logger';
import { StringSession } from 'telegram/sessions';
import type { TelegramClientParams } from 'telegram/client/telegramBaseClient';
import type { Logger } from '../logger';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { generateRandomLong } from 'telegram/Helpers';
import { parseGroupLink, type GroupLink } from '../links';
import { classifyTelegramError, describeTelegramError } from './errorTable';
import type { AccountCredentials, GroupRef, OutgoingMessage, TelegramGateway, TelegramSession } from './gateway';
import type { ConnectOutcome, Failure, JoinOutcome, PostOutcome } from './outcomes';
import { ProxyError, parseProxy, type GramjsProxy } from './proxy';

export interface GatewayTimeouts {
  connectMs: number;
  joinMs: number;
  postMs: number;
  disconnectMs: number;
}

export const DEFAULT_TIMEOUTS: GatewayTimeouts = { connectMs: 30_000, joinMs: 30_000, postMs: 60_000, disconnectMs: 10_000 };

/** What a TelegramClient for one account is made of, once the stored values are checked. */
export interface ClientSettings {
  apiId: number;
  apiHash: string;
  proxy: GramjsProxy | undefined;
  session: StringSession;
}

/**
 * The account's client settings, or why it cannot have a client: no API credentials (its own
 * api_id and api_hash, else TG_API_ID / TG_API_HASH: never one of each), a proxy GramJS cannot
 * use, a session string that does not decode. Needs no network (`lexus check` uses it too).
 */
export function clientSettingsOf(account: AccountCredentials, defaults: { apiId?: number | null; apiHash?: string | null }): ClientSettings | Failure {
  const own = account.apiId !== null && account.apiHash !== null;
  const apiId = own ? account.apiId : (defaults.apiId ?? null);
  const apiHash = own ? account.apiHash : (defaults.apiHash ?? null);
  if (!apiId || !apiHash) {
    return { kind: 'misconfigured', error: 'no API credentials: set TG_API_ID and TG_API_HASH, or import the account with its own api_id and api_hash' };
  }
  let proxy: GramjsProxy | undefined;
  try {
    proxy = account.proxy ? parseProxy(account.proxy) : undefined;
  } catch (error) {
    if (error instanceof ProxyError) return { kind: 'misconfigured', error: error.message };
    throw error;
  }
  let session: StringSession;
  try {
    session = new StringSession(account.sessionString);
  } catch {
    return { kind: 'session_dead', error: 'the stored session string cannot be decoded' };
  }
  return { apiId, apiHash, proxy, session };
}

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

/**
 * GramJS's log lines, into ours: its info is chatty (connections), so it becomes debug, and so do
 * its warnings about ordinary disconnects. GramJS also prints raw errors with console.error
 * whenever its logger "can send" errors, and those objects can hold a proxy's password: so this
 * logger says it cannot, and takes GramJS's error lines through error() itself.
 */
export class GramjsLogger extends GramjsBaseLogger {
  constructor(private readonly target: Logger) {
    super(target.isLevelEnabled('debug') ? LogLevel.INFO : LogLevel.WARN);
  }

  override canSend(level: LogLevel): boolean {
    return level !== LogLevel.ERROR && super.canSend(level);
  }

  override error(message: string): void {
    this.log(LogLevel.ERROR, message);
  }

  override log(level: LogLevel, message: string): void {
    const fields = { event: 'gramjs' };
    const text = String(message);
    if (level === LogLevel.ERROR) this.target.error(fields, text);
    else if (level === LogLevel.WARN && !/^(Disconnecting|Connection closed)/.test(text)) this.target.warn(fields, text);
    else if (level === LogLevel.WARN || level === LogLevel.INFO) this.target.debug(fields, text);
    else this.target.trace(fields, text);
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

/** The id of the message a send created, from whichever form of Updates Telegram answered. */
function messageIdOf(result: unknown): number | null {
  if (result instanceof Api.UpdateShortSentMessage) return result.id;
  const updates = (result as { updates?: unknown[] } | undefined)?.updates ?? [];
  for (const update of updates) {
    if (update instanceof Api.UpdateMessageID) return update.id;
    if ((update instanceof Api.UpdateNewChannelMessage || update instanceof Api.UpdateNewMessage) && 'id' in update.message) return update.message.id;
  }
  return null;
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
    const settings = clientSettingsOf(this.account, this.options);
    if ('kind' in settings) return settings;
    const { apiId, apiHash, proxy, session } = settings;
    this.client = (this.options.createClient ?? defaultClientFactory)(session, apiId, apiHash, {
      floodSleepThreshold: 0,
      connectionRetries: 3,
      retryDelay: 1000,
      requestRetries: 2,
      reconnectRetries: 5,
      autoReconnect: true,
      deviceModel: 'Lexus Promotion',
      baseLogger: new GramjsLogger(this.log),
      ...(proxy ? { proxy } : {}),
    });
    // Errors of GramJS's update loop: their text only (the objects may hold the proxy).
    this.client.onError = async (error: Error) => {
      this.log.warn({ event: 'gramjs.error', error: describeTelegramError(error) }, 'GramJS reported an error');
    };
    return this.client;
  }

  /** Drops the client after a failure or a timeout, so nothing it started carries on. */
  private async reset(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    this.peers.clear();
    if (client) await withTimeout(client.destroy(), this.timeouts.disconnectMs, 'disconnect').catch(() => undefined);
  }

  async connect(): Promise<ConnectOutcome> {
    const client = this.clientOrFailure();
    if (!(client instanceof TelegramClient)) return client;
    try {
      // One deadline for the whole connection. GramJS's connect() answers false (it does not
      // throw) when its retries ran out.
      const me = await withTimeout(
        (async () => {
          if ((await client.connect()) === false) throw new Error('cannot reach Telegram (connection retries exhausted)');
          return client.getMe();
        })(),
        this.timeouts.connectMs,
        'connect',
      );
      return { kind: 'connected', userId: String(me.id), username: me.username ?? null };
    } catch (error) {
      await this.reset();
      return asFailure(error, false);
    }
  }

  private async invoke<R extends Api.AnyRequest>(client: TelegramClient, request: R, ms: number): Promise<R['__response']> {
    return withTimeout(client.invoke(request), ms, request.className);
  }

  /** The group a username names, or a link_dead failure (free, a user, a bot). */
  private async resolveUsername(client: TelegramClient, username: string): Promise<Chat | Failure> {
    const resolved = await this.invoke(client, new Api.contacts.ResolveUsername({ username }), this.timeouts.joinMs);
    if (resolved.peer instanceof Api.PeerUser) return { kind: 'link_dead', error: `@${username} is not a group` };
    const peerId = resolved.peer instanceof Api.PeerChannel ? resolved.peer.channelId : resolved.peer instanceof Api.PeerChat ? resolved.peer.chatId : undefined;
    const match = resolved.chats.find((c) => peerId !== undefined && 'id' in c && c.id.equals(peerId));
    if (match instanceof Api.ChannelForbidden || match instanceof Api.ChatForbidden) {
      return { kind: 'group_refuses', reason: 'private', error: `@${username}: no access (the group banned or removed this account)` };
    }
    const chat = isChat(match) ? match : resolved.chats.find(isChat);
    if (!chat) return { kind: 'link_dead', error: `@${username} is not a group` };
    return chat;
  }

  async join(group: GroupRef): Promise<JoinOutcome> {
    const client = this.clientOrFailure();
    if (!(client instanceof TelegramClient)) return client;
    let link: GroupLink;
    try {
      link = parseGroupLink(group.link);
    } catch (error) {
      return { kind: 'link_dead', error: (error as Error).message };
    }
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

  /**
   * Uploads a photo through invoke() on the main connection, part by part. (GramJS's sendFile
   * uploads over a second connection whose loop sleeps through FloodWaits and retries behind a
   * timeout; invoke() reports every wait.)
   */
  private async uploadPhoto(client: TelegramClient, file: string): Promise<Api.InputFile> {
    const bytes = await readFile(file);
    const partSize = 512 * 1024;
    const fileId = generateRandomLong();
    const parts = Math.max(1, Math.ceil(bytes.length / partSize));
    for (let part = 0; part < parts; part++) {
      await client.invoke(new Api.upload.SaveFilePart({ fileId, filePart: part, bytes: bytes.subarray(part * partSize, (part + 1) * partSize) }));
    }
    return new Api.InputFile({ id: fileId, parts, name: path.basename(file), md5Checksum: '' });
  }

  private async send(client: TelegramClient, peer: Api.TypeInputPeer, message: OutgoingMessage): Promise<number | null> {
    const randomId = generateRandomLong();
    const result = message.photoPath
      ? await client.invoke(
          new Api.messages.SendMedia({ peer, media: new Api.InputMediaUploadedPhoto({ file: await this.uploadPhoto(client, message.photoPath) }), message: message.text, randomId }),
        )
      : await client.invoke(new Api.messages.SendMessage({ peer, message: message.text, noWebpage: true, randomId }));
    return messageIdOf(result);
  }

  async post(group: GroupRef, message: OutgoingMessage): Promise<PostOutcome> {
    const client = this.clientOrFailure();
    if (!(client instanceof TelegramClient)) return client;
    if (message.photoPath) {
      try {
        const info = await stat(message.photoPath);
        if (info.size > 10 * 1024 * 1024) return { kind: 'message_invalid', error: `photo ${message.photoPath} is over 10 MB` };
      } catch {
        return { kind: 'misconfigured', error: `photo ${message.photoPath} cannot be read` };
      }
    }
    // A failed lookup says nothing sure about the group (a renamed group, a revoked invite we
    // joined through): never let it close the group for good.
    const lookupFailed = (failure: Failure): Failure =>
      failure.kind === 'link_dead' ? { kind: 'transient', error: `cannot find the group by its link (${failure.error})`, uncertain: false } : failure;
    let peer: Api.TypeInputPeer | Failure;
    try {
      peer = await this.peerFor(client, group);
    } catch (error) {
      return lookupFailed(asFailure(error, false));
    }
    if ('kind' in peer) return lookupFailed(peer);
    try {
      const messageId = await withTimeout(this.send(client, peer, message), this.timeouts.postMs, message.photoPath ? 'sendMedia' : 'sendMessage');
      return { kind: 'sent', messageId };
    } catch (error) {
      // Telegram's own error means it refused; anything else (a timeout, a dropped connection)
      // may have happened after the message went out.
      const failure = asFailure(error, true);
      if (failure.kind === 'transient') {
        if (failure.error === 'PEER_ID_INVALID') this.peers.delete(group.link);
        // Nothing the timed-out call started may carry on: the next action reconnects.
        if (failure.uncertain) await this.reset();
      }
      return failure;
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

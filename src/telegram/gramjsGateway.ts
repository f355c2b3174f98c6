/**
 * The real gateway: one GramJS TelegramClient per account, on its StringSession (Telethon
 * strings from the old system work as they are).
 *
 * - floodSleepThreshold 0: GramJS never sleeps through a FloodWait on its own; every wait comes
 *   back as an outcome, so the daemon can store it.
 * - Every call has a timeout; GramJS's own reconnects are bounded (connectionRetries). A client
 *   dropped after a failure is connected again by the next call, before it asks anything.
 * - Looking up: a username by contacts.ResolveUsername, an invite link by
 *   messages.CheckChatInvite (with the hash exactly as given): one request, nothing joined. What
 *   it found is kept in the session, so a join of the same link right after asks only to join.
 * - Joining: channels.JoinChannel for a username, messages.ImportChatInvite for an invite, after
 *   a lookup (the session's, else one made then). Only a failure of the join request itself can
 *   be uncertain; a failure while looking up asked Telegram for nothing.
 * - Posting: to the group's stored peer when it has one (its id and access hash: no lookup),
 *   else to the chat a lookup of its link finds (and then the outcome tells what was found, for
 *   the caller to store). Plain text (no parse mode, no link preview); a photo is uploaded part by
 *   part and sent with the text as its caption. The whole post (lookup, upload, send) has ONE
 *   deadline, timeouts.postMs: see postDeadlineMs.
 */

import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { Api, errors, TelegramClient, utils } from 'telegram';
import type { TelegramClientParams } from 'telegram/client/telegramBaseClient';
import { Logger as GramjsBaseLogger, LogLevel } from 'telegram/extensions/Logger';
import { generateRandomLong, returnBigInt } from 'telegram/Helpers';
import { StringSession } from 'telegram/sessions';
import { type GroupLink, parseGroupLink } from '../links';
import type { Logger } from '../logger';
import { POST_CALL_DEADLINE_MS } from '../sql/rules';
import { apiCredentialsOf, type GramjsProxy, ProxyError, parseProxy } from './accountSettings';
import { classifyTelegramError, describeTelegramError } from './errorTable';
import type { AccountCredentials, GroupRef, OutgoingMessage, TelegramGateway, TelegramSession } from './gateway';
import type { ChatIdentity, ConnectOutcome, Failure, JoinOutcome, LookupOutcome, PostOutcome } from './outcomes';

export interface GatewayTimeouts {
  /** connect(): the connection and the check that the session is alive, together. */
  connectMs: number;
  /** Each request of lookup() and join(). */
  joinMs: number;
  /**
   * The bound of a whole post() call: the lookup of the group (when it has no stored peer), the
   * photo's upload and the send, together. A post() call never takes longer than this (a client
   * dropped after it is destroyed in the background); the daemon relies on it to count a
   * delivery on the UTC day it lands.
   */
  postMs: number;
  disconnectMs: number;
}

/** postMs is the rules' bound on a post() call (rules.ts), which the midnight cut-off counts on. */
export const DEFAULT_TIMEOUTS: GatewayTimeouts = {
  connectMs: 30_000,
  joinMs: 30_000,
  postMs: POST_CALL_DEADLINE_MS,
  disconnectMs: 10_000,
};

/** What a TelegramClient for one account is made of, once the stored values are checked. */
export interface ClientSettings {
  apiId: number;
  apiHash: string;
  proxy: GramjsProxy | undefined;
  session: StringSession;
}

/**
 * The account's client settings, or why it cannot have a client: no API credentials, a proxy
 * GramJS cannot use (accountSettings.ts decides both), a session string that does not decode.
 * Needs no network (`lexus check` uses it too).
 */
export function clientSettingsOf(
  account: AccountCredentials,
  defaults: { apiId?: number | null; apiHash?: string | null },
): (ClientSettings & { ownCredentials: boolean }) | Failure {
  const credentials = apiCredentialsOf(account, defaults);
  if ('problem' in credentials) return { kind: 'misconfigured', error: credentials.problem };
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
  return { apiId: credentials.apiId, apiHash: credentials.apiHash, ownCredentials: credentials.own, proxy, session };
}

export type ClientFactory = (
  session: StringSession,
  apiId: number,
  apiHash: string,
  params: TelegramClientParams,
) => TelegramClient;

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
    else if (level === LogLevel.WARN && !/^(Disconnecting|Connection closed)/.test(text))
      this.target.warn(fields, text);
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

/** How long a step may take: each call on its own (`perCall`), or all of them together (`Deadline`). */
interface Bound {
  run<T>(work: () => Promise<T>, what: string): Promise<T>;
}

function perCall(ms: number): Bound {
  return { run: (work, what) => withTimeout(start(work), ms, what) };
}

/** Starts some work; a synchronous throw becomes a rejection. */
function start<T>(work: () => Promise<T>): Promise<T> {
  try {
    return work();
  } catch (error) {
    return Promise.reject(error);
  }
}

/**
 * One deadline for several steps: each runs within what is left of `ms`, and one that would
 * start after it is not started at all. The error names the step and the whole deadline.
 */
class Deadline implements Bound {
  private readonly end: number;

  constructor(readonly ms: number) {
    this.end = performance.now() + ms;
  }

  /** Throws the deadline's TimeoutError if it has passed. */
  check(what: string): void {
    if (performance.now() >= this.end) throw new TimeoutError(what, this.ms);
  }

  async run<T>(work: () => Promise<T>, what: string): Promise<T> {
    this.check(what);
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        start(work),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new TimeoutError(what, this.ms)), Math.max(0, this.end - performance.now()));
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }
}

const defaultClientFactory: ClientFactory = (session, apiId, apiHash, params) =>
  new TelegramClient(session, apiId, apiHash, params);

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
    if (
      (update instanceof Api.UpdateNewChannelMessage || update instanceof Api.UpdateNewMessage) &&
      'id' in update.message
    )
      return update.message.id;
  }
  return null;
}

function chatOf(updates: unknown): Chat | undefined {
  const chats = (updates as { chats?: unknown[] } | undefined)?.chats ?? [];
  return chats.find(isChat);
}

/** The chat as the daemon stores it: marked id, this account's access hash (channels only), title. */
function identityOf(chat: Chat): ChatIdentity {
  const accessHash = chat instanceof Api.Channel && chat.accessHash !== undefined ? chat.accessHash.toString() : null;
  return { telegramId: utils.getPeerId(chat), accessHash, title: chat.title };
}

/**
 * The input peer of a group's stored peer, built without asking Telegram: a marked -100… id is a
 * channel (it needs its access hash), any other negative id a basic group. Undefined when the
 * stored values cannot make one (then the link is looked up).
 */
export function storedInputPeer(group: GroupRef): Api.InputPeerChannel | Api.InputPeerChat | undefined {
  const id = group.telegramId;
  if (!id || !/^-\d+$/.test(id)) return undefined;
  const [bare, type] = utils.resolveId(returnBigInt(id));
  if (type === Api.PeerChannel) {
    if (!group.accessHash || !/^-?\d+$/.test(group.accessHash)) return undefined;
    return new Api.InputPeerChannel({ channelId: bare, accessHash: returnBigInt(group.accessHash) });
  }
  if (type === Api.PeerChat) return new Api.InputPeerChat({ chatId: bare });
  return undefined;
}

/** Keeps the failures of a classified error; join-only results make no sense after a post. */
function asFailure(error: unknown, uncertain: boolean): Failure {
  const outcome = classifyTelegramError(error, { uncertain });
  if (outcome.kind === 'already_member' || outcome.kind === 'join_request_pending') {
    return { kind: 'transient', error: describeTelegramError(error), uncertain };
  }
  return outcome;
}

/** What a lookup of a link answered: the chat a username names, or what an invite tells. */
type Resolved = { chat: Chat } | { invite: Api.TypeChatInvite };

/** A peer this session can post to, with what is known of its chat. */
interface KnownPeer {
  input: Api.TypeInputPeer;
  chat: ChatIdentity;
}

type Call = <R extends Api.AnyRequest>(request: R) => Promise<R['__response']>;

const BROADCAST: Failure = {
  kind: 'group_refuses',
  reason: 'read_only',
  error: 'a broadcast channel: members cannot post',
};

/** The chat a lookup's answer shows, if it shows one. */
function chatOfResolved(resolved: Resolved): Chat | undefined {
  if ('chat' in resolved) return resolved.chat;
  const { invite } = resolved;
  return !(invite instanceof Api.ChatInvite) && isChat(invite.chat) ? invite.chat : undefined;
}

/** What a lookup's answer means: the same decision for lookup() and join(). */
function lookupOutcomeOf(resolved: Resolved, link: GroupLink): LookupOutcome {
  if ('chat' in resolved) {
    const { chat } = resolved;
    if (isBroadcast(chat)) return BROADCAST;
    return { kind: 'found', chat: identityOf(chat), member: chat instanceof Api.Channel && chat.left === false };
  }
  const { invite } = resolved;
  if (invite instanceof Api.ChatInvite) {
    // Telegram does not tell which chat it is before joining.
    return isBroadcast(invite) ? BROADCAST : { kind: 'found', chat: null, member: false };
  }
  if (!isChat(invite.chat))
    return {
      kind: 'group_refuses',
      reason: 'private',
      error: `${link.link}: no access (the group banned or removed this account)`,
    };
  if (invite instanceof Api.ChatInviteAlready) return { kind: 'found', chat: identityOf(invite.chat), member: true };
  // ChatInvitePeek: a preview of a chat we are not in.
  if (isBroadcast(invite.chat)) return BROADCAST;
  return { kind: 'found', chat: identityOf(invite.chat), member: false };
}

class GramjsSession implements TelegramSession {
  private client: TelegramClient | undefined;
  /** Whether `client` was connected; a client built again after a reset is not. */
  private connected = false;
  /** disconnect() was called: no call of this session reaches Telegram any more. */
  private closed = false;
  /** Peers resolved in this session, by normalized link: ResolveUsername is rate-limited. */
  private readonly peers = new Map<string, KnownPeer>();
  /** What lookup() found, by normalized link, for a join() of that link right after. */
  private readonly resolved = new Map<string, Resolved>();
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

  /**
   * The client, built on first use; a Failure when this account cannot have one, or when the
   * session was disconnected: that is final, so a session its daemon closed (it lost the account)
   * never connects again behind its back.
   */
  private clientOrFailure(): TelegramClient | Failure {
    if (this.closed) return { kind: 'transient', error: 'the session was closed', uncertain: false };
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

  /**
   * Drops the client after a failure or a timeout, so nothing it started carries on. The client
   * is gone at once; its destruction may be left to finish in the background.
   */
  private async reset(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    this.connected = false;
    this.peers.clear();
    this.resolved.clear();
    if (client) await withTimeout(client.destroy(), this.timeouts.disconnectMs, 'disconnect').catch(() => undefined);
  }

  /** Connects a client this session has not connected (one built again after a reset). */
  private async ready(client: TelegramClient, bound: Bound): Promise<void> {
    if (this.connected) return;
    try {
      if ((await bound.run(() => client.connect(), 'connect')) === false)
        throw new Error('cannot reach Telegram (connection retries exhausted)');
    } catch (error) {
      void this.reset();
      throw error;
    }
    this.connected = true;
  }

  async connect(): Promise<ConnectOutcome> {
    const client = this.clientOrFailure();
    if (!(client instanceof TelegramClient)) return client;
    try {
      // One deadline for the whole connection. GramJS's connect() answers false (it does not
      // throw) when its retries ran out.
      const me = await withTimeout(
        (async () => {
          if ((await client.connect()) === false)
            throw new Error('cannot reach Telegram (connection retries exhausted)');
          return client.getMe();
        })(),
        this.timeouts.connectMs,
        'connect',
      );
      this.connected = true;
      return { kind: 'connected', userId: String(me.id), username: me.username ?? null };
    } catch (error) {
      await this.reset();
      return asFailure(error, false);
    }
  }

  private caller(client: TelegramClient, bound: Bound): Call {
    return (request) => bound.run(() => client.invoke(request), request.className);
  }

  /** The group a username names, or a link_dead failure (free, a user, a bot). */
  private async resolveUsername(call: Call, username: string): Promise<Chat | Failure> {
    const resolved = await call(new Api.contacts.ResolveUsername({ username }));
    if (resolved.peer instanceof Api.PeerUser) return { kind: 'link_dead', error: `@${username} is not a group` };
    const peerId =
      resolved.peer instanceof Api.PeerChannel
        ? resolved.peer.channelId
        : resolved.peer instanceof Api.PeerChat
          ? resolved.peer.chatId
          : undefined;
    const match = resolved.chats.find((c) => peerId !== undefined && 'id' in c && c.id.equals(peerId));
    if (match instanceof Api.ChannelForbidden || match instanceof Api.ChatForbidden) {
      return {
        kind: 'group_refuses',
        reason: 'private',
        error: `@${username}: no access (the group banned or removed this account)`,
      };
    }
    const chat = isChat(match) ? match : resolved.chats.find(isChat);
    if (!chat) return { kind: 'link_dead', error: `@${username} is not a group` };
    return chat;
  }

  /** One request: what Telegram says of a link, without joining. */
  private async resolve(call: Call, link: GroupLink): Promise<Resolved | Failure> {
    if (link.kind === 'username') {
      const chat = await this.resolveUsername(call, link.username);
      return 'kind' in chat ? chat : { chat };
    }
    return { invite: await call(new Api.messages.CheckChatInvite({ hash: link.hash })) };
  }

  /** Remembers a chat this session can post to, under its link. */
  private remember(link: string, chat: Chat): KnownPeer {
    const known = { input: utils.getInputPeer(chat), chat: identityOf(chat) };
    this.peers.set(link, known);
    return known;
  }

  /** The client and the parsed link of a group to look up or join, or why there can be none. */
  private clientAndLink(group: GroupRef): { client: TelegramClient; link: GroupLink } | Failure {
    const client = this.clientOrFailure();
    if (!(client instanceof TelegramClient)) return client;
    try {
      return { client, link: parseGroupLink(group.link) };
    } catch (error) {
      return { kind: 'link_dead', error: (error as Error).message };
    }
  }

  async lookup(group: GroupRef): Promise<LookupOutcome> {
    const target = this.clientAndLink(group);
    if ('kind' in target) return target;
    const { client, link } = target;
    this.resolved.delete(link.link);
    const bound = perCall(this.timeouts.joinMs);
    try {
      await this.ready(client, bound);
      const resolved = await this.resolve(this.caller(client, bound), link);
      if ('kind' in resolved) return resolved;
      const outcome = lookupOutcomeOf(resolved, link);
      this.resolved.set(link.link, resolved);
      const chat = chatOfResolved(resolved);
      // What a post would look up anyway: a username's chat, an invite's chat we are in.
      if (outcome.kind === 'found' && chat && ('chat' in resolved || outcome.member)) this.remember(link.link, chat);
      return outcome;
    } catch (error) {
      // A lookup changes nothing on Telegram: never uncertain.
      return asFailure(error, false);
    }
  }

  async join(group: GroupRef): Promise<JoinOutcome> {
    const target = this.clientAndLink(group);
    if ('kind' in target) return target;
    const { client, link } = target;
    const bound = perCall(this.timeouts.joinMs);
    const call = this.caller(client, bound);
    // First what the link leads to (what lookup() found just before, else asked now). Nothing
    // has been asked to join yet: a failure here is never uncertain.
    let request: Api.channels.JoinChannel | Api.messages.ImportChatInvite;
    let known: Chat | undefined;
    try {
      await this.ready(client, bound);
      const cached = this.resolved.get(link.link);
      this.resolved.delete(link.link);
      const resolved = cached ?? (await this.resolve(call, link));
      if ('kind' in resolved) return resolved;
      const outcome = lookupOutcomeOf(resolved, link);
      if (outcome.kind !== 'found') return outcome;
      known = chatOfResolved(resolved);
      if (outcome.member && known) {
        this.remember(link.link, known);
        return { kind: 'already_member', ...identityOf(known) };
      }
      request =
        'chat' in resolved
          ? new Api.channels.JoinChannel({ channel: utils.getInputChannel(resolved.chat) })
          : new Api.messages.ImportChatInvite({ hash: (link as Extract<GroupLink, { kind: 'invite' }>).hash });
    } catch (error) {
      return asFailure(error, false);
    }
    try {
      const updates = await call(request);
      const joined = chatOf(updates) ?? known;
      if (!joined) return { kind: 'joined', telegramId: null, title: null, accessHash: null };
      const identity = identityOf(joined);
      // The join's answer may show the channel without its hash; the lookup had it.
      if (identity.accessHash === null && known instanceof Api.Channel && known.id.equals(joined.id))
        identity.accessHash = identityOf(known).accessHash;
      this.remember(link.link, joined);
      return { kind: 'joined', ...identity };
    } catch (error) {
      // Only the join request itself may have taken effect unseen. A join is safe to try again:
      // Telegram answers USER_ALREADY_PARTICIPANT the second time.
      const outcome = classifyTelegramError(error, { uncertain: true });
      if (outcome.kind === 'already_member' && known) return { kind: 'already_member', ...identityOf(known) };
      if (outcome.kind === 'transient' && outcome.uncertain) await this.reset();
      return outcome;
    }
  }

  /** The peer to post to when the group has no stored peer: from this session's cache, else looked up. */
  private async peerFor(call: Call, link: GroupLink): Promise<KnownPeer | Failure> {
    const cached = this.peers.get(link.link);
    if (cached) return cached;
    if (link.kind === 'username') {
      const chat = await this.resolveUsername(call, link.username);
      if ('kind' in chat) return chat;
      return this.remember(link.link, chat);
    }
    const invite = await call(new Api.messages.CheckChatInvite({ hash: link.hash }));
    if (!(invite instanceof Api.ChatInviteAlready) || !isChat(invite.chat)) {
      return { kind: 'group_refuses', reason: 'removed', error: 'no longer a member of this private group' };
    }
    return this.remember(link.link, invite.chat);
  }

  /**
   * Uploads a photo through invoke() on the main connection, part by part. (GramJS's sendFile
   * uploads over a second connection whose loop sleeps through FloodWaits and retries behind a
   * timeout; invoke() reports every wait.)
   */
  private async uploadPhoto(client: TelegramClient, file: string, bound: Bound): Promise<Api.InputFile> {
    const bytes = await bound.run(() => readFile(file), 'reading the photo');
    const partSize = 512 * 1024;
    const fileId = generateRandomLong();
    const parts = Math.max(1, Math.ceil(bytes.length / partSize));
    for (let part = 0; part < parts; part++) {
      const request = new Api.upload.SaveFilePart({
        fileId,
        filePart: part,
        bytes: bytes.subarray(part * partSize, (part + 1) * partSize),
      });
      await bound.run(() => client.invoke(request), 'upload.SaveFilePart');
    }
    return new Api.InputFile({ id: fileId, parts, name: path.basename(file), md5Checksum: '' });
  }

  /**
   * Posts within ONE deadline, timeouts.postMs, for everything: the lookup (when the group has
   * no stored peer), the photo's upload and the send (see postDeadlineMs). Only a failure of the
   * send itself can be uncertain.
   */
  async post(group: GroupRef, message: OutgoingMessage): Promise<PostOutcome> {
    const deadline = new Deadline(this.timeouts.postMs);
    const client = this.clientOrFailure();
    if (!(client instanceof TelegramClient)) return client;
    if (message.photoPath) {
      try {
        const info = await deadline.run(() => stat(message.photoPath!), 'reading the photo');
        if (info.size > 10 * 1024 * 1024)
          return { kind: 'message_invalid', error: `photo ${message.photoPath} is over 10 MB` };
      } catch (error) {
        if (error instanceof TimeoutError) return { kind: 'transient', error: error.message, uncertain: false };
        return { kind: 'misconfigured', error: `photo ${message.photoPath} cannot be read` };
      }
    }
    // A failed lookup says nothing sure about the group (a renamed group, a revoked invite we
    // joined through): never let it close the group for good.
    const lookupFailed = (failure: Failure): Failure =>
      failure.kind === 'link_dead'
        ? { kind: 'transient', error: `cannot find the group by its link (${failure.error})`, uncertain: false }
        : failure;
    const stored = storedInputPeer(group);
    const call = this.caller(client, deadline);
    let phase: 'lookup' | 'upload' | 'send' = 'lookup';
    let link: GroupLink | undefined;
    try {
      await this.ready(client, deadline);
      let peer: Api.TypeInputPeer;
      let chat: ChatIdentity | undefined;
      if (stored) {
        peer = stored;
      } else {
        link = parseGroupLink(group.link);
        const known = await this.peerFor(call, link);
        if ('kind' in known) return lookupFailed(known);
        peer = known.input;
        chat = known.chat;
      }
      phase = 'upload';
      const media = message.photoPath
        ? new Api.InputMediaUploadedPhoto({ file: await this.uploadPhoto(client, message.photoPath, deadline) })
        : undefined;
      const what = media ? 'sendMedia' : 'sendMessage';
      deadline.check(what); // a send that would start too late is not started
      phase = 'send';
      const randomId = generateRandomLong();
      const result = await deadline.run(
        () =>
          media
            ? client.invoke(new Api.messages.SendMedia({ peer, media, message: message.text, randomId }))
            : client.invoke(new Api.messages.SendMessage({ peer, message: message.text, noWebpage: true, randomId })),
        what,
      );
      return { kind: 'sent', messageId: messageIdOf(result), ...(chat ? { chat } : {}) };
    } catch (error) {
      // Nothing went out before the send: a failure then is sure.
      if (phase === 'lookup') return lookupFailed(asFailure(error, false));
      if (phase === 'upload') return asFailure(error, false);
      const text = describeTelegramError(error);
      if (stored && error instanceof errors.RPCError && (text === 'CHANNEL_INVALID' || text === 'PEER_ID_INVALID')) {
        // The stored peer no longer leads to the chat; nothing was sent.
        return { kind: 'peer_invalid', error: text };
      }
      // Telegram's own error means it refused; anything else (a timeout, a dropped connection)
      // may have happened after the message went out.
      const failure = asFailure(error, true);
      if (failure.kind === 'transient') {
        // A peer this session looked up that Telegram no longer takes: looked up again next time.
        if (failure.error === 'PEER_ID_INVALID' && link) this.peers.delete(link.link);
        // Nothing the timed-out call started may carry on: the next action reconnects. Not
        // awaited: the post's deadline holds.
        if (failure.uncertain) void this.reset();
      }
      return failure;
    }
  }

  async disconnect(): Promise<void> {
    this.closed = true;
    const client = this.client;
    this.client = undefined;
    this.connected = false;
    this.peers.clear();
    this.resolved.clear();
    if (!client) return;
    try {
      await withTimeout(client.destroy(), this.timeouts.disconnectMs, 'disconnect');
    } catch (error) {
      this.log.warn(
        { event: 'telegram.disconnect_failed', error: describeTelegramError(error) },
        'disconnect did not finish cleanly',
      );
    }
  }
}

export class GramjsGateway implements TelegramGateway {
  constructor(private readonly options: GramjsGatewayOptions) {}

  session(account: AccountCredentials): TelegramSession {
    return new GramjsSession(account, this.options);
  }
}

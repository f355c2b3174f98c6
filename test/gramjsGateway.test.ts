/**
 * The GramJS adapter, offline: a real TelegramClient whose network calls (invoke, and the
 * sender that uploads files) are replaced by a recorder answering with GramJS's own TL objects.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import bigInt from 'big-integer';
import { Api, errors, TelegramClient } from 'telegram';
import { LogLevel } from 'telegram/extensions/Logger';
import { describe, expect, it } from 'vitest';
import { encodeTelethonStringSession } from '../src/import/telethonSession';
import { createLogger } from '../src/logger';
import { POST_CALL_DEADLINE_MS, SEND_DEADLINE_MS } from '../src/sql/rules';
import type { AccountCredentials } from '../src/telegram/gateway';
import { DEFAULT_TIMEOUTS, type GatewayTimeouts, GramjsGateway, GramjsLogger } from '../src/telegram/gramjsGateway';

const PHOTO = path.resolve(__dirname, '../examples/lexus_assets/lexus_variant_1.jpg');
const SESSION = encodeTelethonStringSession({
  dcId: 2,
  serverAddress: '149.154.167.51',
  port: 443,
  authKey: Buffer.alloc(256, 7),
});
const ACCOUNT: AccountCredentials = {
  sessionName: 'lexus_kyiv_1',
  sessionString: SESSION,
  apiId: 1234567,
  apiHash: '0123456789abcdef0123456789abcdef',
  proxy: null,
};

const channel = (id: number, fields: Partial<ConstructorParameters<typeof Api.Channel>[0]> = {}) =>
  new Api.Channel({
    id: bigInt(id),
    accessHash: bigInt(987654321),
    title: `Group ${id}`,
    photo: new Api.ChatPhotoEmpty(),
    date: 0,
    megagroup: true,
    left: true,
    ...fields,
  });
const updatesWith = (chat: Api.Channel) => new Api.Updates({ updates: [], users: [], chats: [chat], date: 0, seq: 0 });
const resolvedTo = (chat: Api.Channel | Api.ChannelForbidden | Api.Chat) =>
  new Api.contacts.ResolvedPeer({
    peer:
      chat instanceof Api.Chat ? new Api.PeerChat({ chatId: chat.id }) : new Api.PeerChannel({ channelId: chat.id }),
    chats: [chat],
    users: [],
  });
const invite = (fields: Partial<ConstructorParameters<typeof Api.ChatInvite>[0]> = {}) =>
  new Api.ChatInvite({
    title: 'Private cars',
    photo: new Api.PhotoEmpty({ id: bigInt(0) }),
    participantsCount: 100,
    megagroup: true,
    color: 0,
    ...fields,
  });
const rpcError = (code: number, message: string, request: Api.AnyRequest) =>
  errors.RPCMessageToError(new Api.RpcError({ errorCode: code, errorMessage: message }), request);
const answerAfter = <T>(ms: number, value: T) => new Promise<T>((resolve) => setTimeout(() => resolve(value), ms));
const sent = (id: number) => new Api.UpdateShortSentMessage({ id, pts: 1, ptsCount: 1, date: 0, out: true });
const names = (requests: Api.AnyRequest[]) => requests.map((r) => r.className);

type Answer = (request: Api.AnyRequest) => unknown;

function harness(
  answer: Answer,
  options: {
    timeouts?: Partial<GatewayTimeouts>;
    account?: Partial<AccountCredentials>;
    logLines?: string[];
    connect?: () => Promise<boolean>;
  } = {},
) {
  const destroyed: TelegramClient[] = [];
  const requests: Api.AnyRequest[] = [];
  const clients: TelegramClient[] = [];
  const record = async (request: Api.AnyRequest) => {
    requests.push(request);
    const result = answer(request);
    if (result instanceof Error) throw result;
    return result;
  };
  const destination = new Writable({
    write(chunk, _e, done) {
      options.logLines?.push(String(chunk));
      done();
    },
  });
  const gateway = new GramjsGateway({
    log: createLogger({ level: 'trace', destination }),
    timeouts: options.timeouts ?? {},
    createClient: (session, apiId, apiHash, params) => {
      const client = new TelegramClient(session, apiId, apiHash, params);
      // The network: no socket is opened, every request is recorded and answered.
      client.connect = options.connect ?? (async () => true);
      client.invoke = record as TelegramClient['invoke'];
      client.getSender = (async () => ({
        send: record,
        isConnected: () => true,
      })) as unknown as TelegramClient['getSender'];
      client.destroy = async () => {
        destroyed.push(client);
      };
      clients.push(client);
      return client;
    },
  });
  const session = gateway.session({ ...ACCOUNT, ...options.account });
  return { session, requests, clients, destroyed };
}

const me = () => [new Api.User({ id: bigInt(42), accessHash: bigInt(1), self: true, username: 'lexus_seller' })];

describe('the GramJS gateway', () => {
  it("builds the client on the account's Telethon string session, never sleeping through a FloodWait", async () => {
    const { session, clients, requests } = harness((r) => (r instanceof Api.users.GetUsers ? me() : undefined));
    expect(await session.connect()).toEqual({ kind: 'connected', userId: '42', username: 'lexus_seller' });
    const client = clients[0]!;
    expect(client.floodSleepThreshold).toBe(0);
    expect(client.session.dcId).toBe(2);
    expect(client.session.serverAddress).toBe('149.154.167.51');
    await client.session.load(); // what TelegramClient.connect does first
    expect(client.session.getAuthKey()?.getKey()).toEqual(Buffer.alloc(256, 7));
    expect(requests.map((r) => r.className)).toEqual(['users.GetUsers']);
  });

  it('a dead session is an outcome, not an exception', async () => {
    const { session } = harness(() =>
      errors.RPCMessageToError(
        new Api.RpcError({ errorCode: 401, errorMessage: 'AUTH_KEY_UNREGISTERED' }),
        new Api.users.GetUsers({ id: [] }),
      ),
    );
    expect(await session.connect()).toEqual({ kind: 'session_dead', error: 'AUTH_KEY_UNREGISTERED' });
  });

  it('joins a username with contacts.ResolveUsername then channels.JoinChannel', async () => {
    const { session, requests } = harness((r) => {
      if (r instanceof Api.contacts.ResolveUsername)
        return new Api.contacts.ResolvedPeer({
          peer: new Api.PeerChannel({ channelId: bigInt(1234567890) }),
          chats: [channel(1234567890)],
          users: [],
        });
      if (r instanceof Api.channels.JoinChannel)
        return updatesWith(channel(1234567890, { left: false, title: 'Авторинок Україна' }));
      return me();
    });
    await session.connect();
    expect(await session.join({ link: '@autobazar_ua' })).toEqual({
      kind: 'joined',
      telegramId: '-1001234567890',
      title: 'Авторинок Україна',
      accessHash: '987654321',
    });
    const [, resolve, join] = requests;
    expect(resolve).toBeInstanceOf(Api.contacts.ResolveUsername);
    expect((resolve as Api.contacts.ResolveUsername).username).toBe('autobazar_ua');
    expect(join).toBeInstanceOf(Api.channels.JoinChannel);
    const input = (join as Api.channels.JoinChannel).channel as Api.InputChannel;
    expect([input.className, input.channelId.toString(), input.accessHash.toString()]).toEqual([
      'InputChannel',
      '1234567890',
      '987654321',
    ]);
  });

  it('a username that is a user, or a broadcast channel, is not joined', async () => {
    const { session, requests } = harness((r) => {
      if (r instanceof Api.contacts.ResolveUsername && r.username === 'some_person') {
        return new Api.contacts.ResolvedPeer({
          peer: new Api.PeerUser({ userId: bigInt(5) }),
          chats: [],
          users: [new Api.User({ id: bigInt(5) })],
        });
      }
      if (r instanceof Api.contacts.ResolveUsername) {
        return new Api.contacts.ResolvedPeer({
          peer: new Api.PeerChannel({ channelId: bigInt(9) }),
          chats: [channel(9, { megagroup: false, broadcast: true })],
          users: [],
        });
      }
      return me();
    });
    expect(await session.join({ link: '@some_person' })).toEqual({
      kind: 'link_dead',
      error: '@some_person is not a group',
    });
    expect(await session.join({ link: '@news_channel' })).toMatchObject({ kind: 'group_refuses', reason: 'read_only' });
    expect(requests.some((r) => r instanceof Api.channels.JoinChannel)).toBe(false);
  });

  it('joins an invite link with messages.ImportChatInvite and the hash byte for byte', async () => {
    const { session, requests } = harness((r) => {
      if (r instanceof Api.messages.CheckChatInvite)
        return new Api.ChatInvite({
          title: 'Private cars',
          photo: new Api.PhotoEmpty({ id: bigInt(0) }),
          participantsCount: 100,
          megagroup: true,
          color: 0,
        });
      if (r instanceof Api.messages.ImportChatInvite)
        return updatesWith(channel(777, { left: false, title: 'Private cars' }));
      return me();
    });
    expect(await session.join({ link: 'https://t.me/+Xk3bQp9LmN2wZr7T' })).toEqual({
      kind: 'joined',
      telegramId: '-100777',
      title: 'Private cars',
      accessHash: '987654321',
    });
    const hashes = requests.map((r) =>
      r instanceof Api.messages.CheckChatInvite || r instanceof Api.messages.ImportChatInvite
        ? [r.className, r.hash]
        : null,
    );
    expect(hashes).toEqual([
      ['messages.CheckChatInvite', 'Xk3bQp9LmN2wZr7T'],
      ['messages.ImportChatInvite', 'Xk3bQp9LmN2wZr7T'],
    ]);
  });

  it('an invite to a group we are in already is not imported again', async () => {
    const { session, requests } = harness((r) =>
      r instanceof Api.messages.CheckChatInvite
        ? new Api.ChatInviteAlready({ chat: channel(778, { left: false }) })
        : me(),
    );
    expect(await session.join({ link: 'https://t.me/+Hj5dKs8PqW1vTy4U' })).toEqual({
      kind: 'already_member',
      telegramId: '-100778',
      title: 'Group 778',
      accessHash: '987654321',
    });
    expect(requests.map((r) => r.className)).toEqual(['messages.CheckChatInvite']);
  });

  it("Telegram's errors on join become outcomes, with the wait carried", async () => {
    const { session } = harness((r) => {
      if (r instanceof Api.messages.CheckChatInvite)
        return new Api.ChatInvite({
          title: 'x',
          photo: new Api.PhotoEmpty({ id: bigInt(0) }),
          participantsCount: 1,
          megagroup: true,
          requestNeeded: true,
          color: 0,
        });
      if (r instanceof Api.messages.ImportChatInvite)
        return errors.RPCMessageToError(new Api.RpcError({ errorCode: 400, errorMessage: 'INVITE_REQUEST_SENT' }), r);
      if (r instanceof Api.contacts.ResolveUsername)
        return errors.RPCMessageToError(new Api.RpcError({ errorCode: 420, errorMessage: 'FLOOD_WAIT_1800' }), r);
      return me();
    });
    expect(await session.join({ link: 'https://t.me/+Xk3bQp9LmN2wZr7T' })).toEqual({
      kind: 'join_request_pending',
      error: 'INVITE_REQUEST_SENT',
    });
    expect(await session.join({ link: '@autobazar_ua' })).toEqual({
      kind: 'account_flood_wait',
      seconds: 1800,
      error: 'FLOOD_WAIT_1800',
    });
  });

  it('posts a photo: the file is uploaded, then sent as media with the text as its plain caption', async () => {
    const caption = 'Продається Lexus IS 250 — **9 800 $**, торг';
    const { session, requests } = harness((r) => {
      if (r instanceof Api.contacts.ResolveUsername)
        return new Api.contacts.ResolvedPeer({
          peer: new Api.PeerChannel({ channelId: bigInt(55) }),
          chats: [channel(55, { left: false })],
          users: [],
        });
      if (r instanceof Api.upload.SaveFilePart) return true;
      if (r instanceof Api.messages.SendMedia)
        return new Api.UpdateShortSentMessage({ id: 3141, pts: 1, ptsCount: 1, date: 0, out: true });
      return me();
    });
    await session.connect();
    expect(await session.post({ link: '@autobazar_ua' }, { text: caption, photoPath: PHOTO })).toMatchObject({
      kind: 'sent',
    });
    const parts = requests.filter((r): r is Api.upload.SaveFilePart => r instanceof Api.upload.SaveFilePart);
    expect(Buffer.concat(parts.map((p) => p.bytes))).toEqual(readFileSync(PHOTO));
    const send = requests.find((r): r is Api.messages.SendMedia => r instanceof Api.messages.SendMedia)!;
    expect(send.media).toBeInstanceOf(Api.InputMediaUploadedPhoto);
    expect(send.message).toBe(caption);
    expect(send.entities ?? []).toEqual([]);
    expect((send.peer as Api.InputPeerChannel).channelId.toString()).toBe('55');
  });

  it('posts text as it is: no parse mode, no link preview', async () => {
    const text = 'Lexus IS 250, **торг**, [фото](https://example.com)';
    const { session, requests } = harness((r) => {
      if (r instanceof Api.contacts.ResolveUsername)
        return new Api.contacts.ResolvedPeer({
          peer: new Api.PeerChannel({ channelId: bigInt(56) }),
          chats: [channel(56, { left: false })],
          users: [],
        });
      if (r instanceof Api.messages.SendMessage)
        return new Api.UpdateShortSentMessage({ id: 2718, pts: 1, ptsCount: 1, date: 0, out: true });
      return me();
    });
    expect(await session.post({ link: '@kyiv_premium_auto' }, { text, photoPath: null })).toEqual({
      kind: 'sent',
      messageId: 2718,
      chat: { telegramId: '-10056', accessHash: '987654321', title: 'Group 56' },
    });
    const send = requests.find((r): r is Api.messages.SendMessage => r instanceof Api.messages.SendMessage)!;
    expect([send.message, send.entities ?? [], send.noWebpage]).toEqual([text, [], true]);
  });

  it('a refusal on send is an outcome; a group already resolved is not resolved again', async () => {
    let sends = 0;
    const { session, requests } = harness((r) => {
      if (r instanceof Api.contacts.ResolveUsername)
        return new Api.contacts.ResolvedPeer({
          peer: new Api.PeerChannel({ channelId: bigInt(57) }),
          chats: [channel(57, { left: false })],
          users: [],
        });
      if (r instanceof Api.messages.SendMessage) {
        sends++;
        return errors.RPCMessageToError(
          new Api.RpcError({
            errorCode: sends === 1 ? 420 : 403,
            errorMessage: sends === 1 ? 'SLOWMODE_WAIT_60' : 'CHAT_WRITE_FORBIDDEN',
          }),
          r,
        );
      }
      return me();
    });
    expect(await session.post({ link: '@g_one' }, { text: 'x', photoPath: null })).toEqual({
      kind: 'group_slow_mode',
      seconds: 60,
      error: 'SLOWMODE_WAIT_60',
    });
    expect(await session.post({ link: '@g_one' }, { text: 'x', photoPath: null })).toEqual({
      kind: 'group_refuses',
      reason: 'read_only',
      error: 'CHAT_WRITE_FORBIDDEN',
    });
    expect(requests.filter((r) => r instanceof Api.contacts.ResolveUsername)).toHaveLength(1);
  });

  it("a call that never answers times out: transient; uncertain for a post's send (it may have gone out), not for a lookup", async () => {
    const never = new Promise(() => undefined);
    const { session } = harness(
      (r) => {
        if (r instanceof Api.contacts.ResolveUsername)
          return new Api.contacts.ResolvedPeer({
            peer: new Api.PeerChannel({ channelId: bigInt(58) }),
            chats: [channel(58, { left: false })],
            users: [],
          });
        if (r instanceof Api.users.GetUsers) return me();
        return never;
      },
      { timeouts: { joinMs: 500, postMs: 500, connectMs: 500 } },
    );
    expect(await session.join({ link: 'https://t.me/+Xk3bQp9LmN2wZr7T' })).toEqual({
      kind: 'transient',
      error: 'messages.CheckChatInvite timed out after 500 ms',
      uncertain: false,
    });
    expect(await session.post({ link: '@slow_group' }, { text: 'x', photoPath: null })).toEqual({
      kind: 'transient',
      error: 'sendMessage timed out after 500 ms',
      uncertain: true,
    });
  });

  it('refuses to start without API credentials, with an HTTP proxy, or without the photo', async () => {
    const noKeys = harness(() => me(), { account: { apiId: null, apiHash: null } });
    expect(await noKeys.session.connect()).toMatchObject({
      kind: 'misconfigured',
      error: expect.stringContaining('TG_API_ID'),
    });
    const http = harness(() => me(), { account: { proxy: 'http://user:SECRET@proxy.example:8080' } });
    const outcome = await http.session.connect();
    expect(outcome).toMatchObject({ kind: 'misconfigured', error: expect.stringContaining('cannot use a HTTP proxy') });
    expect(JSON.stringify(outcome)).not.toContain('SECRET');
    const socks = harness(() => me(), { account: { proxy: 'socks5://user:pw@127.0.0.1:1080' } });
    expect(await socks.session.connect()).toMatchObject({ kind: 'connected' });
    const missing = harness(() => me());
    expect(
      await missing.session.post({ link: '@g_one' }, { text: 'x', photoPath: '/nonexistent/photo.jpg' }),
    ).toMatchObject({ kind: 'misconfigured' });
  });

  it("routes GramJS's own log lines into ours, and never lets it print raw errors itself", async () => {
    const lines: string[] = [];
    const { session, clients } = harness(() => me(), { logLines: lines });
    await session.connect();
    const gramjsLog = (clients[0] as unknown as { _log: GramjsLogger })._log;
    expect(gramjsLog).toBeInstanceOf(GramjsLogger);
    // GramJS prints error objects with console.error only when its logger "can send" errors.
    expect(gramjsLog.canSend(LogLevel.ERROR)).toBe(false);
    gramjsLog.warn('Unexpected answer from the server');
    gramjsLog.warn('Disconnecting from 149.154.167.51');
    gramjsLog.error('Socket closed');
    const entries = lines.map((l) => JSON.parse(l));
    expect(entries.find((l) => l.msg === 'Unexpected answer from the server')).toMatchObject({
      level: 'warn',
      event: 'gramjs',
      account: 'lexus_kyiv_1',
    });
    expect(entries.find((l) => l.msg === 'Disconnecting from 149.154.167.51')).toMatchObject({ level: 'debug' });
    expect(entries.find((l) => l.msg === 'Socket closed')).toMatchObject({ level: 'error' });
  });

  it('a FloodWait while uploading the photo is reported, not slept through', async () => {
    const { session, requests } = harness((r) => {
      if (r instanceof Api.contacts.ResolveUsername)
        return new Api.contacts.ResolvedPeer({
          peer: new Api.PeerChannel({ channelId: bigInt(60) }),
          chats: [channel(60, { left: false })],
          users: [],
        });
      if (r instanceof Api.upload.SaveFilePart)
        return errors.RPCMessageToError(new Api.RpcError({ errorCode: 420, errorMessage: 'FLOOD_WAIT_2' }), r);
      return me();
    });
    expect(await session.post({ link: '@g_one' }, { text: 'x', photoPath: PHOTO })).toEqual({
      kind: 'account_flood_wait',
      seconds: 2,
      error: 'FLOOD_WAIT_2',
    });
    expect(requests.some((r) => r instanceof Api.messages.SendMedia)).toBe(false);
  });

  it('a connection GramJS gives up on is transient, and the client is dropped', async () => {
    const { session, clients, destroyed } = harness(() => me(), { connect: async () => false });
    expect(await session.connect()).toEqual({
      kind: 'transient',
      error: 'cannot reach Telegram (connection retries exhausted)',
      uncertain: false,
    });
    expect(destroyed).toEqual([clients[0]]);
    // The next attempt builds a new client.
    await session.connect();
    expect(clients).toHaveLength(2);
  });

  it('a post that timed out drops the client, so nothing it started carries on', async () => {
    const { session, clients, destroyed } = harness(
      (r) => {
        if (r instanceof Api.contacts.ResolveUsername)
          return new Api.contacts.ResolvedPeer({
            peer: new Api.PeerChannel({ channelId: bigInt(62) }),
            chats: [channel(62, { left: false })],
            users: [],
          });
        if (r instanceof Api.messages.SendMessage) return new Promise(() => undefined);
        return me();
      },
      { timeouts: { postMs: 500 } },
    );
    await session.connect();
    expect(await session.post({ link: '@g_one' }, { text: 'x', photoPath: null })).toMatchObject({
      kind: 'transient',
      uncertain: true,
    });
    expect(destroyed).toEqual([clients[0]]);
  });

  it('a lookup that fails while posting never closes the group; a stale peer is looked up again', async () => {
    let resolves = 0;
    const { session } = harness((r) => {
      if (r instanceof Api.contacts.ResolveUsername) {
        resolves++;
        if (r.username === 'renamed_group')
          return errors.RPCMessageToError(
            new Api.RpcError({ errorCode: 400, errorMessage: 'USERNAME_NOT_OCCUPIED' }),
            r,
          );
        return new Api.contacts.ResolvedPeer({
          peer: new Api.PeerChannel({ channelId: bigInt(61) }),
          chats: [channel(61, { left: false })],
          users: [],
        });
      }
      if (r instanceof Api.messages.SendMessage)
        return errors.RPCMessageToError(new Api.RpcError({ errorCode: 400, errorMessage: 'PEER_ID_INVALID' }), r);
      return me();
    });
    expect(await session.post({ link: '@renamed_group' }, { text: 'x', photoPath: null })).toEqual({
      kind: 'transient',
      error: 'cannot find the group by its link (USERNAME_NOT_OCCUPIED)',
      uncertain: false,
    });
    expect(await session.post({ link: '@g_two' }, { text: 'x', photoPath: null })).toEqual({
      kind: 'transient',
      error: 'PEER_ID_INVALID',
      uncertain: false,
    });
    await session.post({ link: '@g_two' }, { text: 'x', photoPath: null });
    expect(resolves).toBe(3);
  });

  describe('lookup', () => {
    it('looks a username up with one contacts.ResolveUsername, joining nothing: the chat, its access hash, and whether we are in', async () => {
      const { session, requests } = harness((r) => {
        if (r instanceof Api.contacts.ResolveUsername && r.username === 'autobazar_ua')
          return resolvedTo(channel(1234567890, { title: 'Авторинок', accessHash: bigInt('-5512345678901234567') }));
        if (r instanceof Api.contacts.ResolveUsername) return resolvedTo(channel(1234567891, { left: false }));
        return me();
      });
      expect(await session.lookup({ link: '@autobazar_ua' })).toEqual({
        kind: 'found',
        chat: { telegramId: '-1001234567890', accessHash: '-5512345678901234567', title: 'Авторинок' },
        member: false,
      });
      expect(await session.lookup({ link: '@kyiv_cars' })).toEqual({
        kind: 'found',
        chat: { telegramId: '-1001234567891', accessHash: '987654321', title: 'Group 1234567891' },
        member: true,
      });
      expect(names(requests)).toEqual(['contacts.ResolveUsername', 'contacts.ResolveUsername']);
      expect((requests[0] as Api.contacts.ResolveUsername).username).toBe('autobazar_ua');
    });

    it('a basic group is found with no access hash', async () => {
      const basic = new Api.Chat({
        id: bigInt(4242),
        title: 'Old group',
        photo: new Api.ChatPhotoEmpty(),
        participantsCount: 10,
        date: 0,
        version: 1,
      });
      const { session } = harness((r) => (r instanceof Api.contacts.ResolveUsername ? resolvedTo(basic) : me()));
      expect(await session.lookup({ link: '@old_group' })).toEqual({
        kind: 'found',
        chat: { telegramId: '-4242', accessHash: null, title: 'Old group' },
        member: false,
      });
    });

    it('a username that is a user, a broadcast channel or a chat that shut us out is not a group we can use', async () => {
      const { session, requests } = harness((r) => {
        if (!(r instanceof Api.contacts.ResolveUsername)) return me();
        if (r.username === 'some_person')
          return new Api.contacts.ResolvedPeer({
            peer: new Api.PeerUser({ userId: bigInt(5) }),
            chats: [],
            users: [new Api.User({ id: bigInt(5) })],
          });
        if (r.username === 'news_channel') return resolvedTo(channel(9, { megagroup: false, broadcast: true }));
        return resolvedTo(new Api.ChannelForbidden({ id: bigInt(10), accessHash: bigInt(1), title: 'Closed' }));
      });
      expect(await session.lookup({ link: '@some_person' })).toEqual({
        kind: 'link_dead',
        error: '@some_person is not a group',
      });
      expect(await session.lookup({ link: '@news_channel' })).toEqual({
        kind: 'group_refuses',
        reason: 'read_only',
        error: 'a broadcast channel: members cannot post',
      });
      expect(await session.lookup({ link: '@closed_group' })).toEqual({
        kind: 'group_refuses',
        reason: 'private',
        error: '@closed_group: no access (the group banned or removed this account)',
      });
      expect(names(requests)).toEqual([
        'contacts.ResolveUsername',
        'contacts.ResolveUsername',
        'contacts.ResolveUsername',
      ]);
    });

    it('looks an invite up with one messages.CheckChatInvite, the hash byte for byte: each kind of answer', async () => {
      const answers: Record<string, unknown> = {
        AlreadyIn01: new Api.ChatInviteAlready({ chat: channel(778, { left: false, title: 'Our group' }) }),
        PeekIn0002: new Api.ChatInvitePeek({
          chat: channel(779, { title: 'Peeked', accessHash: bigInt(111) }),
          expires: 0,
        }),
        PlainInv03: invite(),
        BroadCst04: invite({ megagroup: false, broadcast: true, channel: true }),
      };
      const { session, requests } = harness((r) =>
        r instanceof Api.messages.CheckChatInvite ? answers[r.hash] : me(),
      );
      expect(await session.lookup({ link: 'https://t.me/+AlreadyIn01' })).toEqual({
        kind: 'found',
        chat: { telegramId: '-100778', accessHash: '987654321', title: 'Our group' },
        member: true,
      });
      expect(await session.lookup({ link: 'https://t.me/+PeekIn0002' })).toEqual({
        kind: 'found',
        chat: { telegramId: '-100779', accessHash: '111', title: 'Peeked' },
        member: false,
      });
      expect(await session.lookup({ link: 'https://t.me/+PlainInv03' })).toEqual({
        kind: 'found',
        chat: null,
        member: false,
      });
      expect(await session.lookup({ link: 'https://t.me/+BroadCst04' })).toEqual({
        kind: 'group_refuses',
        reason: 'read_only',
        error: 'a broadcast channel: members cannot post',
      });
      expect(requests.map((r) => [r.className, (r as Api.messages.CheckChatInvite).hash])).toEqual([
        ['messages.CheckChatInvite', 'AlreadyIn01'],
        ['messages.CheckChatInvite', 'PeekIn0002'],
        ['messages.CheckChatInvite', 'PlainInv03'],
        ['messages.CheckChatInvite', 'BroadCst04'],
      ]);
    });

    it("a lookup's errors are never uncertain (it changes nothing on Telegram), and a link that does not parse is dead", async () => {
      const { session, destroyed } = harness(
        (r) => {
          if (r instanceof Api.contacts.ResolveUsername && r.username === 'flooded')
            return rpcError(420, 'FLOOD_WAIT_300', r);
          if (r instanceof Api.contacts.ResolveUsername && r.username === 'broken')
            return rpcError(500, 'INTERNAL_SERVER_ERROR', r);
          if (r instanceof Api.contacts.ResolveUsername && r.username === 'slow_group')
            return new Promise(() => undefined);
          if (r instanceof Api.messages.CheckChatInvite) return rpcError(400, 'INVITE_HASH_EXPIRED', r);
          return me();
        },
        { timeouts: { joinMs: 50 } },
      );
      const flood = await session.lookup({ link: '@flooded' });
      expect(flood).toEqual({ kind: 'account_flood_wait', seconds: 300, error: 'FLOOD_WAIT_300' });
      expect(await session.lookup({ link: '@slow_group' })).toEqual({
        kind: 'transient',
        error: 'contacts.ResolveUsername timed out after 50 ms',
        uncertain: false,
      });
      expect(await session.lookup({ link: '@broken' })).toEqual({
        kind: 'transient',
        error: 'INTERNAL_SERVER_ERROR',
        uncertain: false,
      });
      expect(await session.lookup({ link: 'https://t.me/+Xk3bQp9LmN2wZr7T' })).toEqual({
        kind: 'link_dead',
        error: 'INVITE_HASH_EXPIRED',
      });
      expect(await session.lookup({ link: 't.me/c/123/4' })).toMatchObject({
        kind: 'link_dead',
        error: expect.stringContaining('private post link'),
      });
      expect(destroyed).toEqual([]);
    });
  });

  describe('join', () => {
    it('a join right after a lookup of the same link sends only the join request', async () => {
      const { session, requests } = harness((r) => {
        if (r instanceof Api.contacts.ResolveUsername) return resolvedTo(channel(1234567890));
        if (r instanceof Api.channels.JoinChannel) return updatesWith(channel(1234567890, { left: false }));
        if (r instanceof Api.messages.CheckChatInvite) return invite();
        if (r instanceof Api.messages.ImportChatInvite)
          return updatesWith(channel(777, { left: false, title: 'Private cars' }));
        return me();
      });
      expect(await session.lookup({ link: '@autobazar_ua' })).toMatchObject({ kind: 'found', member: false });
      expect(await session.join({ link: '@autobazar_ua' })).toEqual({
        kind: 'joined',
        telegramId: '-1001234567890',
        title: 'Group 1234567890',
        accessHash: '987654321',
      });
      expect(names(requests)).toEqual(['contacts.ResolveUsername', 'channels.JoinChannel']);
      const input = (requests[1] as Api.channels.JoinChannel).channel as Api.InputChannel;
      expect([input.channelId.toString(), input.accessHash.toString()]).toEqual(['1234567890', '987654321']);
      requests.length = 0;
      expect(await session.lookup({ link: 'https://t.me/+Xk3bQp9LmN2wZr7T' })).toEqual({
        kind: 'found',
        chat: null,
        member: false,
      });
      expect(await session.join({ link: 'https://t.me/+Xk3bQp9LmN2wZr7T' })).toEqual({
        kind: 'joined',
        telegramId: '-100777',
        title: 'Private cars',
        accessHash: '987654321',
      });
      expect(requests.map((r) => [r.className, (r as Api.messages.CheckChatInvite).hash])).toEqual([
        ['messages.CheckChatInvite', 'Xk3bQp9LmN2wZr7T'],
        ['messages.ImportChatInvite', 'Xk3bQp9LmN2wZr7T'],
      ]);
    });

    it('a join after a lookup that found us in already asks nothing more', async () => {
      const { session, requests } = harness((r) =>
        r instanceof Api.contacts.ResolveUsername ? resolvedTo(channel(31, { left: false })) : me(),
      );
      await session.lookup({ link: '@our_group' });
      expect(await session.join({ link: '@our_group' })).toEqual({
        kind: 'already_member',
        telegramId: '-10031',
        title: 'Group 31',
        accessHash: '987654321',
      });
      expect(names(requests)).toEqual(['contacts.ResolveUsername']);
    });

    it('USER_ALREADY_PARTICIPANT on an invite previewed by a lookup carries the previewed chat', async () => {
      const { session } = harness((r) => {
        if (r instanceof Api.messages.CheckChatInvite)
          return new Api.ChatInvitePeek({ chat: channel(880, { accessHash: bigInt(222) }), expires: 0 });
        if (r instanceof Api.messages.ImportChatInvite) return rpcError(400, 'USER_ALREADY_PARTICIPANT', r);
        return me();
      });
      expect(await session.join({ link: 'https://t.me/+Xk3bQp9LmN2wZr7T' })).toEqual({
        kind: 'already_member',
        telegramId: '-100880',
        title: 'Group 880',
        accessHash: '222',
      });
    });

    it('a timeout while looking up during a join is certain; a timeout of the join request itself is uncertain and drops the client', async () => {
      const { session, requests, clients, destroyed } = harness(
        (r) => {
          if (r instanceof Api.contacts.ResolveUsername && r.username === 'slow_lookup')
            return new Promise(() => undefined);
          if (r instanceof Api.contacts.ResolveUsername) return resolvedTo(channel(63));
          if (r instanceof Api.channels.JoinChannel) return new Promise(() => undefined);
          if (r instanceof Api.messages.CheckChatInvite) return invite();
          if (r instanceof Api.messages.ImportChatInvite) return new Promise(() => undefined);
          return me();
        },
        { timeouts: { joinMs: 50 } },
      );
      await session.connect();
      expect(await session.join({ link: '@slow_lookup' })).toEqual({
        kind: 'transient',
        error: 'contacts.ResolveUsername timed out after 50 ms',
        uncertain: false,
      });
      expect(destroyed).toEqual([]);
      expect(await session.join({ link: '@slow_join' })).toEqual({
        kind: 'transient',
        error: 'channels.JoinChannel timed out after 50 ms',
        uncertain: true,
      });
      expect(destroyed).toEqual([clients[0]]);
      expect(await session.join({ link: 'https://t.me/+Xk3bQp9LmN2wZr7T' })).toEqual({
        kind: 'transient',
        error: 'messages.ImportChatInvite timed out after 50 ms',
        uncertain: true,
      });
      expect(destroyed).toEqual([clients[0], clients[1]]);
      expect(names(requests).filter((n) => n !== 'users.GetUsers')).toEqual([
        'contacts.ResolveUsername',
        'contacts.ResolveUsername',
        'channels.JoinChannel',
        'messages.CheckChatInvite',
        'messages.ImportChatInvite',
      ]);
    });
  });

  describe('post with a stored peer', () => {
    it('sends straight to the stored supergroup (id and access hash), with no lookup; a photo too', async () => {
      const { session, requests } = harness((r) => {
        if (r instanceof Api.messages.SendMessage) return sent(11);
        if (r instanceof Api.upload.SaveFilePart) return true;
        if (r instanceof Api.messages.SendMedia) return sent(12);
        return me();
      });
      const group = { link: '@autobazar_ua', telegramId: '-1001234567890', accessHash: '-5512345678901234567' };
      expect(await session.post(group, { text: 'x', photoPath: null })).toEqual({ kind: 'sent', messageId: 11 });
      expect(await session.post(group, { text: 'x', photoPath: PHOTO })).toEqual({ kind: 'sent', messageId: 12 });
      expect(
        requests.some((r) => r instanceof Api.contacts.ResolveUsername || r instanceof Api.messages.CheckChatInvite),
      ).toBe(false);
      const peers = requests
        .filter((r) => r instanceof Api.messages.SendMessage || r instanceof Api.messages.SendMedia)
        .map((r) => (r as Api.messages.SendMessage).peer as Api.InputPeerChannel);
      expect(peers.map((p) => [p.className, p.channelId.toString(), p.accessHash.toString()])).toEqual([
        ['InputPeerChannel', '1234567890', '-5512345678901234567'],
        ['InputPeerChannel', '1234567890', '-5512345678901234567'],
      ]);
    });

    it("a basic group's stored id becomes an InputPeerChat; a channel id without its hash is looked up instead", async () => {
      const { session, requests } = harness((r) => {
        if (r instanceof Api.contacts.ResolveUsername) return resolvedTo(channel(64));
        if (r instanceof Api.messages.SendMessage) return sent(13);
        return me();
      });
      expect(
        await session.post(
          { link: '@old_group', telegramId: '-4242', accessHash: null },
          { text: 'x', photoPath: null },
        ),
      ).toEqual({ kind: 'sent', messageId: 13 });
      const basic = (requests[0] as Api.messages.SendMessage).peer as Api.InputPeerChat;
      expect([basic.className, basic.chatId.toString()]).toEqual(['InputPeerChat', '4242']);
      expect(
        await session.post(
          { link: '@no_hash', telegramId: '-10064', accessHash: null },
          { text: 'x', photoPath: null },
        ),
      ).toEqual({
        kind: 'sent',
        messageId: 13,
        chat: { telegramId: '-10064', accessHash: '987654321', title: 'Group 64' },
      });
      expect(names(requests)).toEqual(['messages.SendMessage', 'contacts.ResolveUsername', 'messages.SendMessage']);
    });

    it('a stored peer Telegram no longer takes (CHANNEL_INVALID, PEER_ID_INVALID) is peer_invalid; other refusals stay what they are', async () => {
      const answers = ['CHANNEL_INVALID', 'PEER_ID_INVALID', 'CHANNEL_PRIVATE'];
      const { session, requests, destroyed } = harness((r) =>
        r instanceof Api.messages.SendMessage ? rpcError(400, answers.shift()!, r) : me(),
      );
      const group = { link: '@autobazar_ua', telegramId: '-1001234567890', accessHash: '42' };
      expect(await session.post(group, { text: 'x', photoPath: null })).toEqual({
        kind: 'peer_invalid',
        error: 'CHANNEL_INVALID',
      });
      expect(await session.post(group, { text: 'x', photoPath: null })).toEqual({
        kind: 'peer_invalid',
        error: 'PEER_ID_INVALID',
      });
      expect(await session.post(group, { text: 'x', photoPath: null })).toEqual({
        kind: 'group_refuses',
        reason: 'private',
        error: 'CHANNEL_PRIVATE',
      });
      expect(names(requests)).toEqual(['messages.SendMessage', 'messages.SendMessage', 'messages.SendMessage']);
      expect(destroyed).toEqual([]);
    });
  });

  describe('post without a stored peer', () => {
    it('tells the chat it found, so the caller can store the peer: by username, by invite, and from a lookup just before', async () => {
      const { session, requests } = harness((r) => {
        if (r instanceof Api.contacts.ResolveUsername)
          return resolvedTo(channel(65, { left: false, accessHash: bigInt(333) }));
        if (r instanceof Api.messages.CheckChatInvite)
          return new Api.ChatInviteAlready({ chat: channel(66, { left: false, title: 'Private cars' }) });
        if (r instanceof Api.messages.SendMessage) return sent(14);
        return me();
      });
      expect(await session.post({ link: '@g_one' }, { text: 'x', photoPath: null })).toEqual({
        kind: 'sent',
        messageId: 14,
        chat: { telegramId: '-10065', accessHash: '333', title: 'Group 65' },
      });
      expect(await session.post({ link: 'https://t.me/+Xk3bQp9LmN2wZr7T' }, { text: 'x', photoPath: null })).toEqual({
        kind: 'sent',
        messageId: 14,
        chat: { telegramId: '-10066', accessHash: '987654321', title: 'Private cars' },
      });
      const invitePeer = (requests[3] as Api.messages.SendMessage).peer as Api.InputPeerChannel;
      expect([invitePeer.channelId.toString(), invitePeer.accessHash.toString()]).toEqual(['66', '987654321']);
      await session.lookup({ link: '@g_two' });
      requests.length = 0;
      expect(await session.post({ link: '@g_two' }, { text: 'x', photoPath: null })).toEqual({
        kind: 'sent',
        messageId: 14,
        chat: { telegramId: '-10065', accessHash: '333', title: 'Group 65' },
      });
      expect(names(requests)).toEqual(['messages.SendMessage']);
    });
  });

  describe('one deadline for the whole post', () => {
    it("is the rules' bound on a post() call, and two of them land before a day the cut-off counted them on ends", () => {
      expect(DEFAULT_TIMEOUTS.postMs).toBe(POST_CALL_DEADLINE_MS);
      expect(2 * DEFAULT_TIMEOUTS.postMs).toBeLessThan(SEND_DEADLINE_MS);
    });

    it("a slow lookup counts against the post's deadline: lookup 60% + send 60% times out, uncertain (the send went out)", async () => {
      const { session, requests, destroyed, clients } = harness(
        (r) => {
          if (r instanceof Api.contacts.ResolveUsername)
            return answerAfter(1200, resolvedTo(channel(67, { left: false })));
          if (r instanceof Api.messages.SendMessage) return answerAfter(1200, sent(15));
          return me();
        },
        { timeouts: { postMs: 2000, joinMs: 10_000 } },
      );
      await session.connect();
      const began = performance.now();
      expect(await session.post({ link: '@slow_group' }, { text: 'x', photoPath: null })).toEqual({
        kind: 'transient',
        error: 'sendMessage timed out after 2000 ms',
        uncertain: true,
      });
      // At the deadline, not at the sum of the two calls (2400 ms).
      expect(performance.now() - began).toBeLessThan(2350);
      expect(names(requests)).toEqual(['users.GetUsers', 'contacts.ResolveUsername', 'messages.SendMessage']);
      expect(destroyed).toEqual([clients[0]]);
    });

    it('a post still looking up (or uploading) at its deadline is certain: nothing was sent', async () => {
      const { session, requests, destroyed } = harness(
        (r) => {
          if (r instanceof Api.contacts.ResolveUsername && r.username === 'slow_group')
            return new Promise(() => undefined);
          if (r instanceof Api.contacts.ResolveUsername) return resolvedTo(channel(68, { left: false }));
          if (r instanceof Api.upload.SaveFilePart) return new Promise(() => undefined);
          return me();
        },
        // Long enough that reading the photo never runs out of it on a busy machine; the hanging calls do.
        { timeouts: { postMs: 1500, joinMs: 10_000 } },
      );
      expect(await session.post({ link: '@slow_group' }, { text: 'x', photoPath: null })).toEqual({
        kind: 'transient',
        error: 'contacts.ResolveUsername timed out after 1500 ms',
        uncertain: false,
      });
      expect(await session.post({ link: '@g_one' }, { text: 'x', photoPath: PHOTO })).toEqual({
        kind: 'transient',
        error: 'upload.SaveFilePart timed out after 1500 ms',
        uncertain: false,
      });
      expect(requests.some((r) => r instanceof Api.messages.SendMessage || r instanceof Api.messages.SendMedia)).toBe(
        false,
      );
      expect(destroyed).toEqual([]);
    });

    it('a session disconnected is closed for good: a later call never builds a client or reaches Telegram', async () => {
      const { session, clients, requests } = harness((r) =>
        r instanceof Api.users.GetUsers ? me() : r instanceof Api.messages.SendMessage ? sent(17) : undefined,
      );
      await session.connect();
      await session.disconnect();
      const group = { link: '@autobazar_ua', telegramId: '-1001234567890', accessHash: '42' };
      const closed = { kind: 'transient', error: 'the session was closed', uncertain: false };
      expect(await session.post(group, { text: 'x', photoPath: null })).toEqual(closed);
      expect(await session.join({ link: 'https://t.me/+AbCdEfGh123' })).toEqual(closed);
      expect(await session.lookup({ link: '@autobazar_ua' })).toEqual(closed);
      expect(await session.connect()).toEqual(closed);
      expect(clients).toHaveLength(1);
      expect(names(requests)).toEqual(['users.GetUsers']);
    });

    it('after a client was dropped, the next call connects a new one before asking anything', async () => {
      const events: string[] = [];
      let first = true;
      const { session, clients } = harness(
        (r) => {
          events.push(r.className);
          if (r instanceof Api.messages.SendMessage && first) {
            first = false;
            return new Promise(() => undefined);
          }
          return r instanceof Api.messages.SendMessage ? sent(16) : me();
        },
        {
          timeouts: { postMs: 500 },
          connect: async () => {
            events.push('connect');
            return true;
          },
        },
      );
      await session.connect();
      const group = { link: '@autobazar_ua', telegramId: '-1001234567890', accessHash: '42' };
      expect(await session.post(group, { text: 'x', photoPath: null })).toMatchObject({
        kind: 'transient',
        uncertain: true,
      });
      expect(await session.post(group, { text: 'x', photoPath: null })).toEqual({ kind: 'sent', messageId: 16 });
      expect(clients).toHaveLength(2);
      expect(events).toEqual(['connect', 'users.GetUsers', 'messages.SendMessage', 'connect', 'messages.SendMessage']);
    });
  });
});

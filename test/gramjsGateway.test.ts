/**
 * The GramJS adapter, offline: a real TelegramClient whose network calls (invoke, and the
 * sender that uploads files) are replaced by a recorder answering with GramJS's own TL objects.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { Api, TelegramClient, errors } from 'telegram';
import bigInt from 'big-integer';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../src/logger';
import { encodeTelethonStringSession } from '../src/import/telethonSession';
import { LogLevel } from 'telegram/extensions/Logger';
import { GramjsGateway, GramjsLogger, type GatewayTimeouts } from '../src/telegram/gramjsGateway';
import type { AccountCredentials } from '../src/telegram/gateway';

const PHOTO = path.resolve(__dirname, '../examples/lexus_assets/lexus_variant_1.jpg');
const SESSION = encodeTelethonStringSession({ dcId: 2, serverAddress: '149.154.167.51', port: 443, authKey: Buffer.alloc(256, 7) });
const ACCOUNT: AccountCredentials = { sessionName: 'lexus_kyiv_1', sessionString: SESSION, apiId: 1234567, apiHash: '0123456789abcdef0123456789abcdef', proxy: null };

const channel = (id: number, fields: Partial<ConstructorParameters<typeof Api.Channel>[0]> = {}) =>
  new Api.Channel({
    id: bigInt(id), accessHash: bigInt(987654321), title: `Group ${id}`, photo: new Api.ChatPhotoEmpty(), date: 0,
    megagroup: true, left: true, ...fields,
  });
const updatesWith = (chat: Api.Channel) => new Api.Updates({ updates: [], users: [], chats: [chat], date: 0, seq: 0 });

type Answer = (request: Api.AnyRequest) => unknown;

function harness(
  answer: Answer,
  options: { timeouts?: Partial<GatewayTimeouts>; account?: Partial<AccountCredentials>; logLines?: string[]; connect?: () => Promise<boolean> } = {},
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
      client.getSender = (async () => ({ send: record, isConnected: () => true })) as unknown as TelegramClient['getSender'];
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
  it('builds the client on the account\'s Telethon string session, never sleeping through a FloodWait', async () => {
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
    const { session } = harness(() => errors.RPCMessageToError(new Api.RpcError({ errorCode: 401, errorMessage: 'AUTH_KEY_UNREGISTERED' }), new Api.users.GetUsers({ id: [] })));
    expect(await session.connect()).toEqual({ kind: 'session_dead', error: 'AUTH_KEY_UNREGISTERED' });
  });

  it('joins a username with contacts.ResolveUsername then channels.JoinChannel', async () => {
    const { session, requests } = harness((r) => {
      if (r instanceof Api.contacts.ResolveUsername) return new Api.contacts.ResolvedPeer({ peer: new Api.PeerChannel({ channelId: bigInt(1234567890) }), chats: [channel(1234567890)], users: [] });
      if (r instanceof Api.channels.JoinChannel) return updatesWith(channel(1234567890, { left: false, title: 'Авторинок Україна' }));
      return me();
    });
    await session.connect();
    expect(await session.join({ link: '@autobazar_ua' })).toEqual({ kind: 'joined', telegramId: '-1001234567890', title: 'Авторинок Україна' });
    const [, resolve, join] = requests;
    expect(resolve).toBeInstanceOf(Api.contacts.ResolveUsername);
    expect((resolve as Api.contacts.ResolveUsername).username).toBe('autobazar_ua');
    expect(join).toBeInstanceOf(Api.channels.JoinChannel);
    const input = (join as Api.channels.JoinChannel).channel as Api.InputChannel;
    expect([input.className, input.channelId.toString(), input.accessHash.toString()]).toEqual(['InputChannel', '1234567890', '987654321']);
  });

  it('a username that is a user, or a broadcast channel, is not joined', async () => {
    const { session, requests } = harness((r) => {
      if (r instanceof Api.contacts.ResolveUsername && r.username === 'some_person') {
        return new Api.contacts.ResolvedPeer({ peer: new Api.PeerUser({ userId: bigInt(5) }), chats: [], users: [new Api.User({ id: bigInt(5) })] });
      }
      if (r instanceof Api.contacts.ResolveUsername) {
        return new Api.contacts.ResolvedPeer({ peer: new Api.PeerChannel({ channelId: bigInt(9) }), chats: [channel(9, { megagroup: false, broadcast: true })], users: [] });
      }
      return me();
    });
    expect(await session.join({ link: '@some_person' })).toEqual({ kind: 'link_dead', error: '@some_person is not a group' });
    expect(await session.join({ link: '@news_channel' })).toMatchObject({ kind: 'group_refuses', reason: 'read_only' });
    expect(requests.some((r) => r instanceof Api.channels.JoinChannel)).toBe(false);
  });

  it('joins an invite link with messages.ImportChatInvite and the hash byte for byte', async () => {
    const { session, requests } = harness((r) => {
      if (r instanceof Api.messages.CheckChatInvite) return new Api.ChatInvite({ title: 'Private cars', photo: new Api.PhotoEmpty({ id: bigInt(0) }), participantsCount: 100, megagroup: true, color: 0 });
      if (r instanceof Api.messages.ImportChatInvite) return updatesWith(channel(777, { left: false, title: 'Private cars' }));
      return me();
    });
    expect(await session.join({ link: 'https://t.me/+Xk3bQp9LmN2wZr7T' })).toEqual({ kind: 'joined', telegramId: '-100777', title: 'Private cars' });
    const hashes = requests.map((r) => (r instanceof Api.messages.CheckChatInvite || r instanceof Api.messages.ImportChatInvite ? [r.className, r.hash] : null));
    expect(hashes).toEqual([
      ['messages.CheckChatInvite', 'Xk3bQp9LmN2wZr7T'],
      ['messages.ImportChatInvite', 'Xk3bQp9LmN2wZr7T'],
    ]);
  });

  it('an invite to a group we are in already is not imported again', async () => {
    const { session, requests } = harness((r) =>
      r instanceof Api.messages.CheckChatInvite ? new Api.ChatInviteAlready({ chat: channel(778, { left: false }) }) : me(),
    );
    expect(await session.join({ link: 'https://t.me/+Hj5dKs8PqW1vTy4U' })).toEqual({ kind: 'already_member', telegramId: '-100778', title: 'Group 778' });
    expect(requests.map((r) => r.className)).toEqual(['messages.CheckChatInvite']);
  });

  it('Telegram\'s errors on join become outcomes, with the wait carried', async () => {
    const { session } = harness((r) => {
      if (r instanceof Api.messages.CheckChatInvite) return new Api.ChatInvite({ title: 'x', photo: new Api.PhotoEmpty({ id: bigInt(0) }), participantsCount: 1, megagroup: true, requestNeeded: true, color: 0 });
      if (r instanceof Api.messages.ImportChatInvite) return errors.RPCMessageToError(new Api.RpcError({ errorCode: 400, errorMessage: 'INVITE_REQUEST_SENT' }), r);
      if (r instanceof Api.contacts.ResolveUsername) return errors.RPCMessageToError(new Api.RpcError({ errorCode: 420, errorMessage: 'FLOOD_WAIT_1800' }), r);
      return me();
    });
    expect(await session.join({ link: 'https://t.me/+Xk3bQp9LmN2wZr7T' })).toEqual({ kind: 'join_request_pending', error: 'INVITE_REQUEST_SENT' });
    expect(await session.join({ link: '@autobazar_ua' })).toEqual({ kind: 'account_flood_wait', seconds: 1800, error: 'FLOOD_WAIT_1800' });
  });

  it('posts a photo: the file is uploaded, then sent as media with the text as its plain caption', async () => {
    const caption = 'Продається Lexus IS 250 — **9 800 $**, торг';
    const { session, requests } = harness((r) => {
      if (r instanceof Api.contacts.ResolveUsername) return new Api.contacts.ResolvedPeer({ peer: new Api.PeerChannel({ channelId: bigInt(55) }), chats: [channel(55, { left: false })], users: [] });
      if (r instanceof Api.upload.SaveFilePart) return true;
      if (r instanceof Api.messages.SendMedia) return new Api.UpdateShortSentMessage({ id: 3141, pts: 1, ptsCount: 1, date: 0, out: true });
      return me();
    });
    await session.connect();
    expect(await session.post({ link: '@autobazar_ua' }, { text: caption, photoPath: PHOTO })).toMatchObject({ kind: 'sent' });
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
      if (r instanceof Api.contacts.ResolveUsername) return new Api.contacts.ResolvedPeer({ peer: new Api.PeerChannel({ channelId: bigInt(56) }), chats: [channel(56, { left: false })], users: [] });
      if (r instanceof Api.messages.SendMessage) return new Api.UpdateShortSentMessage({ id: 2718, pts: 1, ptsCount: 1, date: 0, out: true });
      return me();
    });
    expect(await session.post({ link: '@kyiv_premium_auto' }, { text, photoPath: null })).toEqual({ kind: 'sent', messageId: 2718 });
    const send = requests.find((r): r is Api.messages.SendMessage => r instanceof Api.messages.SendMessage)!;
    expect([send.message, send.entities ?? [], send.noWebpage]).toEqual([text, [], true]);
  });

  it('a refusal on send is an outcome; a group already resolved is not resolved again', async () => {
    let sends = 0;
    const { session, requests } = harness((r) => {
      if (r instanceof Api.contacts.ResolveUsername) return new Api.contacts.ResolvedPeer({ peer: new Api.PeerChannel({ channelId: bigInt(57) }), chats: [channel(57, { left: false })], users: [] });
      if (r instanceof Api.messages.SendMessage) {
        sends++;
        return errors.RPCMessageToError(new Api.RpcError({ errorCode: sends === 1 ? 420 : 403, errorMessage: sends === 1 ? 'SLOWMODE_WAIT_60' : 'CHAT_WRITE_FORBIDDEN' }), r);
      }
      return me();
    });
    expect(await session.post({ link: '@g_one' }, { text: 'x', photoPath: null })).toEqual({ kind: 'group_slow_mode', seconds: 60, error: 'SLOWMODE_WAIT_60' });
    expect(await session.post({ link: '@g_one' }, { text: 'x', photoPath: null })).toEqual({ kind: 'group_refuses', reason: 'read_only', error: 'CHAT_WRITE_FORBIDDEN' });
    expect(requests.filter((r) => r instanceof Api.contacts.ResolveUsername)).toHaveLength(1);
  });

  it('a call that never answers times out: transient, and for a post uncertain (it may have gone out)', async () => {
    const never = new Promise(() => undefined);
    const { session } = harness(
      (r) => {
        if (r instanceof Api.contacts.ResolveUsername) return new Api.contacts.ResolvedPeer({ peer: new Api.PeerChannel({ channelId: bigInt(58) }), chats: [channel(58, { left: false })], users: [] });
        if (r instanceof Api.users.GetUsers) return me();
        return never;
      },
      { timeouts: { joinMs: 50, postMs: 50, connectMs: 50 } },
    );
    expect(await session.join({ link: 'https://t.me/+Xk3bQp9LmN2wZr7T' })).toEqual({ kind: 'transient', error: 'messages.CheckChatInvite timed out after 50 ms', uncertain: true });
    expect(await session.post({ link: '@slow_group' }, { text: 'x', photoPath: null })).toEqual({ kind: 'transient', error: 'sendMessage timed out after 50 ms', uncertain: true });
  });

  it('refuses to start without API credentials, with an HTTP proxy, or without the photo', async () => {
    const noKeys = harness(() => me(), { account: { apiId: null, apiHash: null } });
    expect(await noKeys.session.connect()).toMatchObject({ kind: 'misconfigured', error: expect.stringContaining('TG_API_ID') });
    const http = harness(() => me(), { account: { proxy: 'http://user:SECRET@proxy.example:8080' } });
    const outcome = await http.session.connect();
    expect(outcome).toMatchObject({ kind: 'misconfigured', error: expect.stringContaining('cannot use a HTTP proxy') });
    expect(JSON.stringify(outcome)).not.toContain('SECRET');
    const socks = harness(() => me(), { account: { proxy: 'socks5://user:pw@127.0.0.1:1080' } });
    expect(await socks.session.connect()).toMatchObject({ kind: 'connected' });
    const missing = harness(() => me());
    expect(await missing.session.post({ link: '@g_one' }, { text: 'x', photoPath: '/nonexistent/photo.jpg' })).toMatchObject({ kind: 'misconfigured' });
  });

  it('routes GramJS\'s own log lines into ours, and never lets it print raw errors itself', async () => {
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
    expect(entries.find((l) => l.msg === 'Unexpected answer from the server')).toMatchObject({ level: 'warn', event: 'gramjs', account: 'lexus_kyiv_1' });
    expect(entries.find((l) => l.msg === 'Disconnecting from 149.154.167.51')).toMatchObject({ level: 'debug' });
    expect(entries.find((l) => l.msg === 'Socket closed')).toMatchObject({ level: 'error' });
  });

  it('a FloodWait while uploading the photo is reported, not slept through', async () => {
    const { session, requests } = harness((r) => {
      if (r instanceof Api.contacts.ResolveUsername) return new Api.contacts.ResolvedPeer({ peer: new Api.PeerChannel({ channelId: bigInt(60) }), chats: [channel(60, { left: false })], users: [] });
      if (r instanceof Api.upload.SaveFilePart) return errors.RPCMessageToError(new Api.RpcError({ errorCode: 420, errorMessage: 'FLOOD_WAIT_2' }), r);
      return me();
    });
    expect(await session.post({ link: '@g_one' }, { text: 'x', photoPath: PHOTO })).toEqual({ kind: 'account_flood_wait', seconds: 2, error: 'FLOOD_WAIT_2' });
    expect(requests.some((r) => r instanceof Api.messages.SendMedia)).toBe(false);
  });

  it('a connection GramJS gives up on is transient, and the client is dropped', async () => {
    const { session, clients, destroyed } = harness(() => me(), { connect: async () => false });
    expect(await session.connect()).toEqual({ kind: 'transient', error: 'cannot reach Telegram (connection retries exhausted)', uncertain: false });
    expect(destroyed).toEqual([clients[0]]);
    // The next attempt builds a new client.
    await session.connect();
    expect(clients).toHaveLength(2);
  });

  it('a post that timed out drops the client, so nothing it started carries on', async () => {
    const { session, clients, destroyed } = harness(
      (r) => {
        if (r instanceof Api.contacts.ResolveUsername) return new Api.contacts.ResolvedPeer({ peer: new Api.PeerChannel({ channelId: bigInt(62) }), chats: [channel(62, { left: false })], users: [] });
        if (r instanceof Api.messages.SendMessage) return new Promise(() => undefined);
        return me();
      },
      { timeouts: { postMs: 50 } },
    );
    await session.connect();
    expect(await session.post({ link: '@g_one' }, { text: 'x', photoPath: null })).toMatchObject({ kind: 'transient', uncertain: true });
    expect(destroyed).toEqual([clients[0]]);
  });

  it('a lookup that fails while posting never closes the group; a stale peer is looked up again', async () => {
    let resolves = 0;
    const { session } = harness((r) => {
      if (r instanceof Api.contacts.ResolveUsername) {
        resolves++;
        if (r.username === 'renamed_group') return errors.RPCMessageToError(new Api.RpcError({ errorCode: 400, errorMessage: 'USERNAME_NOT_OCCUPIED' }), r);
        return new Api.contacts.ResolvedPeer({ peer: new Api.PeerChannel({ channelId: bigInt(61) }), chats: [channel(61, { left: false })], users: [] });
      }
      if (r instanceof Api.messages.SendMessage) return errors.RPCMessageToError(new Api.RpcError({ errorCode: 400, errorMessage: 'PEER_ID_INVALID' }), r);
      return me();
    });
    expect(await session.post({ link: '@renamed_group' }, { text: 'x', photoPath: null })).toEqual({
      kind: 'transient', error: 'cannot find the group by its link (USERNAME_NOT_OCCUPIED)', uncertain: false,
    });
    expect(await session.post({ link: '@g_two' }, { text: 'x', photoPath: null })).toEqual({ kind: 'transient', error: 'PEER_ID_INVALID', uncertain: false });
    await session.post({ link: '@g_two' }, { text: 'x', photoPath: null });
    expect(resolves).toBe(3);
  });
});

import { describe, expect, it } from 'vitest';
import { ManualClock } from '../src/clock';
import { FakeTelegram, fakeAccessHash, fakeTelegramId } from '../src/telegram/fakeGateway';
import type { AccountCredentials } from '../src/telegram/gateway';

const account = (sessionName: string): AccountCredentials => ({
  sessionName,
  sessionString: '1fake',
  apiId: 1,
  apiHash: 'x',
  proxy: null,
});
const text = { text: 'Lexus IS 250', photoPath: null };

describe('the fake Telegram', () => {
  it('by default connects, joins once, and sends to groups the account is in', async () => {
    const fake = new FakeTelegram();
    const s = fake.session(account('a1'));
    expect(await s.connect()).toMatchObject({ kind: 'connected' });
    expect(await s.post({ link: '@g_one' }, text)).toEqual({
      kind: 'group_refuses',
      reason: 'removed',
      error: 'CHAT_GUEST_SEND_FORBIDDEN',
    });
    expect(await s.join({ link: '@g_one' })).toEqual({
      kind: 'joined',
      telegramId: fakeTelegramId('@g_one'),
      title: 'Group @g_one',
      accessHash: fakeAccessHash('a1', '@g_one'),
    });
    expect(await s.join({ link: '@g_one' })).toMatchObject({ kind: 'already_member' });
    expect(await s.post({ link: '@g_one' }, text)).toEqual({
      kind: 'sent',
      messageId: 1,
      chat: fake.identity('@g_one', 'a1'),
    });
    expect(fake.sent().map((c) => [c.account, c.link, c.message?.text])).toEqual([['a1', '@g_one', 'Lexus IS 250']]);
  });

  it('refuses calls on a session that is not connected', async () => {
    const s = new FakeTelegram().session(account('a1'));
    expect(await s.join({ link: '@g_one' })).toEqual({ kind: 'transient', error: 'not connected', uncertain: false });
  });

  it('gives AUTH_KEY_DUPLICATED to a second live session of one account, as Telegram does', async () => {
    const fake = new FakeTelegram();
    const first = fake.session(account('a1'));
    const second = fake.session(account('a1'));
    expect(await first.connect()).toMatchObject({ kind: 'connected' });
    expect(await second.connect()).toEqual({ kind: 'session_dead', error: 'AUTH_KEY_DUPLICATED' });
    await first.disconnect();
    expect(await second.connect()).toMatchObject({ kind: 'connected' });
  });

  it('answers from scripts per account, group and count, then falls back to the default', async () => {
    const clock = new ManualClock('2026-05-01T10:00:00Z');
    const fake = new FakeTelegram({ clock })
      .on({
        op: 'post',
        link: '@slow_group',
        times: 1,
        outcome: { kind: 'group_slow_mode', seconds: 300, error: 'SLOWMODE_WAIT_300' },
      })
      .on({ op: 'join', account: 'a2', outcome: { kind: 'account_flood_wait', seconds: 60, error: 'FLOOD_WAIT_60' } })
      .on({
        op: 'post',
        outcome: (call) =>
          call.message?.photoPath ? { kind: 'media_forbidden', error: 'CHAT_SEND_PHOTOS_FORBIDDEN' } : undefined,
      });
    const a1 = fake.session(account('a1'));
    const a2 = fake.session(account('a2'));
    await a1.connect();
    await a2.connect();
    await a1.join({ link: '@slow_group' });
    expect(await a2.join({ link: '@slow_group' })).toMatchObject({ kind: 'account_flood_wait', seconds: 60 });
    expect(await a1.post({ link: '@slow_group' }, text)).toMatchObject({ kind: 'group_slow_mode', seconds: 300 });
    clock.advance(300_000);
    expect(await a1.post({ link: '@slow_group' }, { text: 'x', photoPath: '/p.jpg' })).toMatchObject({
      kind: 'media_forbidden',
    });
    expect(await a1.post({ link: '@slow_group' }, text)).toMatchObject({ kind: 'sent' });
  });

  it('records every call with the time of its clock, and waits its latency on the given sleep', async () => {
    const clock = new ManualClock('2026-05-01T10:00:00Z');
    const waits: number[] = [];
    const fake = new FakeTelegram({
      clock,
      latencyMs: (op) => (op === 'post' ? 1500 : 100),
      sleep: async (ms) => {
        waits.push(ms);
        clock.advance(ms);
      },
    });
    const s = fake.session(account('a1'));
    await s.connect();
    await s.join({ link: '@g_one' });
    await s.post({ link: '@g_one' }, text);
    await s.disconnect();
    expect(fake.calls.map((c) => [c.op, c.at.toISOString(), c.outcome?.kind])).toEqual([
      ['connect', '2026-05-01T10:00:00.000Z', 'connected'],
      ['join', '2026-05-01T10:00:00.100Z', 'joined'],
      ['post', '2026-05-01T10:00:00.200Z', 'sent'],
      ['disconnect', '2026-05-01T10:00:01.700Z', undefined],
    ]);
    expect(waits).toEqual([100, 100, 1500]);
  });

  it("holds Telegram's decisions against later calls, and lists every call made against one", async () => {
    const clock = new ManualClock('2026-05-01T10:00:00Z');
    const fake = new FakeTelegram({ clock })
      .on({
        op: 'post',
        link: '@strict',
        times: 1,
        outcome: { kind: 'group_refuses', reason: 'banned', error: 'USER_BANNED_IN_CHANNEL' },
      })
      .on({
        op: 'post',
        link: '@busy',
        times: 1,
        outcome: { kind: 'account_flood_wait', seconds: 60, error: 'FLOOD_WAIT_60' },
      })
      .on({
        op: 'post',
        link: '@lossy',
        times: 1,
        outcome: { kind: 'transient', error: 'timeout', uncertain: true },
        delivers: true,
      });
    const s = fake.session(account('a1'));
    await s.connect();
    for (const link of ['@strict', '@busy', '@lossy', '@other']) await s.join({ link });
    await s.post({ link: '@strict' }, text);
    expect(await s.post({ link: '@strict' }, text)).toMatchObject({ kind: 'group_refuses', reason: 'banned' });
    await s.post({ link: '@busy' }, text);
    clock.advance(59_000);
    expect(await s.post({ link: '@other' }, text)).toEqual({
      kind: 'account_flood_wait',
      seconds: 1,
      error: 'FLOOD_WAIT_1',
    });
    clock.advance(1_000);
    expect(await s.post({ link: '@lossy' }, text)).toMatchObject({ kind: 'transient', uncertain: true });
    expect(await s.post({ link: '@other' }, text)).toMatchObject({ kind: 'sent' });
    expect(fake.violations().map((v) => [v.what, v.link])).toEqual([
      ['call to a group that refused this account', '@strict'],
      ['action during a FloodWait', '@other'],
    ]);
    expect(fake.sent().map((c) => c.link)).toEqual(['@lossy', '@other']);
  });

  it('lists a post during a slow mode, and a connect during a FloodWait', async () => {
    const clock = new ManualClock('2026-05-01T10:00:00Z');
    const fake = new FakeTelegram({ clock })
      .on({
        op: 'post',
        link: '@slow',
        times: 1,
        outcome: { kind: 'group_slow_mode', seconds: 30, error: 'SLOWMODE_WAIT_30' },
      })
      .on({
        op: 'join',
        link: '@busy',
        times: 1,
        outcome: { kind: 'account_flood_wait', seconds: 60, error: 'FLOOD_WAIT_60' },
      });
    const s = fake.session(account('a1'));
    await s.connect();
    await s.join({ link: '@slow' });
    await s.post({ link: '@slow' }, text);
    clock.advance(29_000);
    expect(await s.post({ link: '@slow' }, text)).toEqual({
      kind: 'group_slow_mode',
      seconds: 1,
      error: 'SLOWMODE_WAIT_1',
    });
    clock.advance(1_000);
    expect(await s.post({ link: '@slow' }, text)).toMatchObject({ kind: 'sent' });
    await s.join({ link: '@busy' });
    await s.disconnect();
    clock.advance(30_000);
    expect(await s.connect()).toEqual({ kind: 'account_flood_wait', seconds: 30, error: 'FLOOD_WAIT_30' });
    expect(fake.violations().map((v) => [v.what, v.link])).toEqual([
      ['post during slow mode', '@slow'],
      ['action during a FloodWait', undefined],
    ]);
  });

  it('refuses a caption or a text Telegram would refuse', async () => {
    const fake = new FakeTelegram();
    const s = fake.session(account('a1'));
    await s.connect();
    await s.join({ link: '@g_one' });
    expect(await s.post({ link: '@g_one' }, { text: 'x'.repeat(1025), photoPath: '/p.jpg' })).toEqual({
      kind: 'message_invalid',
      error: 'MEDIA_CAPTION_TOO_LONG',
    });
    expect(await s.post({ link: '@g_one' }, { text: 'x'.repeat(4097), photoPath: null })).toEqual({
      kind: 'message_invalid',
      error: 'MESSAGE_TOO_LONG',
    });
  });
});

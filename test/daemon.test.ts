import { describe, expect, it } from 'vitest';
import { midnight } from '../src/daemon/run';
import { FakeTelegram } from '../src/telegram/fakeGateway';
import { type DaemonHarness, useDaemons } from './helpers/daemon';
import { type TestDatabase, useTestDatabase } from './helpers/database';
import { insertAccount, insertBoundTarget, insertTarget } from './helpers/fixtures';

const t = useTestDatabase({ start: '2026-03-10T06:00:00.000Z' });
const HOUR = 3_600_000;
const daemon = useDaemons(t);

async function fleet(
  t: TestDatabase,
  accounts: number,
  groups: number,
): Promise<{ accounts: number[]; groups: number[] }> {
  const a: number[] = [];
  for (let i = 1; i <= accounts; i++) {
    const id = await insertAccount(t, `acc_${i}`, { session_string: `1fake-session-${i}` });
    a.push(id);
  }
  const g: number[] = [];
  for (let i = 1; i <= groups; i++) g.push(await insertTarget(t, `@group_${String(i).padStart(3, '0')}`));
  return { accounts: a, groups: g };
}

describe('the daemon', () => {
  it('joins, stays silent for 24 h, then posts within the limits', async () => {
    await fleet(t, 2, 6);
    const h = daemon();
    await h.runFor(30 * HOUR);
    const joins = h.fake.calls.filter((c) => c.op === 'join');
    // Every group joined once, by one account; the binding is that account.
    expect(joins.map((c) => c.link).sort()).toEqual([
      '@group_001',
      '@group_002',
      '@group_003',
      '@group_004',
      '@group_005',
      '@group_006',
    ]);
    const bound = await t.query<{ link: string; session_name: string; joined_at: Date }>(
      `SELECT t.link, a.session_name, t.joined_at FROM targets t JOIN accounts a ON a.id = t.assigned_account_id ORDER BY t.link`,
    );
    expect(bound).toHaveLength(6);
    for (const row of bound) expect(joins.find((c) => c.link === row.link)?.account).toBe(row.session_name);
    // No post before the warm-up is over, none from another account.
    const sent = h.fake.sent();
    expect(sent.length).toBeGreaterThan(0);
    for (const post of sent) {
      const group = bound.find((b) => b.link === post.link)!;
      expect(post.account).toBe(group.session_name);
      expect(post.at.getTime()).toBeGreaterThanOrEqual(group.joined_at.getTime() + 24 * HOUR);
    }
    const history = await t.query<{ status: string; n: number }>(
      `SELECT status, count(*)::int AS n FROM post_history GROUP BY status`,
    );
    expect(history).toEqual([{ status: 'success', n: sent.length }]);
    expect(h.logs.filter((l) => l.event === 'post.sent')).toHaveLength(sent.length);
  });
});

/** Accounts with sessions, each bound to `groups` groups it joined two days ago (ready to post). */
async function readyFleet(h: DaemonHarness, accounts: number, groups: number, joinedAt = '2026-03-08T06:00:00Z') {
  const ids: number[] = [];
  const links: string[][] = [];
  for (let i = 1; i <= accounts; i++) {
    const id = await insertAccount(t, `acc_${i}`, { session_string: `1fake-session-${i}` });
    ids.push(id);
    const mine: string[] = [];
    for (let g = 1; g <= groups; g++) {
      const link = `@g${i}_${String(g).padStart(2, '0')}`;
      await insertBoundTarget(t, link, id, { joined_at: joinedAt });
      h.fake.addMember(link, `acc_${i}`);
      mine.push(link);
    }
    links.push(mine);
  }
  return { ids, links };
}

const utcDay = (d: Date) => d.toISOString().slice(0, 10);

describe("the daemon under Telegram's answers", () => {
  it('honours a FloodWait in full, records it, and resumes by itself', async () => {
    const h = daemon();
    await readyFleet(h, 1, 3);
    h.fake.on({
      op: 'post',
      times: 1,
      outcome: { kind: 'account_flood_wait', seconds: 3600, error: 'FLOOD_WAIT_3600' },
    });
    await h.runFor(20 * 60_000);
    expect(await t.query(`SELECT status FROM accounts`)).toEqual([{ status: 'flood_wait' }]);
    const [wait] = await t.query<{ until: Date }>(`SELECT next_allowed_action_time AS until FROM accounts`);
    expect(await t.query(`SELECT status, error_message FROM post_history`)).toEqual([
      { status: 'flood_wait', error_message: 'FLOOD_WAIT_3600' },
    ]);
    await h.runFor(3 * HOUR);
    expect(h.fake.violations()).toEqual([]);
    const posts = h.fake.calls.filter((c) => c.op === 'post');
    expect(posts.length).toBeGreaterThan(1);
    for (const post of posts.slice(1)) expect(post.at.getTime()).toBeGreaterThanOrEqual(wait!.until.getTime());
    expect(h.logs.find((l) => l.event === 'account.flood_wait')).toMatchObject({ account: 'acc_1', wait_s: 3600 });
    // Cleared once it was over.
    expect(await t.query(`SELECT status, next_allowed_action_time FROM accounts`)).toEqual([
      { status: 'active', next_allowed_action_time: null },
    ]);
    expect(h.logs.some((l) => l.event === 'account.flood_wait_over')).toBe(true);
  });

  it("waits out a group's slow mode while the account goes on with its other groups", async () => {
    const h = daemon({ settings: { groupMinGapMs: 0 } });
    const { links } = await readyFleet(h, 1, 3);
    const slow = links[0]![0]!;
    h.fake.on({
      op: 'post',
      link: slow,
      times: 1,
      outcome: { kind: 'group_slow_mode', seconds: 7200, error: 'SLOWMODE_WAIT_7200' },
    });
    await h.runFor(HOUR);
    const posts = h.fake.calls.filter((c) => c.op === 'post');
    expect(posts.filter((c) => c.link === slow)).toHaveLength(1);
    expect(h.fake.sent().length).toBeGreaterThanOrEqual(2);
    await h.runFor(3 * HOUR);
    expect(h.fake.violations()).toEqual([]);
    expect(h.fake.sent().some((c) => c.link === slow)).toBe(true);
  });

  it('a group that bans us or leads nowhere is never tried again, by any account', async () => {
    const h = daemon();
    await fleet(t, 3, 4);
    h.fake.on({
      op: 'join',
      link: '@group_001',
      outcome: { kind: 'group_refuses', reason: 'banned', error: 'USER_BANNED_IN_CHANNEL' },
    });
    h.fake.on({ op: 'join', link: '@group_002', outcome: { kind: 'link_dead', error: 'USERNAME_NOT_OCCUPIED' } });
    await h.runFor(30 * HOUR);
    const joinsOf = (link: string) => h.fake.calls.filter((c) => c.op === 'join' && c.link === link);
    expect(joinsOf('@group_001')).toHaveLength(1);
    expect(joinsOf('@group_002')).toHaveLength(1);
    expect(
      await t.query(`SELECT link, status FROM targets WHERE link IN ('@group_001', '@group_002') ORDER BY link`),
    ).toEqual([
      { link: '@group_001', status: 'banned' },
      { link: '@group_002', status: 'error' },
    ]);
    expect(h.fake.calls.some((c) => c.op === 'post' && (c.link === '@group_001' || c.link === '@group_002'))).toBe(
      false,
    );
  });

  it('a post refused by the group closes it for good', async () => {
    const h = daemon();
    const { links } = await readyFleet(h, 1, 2);
    h.fake.on({
      op: 'post',
      link: links[0]![0]!,
      outcome: { kind: 'group_refuses', reason: 'read_only', error: 'CHAT_WRITE_FORBIDDEN' },
    });
    await h.runFor(30 * HOUR);
    expect(h.fake.calls.filter((c) => c.op === 'post' && c.link === links[0]![0]!)).toHaveLength(1);
    expect(await t.query(`SELECT status, status_reason FROM targets WHERE link = $1`, [links[0]![0]!])).toEqual([
      { status: 'banned', status_reason: 'read_only: CHAT_WRITE_FORBIDDEN' },
    ]);
    expect(h.fake.violations()).toEqual([]);
  });

  it('a dead session stops that account only', async () => {
    const h = daemon();
    await readyFleet(h, 2, 2);
    h.fake.on({ op: 'connect', account: 'acc_1', outcome: { kind: 'session_dead', error: 'AUTH_KEY_UNREGISTERED' } });
    await h.runFor(2 * HOUR);
    expect(await t.query(`SELECT session_name, status, status_reason FROM accounts ORDER BY id`)).toEqual([
      { session_name: 'acc_1', status: 'banned', status_reason: 'session dead: AUTH_KEY_UNREGISTERED' },
      { session_name: 'acc_2', status: 'active', status_reason: null },
    ]);
    expect(h.fake.sent().every((c) => c.account === 'acc_2')).toBe(true);
    expect(h.fake.sent().length).toBeGreaterThan(0);
    expect(h.logs.find((l) => l.event === 'account.session_dead')).toMatchObject({ level: 'error', account: 'acc_1' });
  });

  it('a photo refused by a text-only group is sent once more without it', async () => {
    const h = daemon();
    const { links } = await readyFleet(h, 1, 1);
    h.fake.on({
      op: 'post',
      outcome: (call) =>
        call.message?.photoPath ? { kind: 'media_forbidden', error: 'CHAT_SEND_PHOTOS_FORBIDDEN' } : undefined,
    });
    await h.runFor(10 * 60_000);
    const posts = h.fake.calls.filter((c) => c.op === 'post');
    expect(posts.slice(0, 2).map((c) => [c.link, c.message?.photoPath === null, c.outcome?.kind])).toEqual([
      [links[0]![0]!, false, 'media_forbidden'],
      [links[0]![0]!, true, 'sent'],
    ]);
    expect(await t.query(`SELECT status, photo_path FROM post_history ORDER BY id LIMIT 1`)).toEqual([
      { status: 'success', photo_path: null },
    ]);
  });
});

describe('the daemon when a group keeps failing, or Telegram limits the account', () => {
  it("a group that keeps failing does not block the account's other groups", async () => {
    const h = daemon({ settings: { groupMinGapMs: 0 } });
    const { links } = await readyFleet(h, 1, 3);
    const broken = links[0]![0]!;
    h.fake.on({
      op: 'post',
      link: broken,
      outcome: {
        kind: 'transient',
        error: 'cannot find the group by its link (USERNAME_NOT_OCCUPIED)',
        uncertain: false,
      },
    });
    await h.runFor(12 * HOUR);
    const sentTo = new Set(h.fake.sent().map((c) => c.link));
    expect([...sentTo].sort()).toEqual([links[0]![1]!, links[0]![2]!].sort());
    // The broken group is tried now and then, not on every action.
    expect(h.fake.calls.filter((c) => c.op === 'post' && c.link === broken).length).toBeLessThanOrEqual(12 * 2 + 1);
  });

  it('PEER_FLOOD pauses the account for the configured time, with a warning', async () => {
    const h = daemon();
    await readyFleet(h, 1, 2);
    h.fake.on({ op: 'post', times: 1, outcome: { kind: 'account_limited', error: 'PEER_FLOOD' } });
    await h.runFor(23 * HOUR);
    expect(h.fake.calls.filter((c) => c.op === 'post')).toHaveLength(1);
    expect(await t.query(`SELECT status, status_reason FROM accounts`)).toEqual([
      { status: 'flood_wait', status_reason: 'limited by Telegram (PEER_FLOOD)' },
    ]);
    expect(h.logs.find((l) => l.event === 'account.limited')).toMatchObject({ level: 'warn', wait_s: 86400 });
    await h.runFor(2 * HOUR);
    expect(h.fake.sent().length).toBeGreaterThan(0);
  });

  it('the groups a dead account was joining go back to the queue for the others', async () => {
    const h = daemon();
    await fleet(t, 2, 2);
    // A join that certainly did not happen (Telegram's own error), then the session dies.
    h.fake.on({
      op: 'join',
      account: 'acc_1',
      times: 1,
      outcome: { kind: 'transient', error: 'RPC_CALL_FAIL', uncertain: false },
    });
    h.fake.on({ op: 'join', account: 'acc_1', outcome: { kind: 'session_dead', error: 'SESSION_REVOKED' } });
    await h.runFor(3 * HOUR);
    expect(await t.query(`SELECT status FROM accounts WHERE session_name = 'acc_1'`)).toEqual([{ status: 'banned' }]);
    const bound = await t.query<{ link: string; session_name: string }>(
      `SELECT t.link, a.session_name FROM targets t JOIN accounts a ON a.id = t.assigned_account_id ORDER BY t.link`,
    );
    expect(bound).toEqual([
      { link: '@group_001', session_name: 'acc_2' },
      { link: '@group_002', session_name: 'acc_2' },
    ]);
  });
});

describe('the daemon over days', () => {
  it('never breaks a limit, posts up to them, spaces posts, rotates variants, and needs no cron at midnight', async () => {
    const h = daemon();
    await readyFleet(h, 1, 14);
    await h.runFor(3 * 24 * HOUR);
    const sent = h.fake.sent();
    const perAccountDay = new Map<string, number>();
    const perGroupDay = new Map<string, number>();
    for (const post of sent) {
      const day = utcDay(post.at);
      perAccountDay.set(day, (perAccountDay.get(day) ?? 0) + 1);
      perGroupDay.set(`${day} ${post.link}`, (perGroupDay.get(`${day} ${post.link}`) ?? 0) + 1);
    }
    expect(Math.max(...perGroupDay.values())).toBeLessThanOrEqual(2);
    // Full days 2 and 3: the account's 20 posts, no more.
    expect([perAccountDay.get('2026-03-11'), perAccountDay.get('2026-03-12')]).toEqual([20, 20]);
    const byGroup = new Map<string, { at: Date; text: string }[]>();
    for (const post of sent)
      byGroup.set(post.link!, [...(byGroup.get(post.link!) ?? []), { at: post.at, text: post.message!.text }]);
    for (const posts of byGroup.values()) {
      for (let i = 1; i < posts.length; i++) {
        expect(posts[i]!.at.getTime() - posts[i - 1]!.at.getTime()).toBeGreaterThanOrEqual(4 * HOUR);
        expect(posts[i]!.text).not.toBe(posts[i - 1]!.text);
      }
    }
    expect(await t.query(`SELECT status, count(*)::int AS n FROM post_history GROUP BY status`)).toEqual([
      { status: 'success', n: sent.length },
    ]);
  });

  it('keeps to the posting hours, in LEXUS_TIMEZONE', async () => {
    // Tokyo is UTC+9 all year: posting 08-22 there is 23:00-13:00 UTC, quiet 13:00-23:00 UTC.
    const h = daemon({ settings: { postingHours: { start: 8, end: 22 }, timeZone: 'Asia/Tokyo' } });
    await readyFleet(h, 1, 6);
    await h.runFor(26 * HOUR);
    const calls = h.fake.calls.filter((c) => c.op === 'post' || c.op === 'join');
    expect(calls.length).toBeGreaterThan(0);
    for (const call of calls) {
      const tokyoHour = (call.at.getUTCHours() + 9) % 24;
      expect(tokyoHour >= 8 && tokyoHour < 22).toBe(true);
    }
    // Something happened on both sides of the quiet night.
    expect(calls.some((c) => c.at.getUTCHours() < 13)).toBe(true);
    expect(calls.some((c) => c.at.getTime() >= Date.parse('2026-03-10T23:00:00Z'))).toBe(true);
  });

  it('the midnight job resets the counters and logs yesterday', async () => {
    const h = daemon();
    await readyFleet(h, 1, 4);
    await h.runFor(6 * HOUR);
    t.clock.set('2026-03-11T00:00:00.000Z');
    await midnight(h.daemon, t.clock, h.daemon['deps'].log);
    expect(await t.query(`SELECT daily_posts_count FROM accounts`)).toEqual([{ daily_posts_count: 0 }]);
    const summary = h.logs.find((l) => l.event === 'daily.summary');
    expect(summary).toMatchObject({ day: '2026-03-10', posts: { acc_1: h.fake.sent().length }, joins: 0 });
  });
});

describe('the daemon with others and after crashes', () => {
  it('two daemons on one database never drive one account at once and never break a limit', async () => {
    const fake = new FakeTelegram({ clock: t.clock });
    const one = daemon({ fake, seed: 1 });
    const two = daemon({ fake, seed: 2 });
    await readyFleet(one, 4, 3);
    for (let round = 0; round < 300; round++) {
      await Promise.all([one.daemon.tick(), two.daemon.tick()]);
      await Promise.all([one.daemon.idle(), two.daemon.idle()]);
      t.clock.advance(60_000);
    }
    const a = one.daemon.drivenAccounts();
    const b = two.daemon.drivenAccounts();
    expect([...a, ...b].sort()).toEqual(['acc_1', 'acc_2', 'acc_3', 'acc_4']);
    expect(a.filter((x) => b.includes(x))).toEqual([]);
    expect(fake.calls.filter((c) => c.outcome?.kind === 'session_dead')).toEqual([]);
    expect(fake.violations()).toEqual([]);
    const perGroup = new Map<string, number>();
    for (const post of fake.sent()) perGroup.set(post.link!, (perGroup.get(post.link!) ?? 0) + 1);
    expect(Math.max(...perGroup.values())).toBeLessThanOrEqual(2);
    // The one that stops gives its accounts up; the other takes them over.
    await one.daemon.stop(1000);
    await two.daemon.tick();
    expect(two.daemon.drivenAccounts()).toEqual(['acc_1', 'acc_2', 'acc_3', 'acc_4']);
  });

  it('a crash between sending and recording: the post counts, is marked unknown, and is not re-sent', async () => {
    const fake = new FakeTelegram({ clock: t.clock });
    let release: () => void = () => undefined;
    // The first post reaches the group, but its answer never comes back.
    fake.on({ op: 'post', times: 1, delivers: true, outcome: () => undefined });
    const crashing = daemon({ fake });
    const { links } = await readyFleet(crashing, 1, 1);
    const hang = new Promise<void>((resolve) => {
      release = resolve;
    });
    const session = fake.session.bind(fake);
    fake.session = (account) => {
      const s = session(account);
      const post = s.post.bind(s);
      s.post = async (group, message) => {
        const outcome = post(group, message);
        await hang;
        return outcome;
      };
      return s;
    };
    await crashing.daemon.tick();
    t.clock.advance(60_000);
    await crashing.daemon.tick();
    await new Promise((r) => setTimeout(r, 200));
    expect(await t.query(`SELECT status FROM post_history`)).toEqual([{ status: 'pending' }]);
    // The process dies: its connection (and so its lock) is gone, and so are its Telegram sessions.
    await crashing.daemon.stop(10);
    fake.session = session;
    const heir = daemon({ fake });
    await heir.runFor(2 * HOUR);
    expect(await t.query(`SELECT status FROM post_history ORDER BY id LIMIT 1`)).toEqual([{ status: 'unknown' }]);
    expect(fake.calls.filter((c) => c.op === 'post' && c.link === links[0]![0]!)).toHaveLength(1);
    expect(await t.query(`SELECT daily_posts_count FROM accounts`)).toEqual([{ daily_posts_count: 1 }]);
    expect(heir.logs.find((l) => l.event === 'post.unknown')).toMatchObject({ account: 'acc_1', count: 1 });
    // The account itself is fine: no AUTH_KEY_DUPLICATED, still active.
    expect(fake.calls.filter((c) => c.outcome?.kind === 'session_dead')).toEqual([]);
    expect(await t.query(`SELECT status FROM accounts`)).toEqual([{ status: 'active' }]);
    release();
  });

  it("a process whose lock connection is cut stops the account's session before another takes it over", async () => {
    const fake = new FakeTelegram({ clock: t.clock });
    let release: () => void = () => undefined;
    const hang = new Promise<void>((resolve) => {
      release = resolve;
    });
    const first = daemon({ fake, seed: 1 });
    await readyFleet(first, 1, 3);
    const session = fake.session.bind(fake);
    fake.session = (account) => {
      const s = session(account);
      const post = s.post.bind(s);
      s.post = async (group, message) => {
        await hang;
        return post(group, message);
      };
      return s;
    };
    for (let i = 0; i < 3; i++) {
      await first.daemon.tick();
      t.clock.advance(60_000);
    }
    await new Promise((r) => setTimeout(r, 100));
    expect(await t.query(`SELECT status FROM post_history`)).toEqual([{ status: 'pending' }]);
    // The server cuts the first process's lock connection: its lock is free at once.
    await t.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'lexus account locks'`,
    );
    fake.session = session;
    const second = daemon({ fake, seed: 2 });
    await second.daemon.tick();
    expect(second.daemon.drivenAccounts()).toEqual(['acc_1']);
    // The first process notices on its next rounds and stops the session mid-action.
    await first.daemon.tick();
    await first.daemon.tick();
    // Its lock connection is gone, so it cannot vouch for the account: every session stops.
    expect(first.logs.find((l) => l.event === 'lease.lost')).toMatchObject({
      reason: 'lock connection lost',
      accounts: ['acc_1'],
    });
    await second.runFor(2 * HOUR);
    release();
    await first.daemon.idle();
    expect(fake.calls.filter((c) => c.outcome?.kind === 'session_dead')).toEqual([]);
    expect(await t.query(`SELECT status FROM accounts`)).toEqual([{ status: 'active' }]);
    expect(fake.sent().filter((c) => c.account === 'acc_1').length).toBeGreaterThan(0);
    expect(fake.violations()).toEqual([]);
  });
});

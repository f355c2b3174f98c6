/**
 * Rule 1 where Telegram's answers are unclear or misleading (issue 12, parts 3 to 6): a join whose
 * answer was lost, one chat under two links, the stored peer of a chat, the UTC midnight, and an
 * account-wide restriction that must not be read as a string of group bans.
 */
import { describe, expect, it } from 'vitest';
import { consequenceOf } from '../src/daemon/answers';
import { banAccount, takeOverAccount } from '../src/sql/accounts';
import { recordAnswer } from '../src/sql/answers';
import { learnChat, MAX_REOPENS, refuseTarget } from '../src/sql/groups';
import { claimJoinTarget, releaseJoinClaim } from '../src/sql/joining';
import type { FakeTelegram } from '../src/telegram/fakeGateway';
import { useDaemons } from './helpers/daemon';
import { useTestDatabase } from './helpers/database';
import { insertDrivableAccount as accountWithSession, insertBoundTarget, insertTarget } from './helpers/fixtures';

const t = useTestDatabase({ start: '2026-03-10T06:00:00.000Z' });
const HOUR = 3_600_000;
const daemon = useDaemons(t);

/** The accounts Telegram saw in each chat (joined, or a lost answer that made them a member). */
function membersByChat(fake: FakeTelegram): Map<string, Set<string>> {
  const members = new Map<string, Set<string>>();
  for (const c of fake.calls) {
    if (c.op !== 'join' || !c.joinedChat || !c.chat) continue;
    members.set(c.chat, (members.get(c.chat) ?? new Set()).add(c.account));
  }
  return members;
}

describe('a join whose answer was lost', () => {
  it('keeps the group with that account through its FloodWait: no other account joins it, and it joins again after the wait', async () => {
    const h = daemon();
    await accountWithSession(t, 'acc_1');
    await insertTarget(t, '@group_one');
    // The join happened, but its answer is a timeout; the next try meets a FloodWait.
    h.fake.on({
      op: 'join',
      times: 1,
      delivers: true,
      outcome: { kind: 'transient', error: 'request timed out', uncertain: true },
    });
    h.fake.on({
      op: 'join',
      account: 'acc_1',
      times: 1,
      outcome: { kind: 'account_flood_wait', seconds: 3600, error: 'FLOOD_WAIT_3600' },
    });
    await h.runFor(5 * 60_000);
    // A second account arrives while the first waits, with groups of its own to join meanwhile:
    // it looks at the queue (oldest first) every minute or so.
    await accountWithSession(t, 'acc_2');
    for (let i = 2; i <= 9; i++) await insertTarget(t, `@group_0${i}`);
    await h.runFor(4 * HOUR);
    expect(membersByChat(h.fake).get('@group_one')).toEqual(new Set(['acc_1']));
    expect(h.fake.calls.filter((c) => c.account === 'acc_2' && c.link === '@group_one')).toEqual([]);
    expect(
      await t.query(
        `SELECT t.status, a.session_name FROM targets t JOIN accounts a ON a.id = t.assigned_account_id WHERE t.link = '@group_one'`,
      ),
    ).toEqual([{ status: 'joined', session_name: 'acc_1' }]);
    expect(h.fake.violations()).toEqual([]);
  });

  it('keeps the group with that account when its session then dies: no other account joins it', async () => {
    const h = daemon();
    await accountWithSession(t, 'acc_1');
    await insertTarget(t, '@group_one');
    await insertTarget(t, '@group_two');
    h.fake.on({
      op: 'join',
      account: 'acc_1',
      times: 1,
      delivers: true,
      outcome: { kind: 'transient', error: 'request timed out', uncertain: true },
    });
    h.fake.on({ op: 'join', account: 'acc_1', outcome: { kind: 'session_dead', error: 'SESSION_REVOKED' } });
    await h.runFor(5 * 60_000);
    await accountWithSession(t, 'acc_2');
    await h.runFor(3 * HOUR);
    const [first] = h.fake.calls.filter((c) => c.op === 'join');
    expect(await t.query(`SELECT status FROM accounts WHERE session_name = 'acc_1'`)).toEqual([{ status: 'banned' }]);
    // The uncertain one stays claimed by acc_1; the other goes to acc_2.
    expect(
      await t.query(
        `SELECT t.link, t.join_uncertain, c.session_name AS claimed_by FROM targets t JOIN accounts c ON c.id = t.join_claimed_by`,
      ),
    ).toEqual([{ link: first!.link, join_uncertain: true, claimed_by: 'acc_1' }]);
    expect(h.fake.calls.filter((c) => c.account === 'acc_2' && c.link === first!.link)).toEqual([]);
    for (const members of membersByChat(h.fake).values()) expect(members.size).toBe(1);
  });
});

describe('one chat under two links', () => {
  it('gets one account: the second link is found to be the same chat before joining, closed as its duplicate, and the chat gets 2 posts a day', async () => {
    const h = daemon({ settings: { groupMinGapMs: 0 } });
    await accountWithSession(t, 'acc_1');
    await accountWithSession(t, 'acc_2');
    await insertTarget(t, '@autobazar_ua');
    await insertTarget(t, '@autobazar_ukraine');
    await insertTarget(t, '@kyiv_cars');
    h.fake.alias('@autobazar_ukraine', '@autobazar_ua');
    await h.runFor(3 * 24 * HOUR);
    expect(membersByChat(h.fake).get('@autobazar_ua')?.size).toBe(1);
    expect(h.fake.calls.filter((c) => c.op === 'join' && c.chat === '@autobazar_ua')).toHaveLength(1);
    expect(
      await t.query(`SELECT link, status, status_reason FROM targets WHERE link LIKE '@autobazar%' ORDER BY id`),
    ).toEqual([
      { link: '@autobazar_ua', status: 'joined', status_reason: null },
      { link: '@autobazar_ukraine', status: 'duplicate', status_reason: 'the same chat as @autobazar_ua (target #1)' },
    ]);
    const perChatDay = new Map<string, number>();
    for (const post of h.fake.sent()) {
      const key = `${post.chat} ${post.at.toISOString().slice(0, 10)}`;
      perChatDay.set(key, (perChatDay.get(key) ?? 0) + 1);
    }
    expect(Math.max(...perChatDay.values())).toBe(2);
    expect(h.logs.find((l) => l.event === 'group.duplicate')).toMatchObject({
      target: '@autobazar_ukraine',
      same_chat_as: '@autobazar_ua',
    });
  });

  it('an invite to a chat already bound, joined by another account, closes the invite row, never binds it, and says so', async () => {
    const h = daemon();
    const a = await accountWithSession(t, 'acc_1');
    await accountWithSession(t, 'acc_2');
    await insertBoundTarget(t, '@autobazar_ua', a, { joined_at: '2026-03-10T05:00:00Z' });
    await t.query(`UPDATE targets SET telegram_id = $1 WHERE link = '@autobazar_ua'`, [
      h.fake.identity('@autobazar_ua', 'acc_1').telegramId,
    ]);
    h.fake.addMember('@autobazar_ua', 'acc_1');
    await insertTarget(t, 'https://t.me/+AutobazarInvite1');
    h.fake.alias('https://t.me/+AutobazarInvite1', '@autobazar_ua');
    await h.runFor(HOUR);
    // Telegram does not tell the chat of an invite before joining: acc_2 joined, then the row was
    // found to be the bound chat's, closed, and not bound to acc_2.
    expect(await t.query(`SELECT link, status, assigned_account_id FROM targets ORDER BY id`)).toEqual([
      { link: '@autobazar_ua', status: 'joined', assigned_account_id: a },
      { link: 'https://t.me/+AutobazarInvite1', status: 'duplicate', assigned_account_id: null },
    ]);
    expect(h.fake.calls.filter((c) => c.op === 'post' && c.account === 'acc_2')).toEqual([]);
  });
});

describe("a chat's stored peer", () => {
  it('is kept from the join and posted to without a lookup, so a renamed group still gets its posts', async () => {
    const h = daemon({ settings: { groupMinGapMs: 0 } });
    await accountWithSession(t, 'acc_1');
    await insertTarget(t, '@group_one');
    await h.runFor(25 * HOUR);
    const [row] = await t.query<{ telegram_id: string; peer_access_hash: string }>(
      `SELECT telegram_id, peer_access_hash FROM targets`,
    );
    const identity = h.fake.identity('@group_one', 'acc_1');
    expect(row).toEqual({ telegram_id: identity.telegramId, peer_access_hash: identity.accessHash });
    h.fake.rename('@group_one');
    await h.runFor(24 * HOUR);
    const posts = h.fake.calls.filter((c) => c.op === 'post');
    expect(posts.length).toBeGreaterThanOrEqual(2);
    expect(posts.every((c) => c.lookups === undefined && c.outcome?.kind === 'sent')).toBe(true);
  });

  it('that stops working is reported, forgotten, and the link looked up once more', async () => {
    const h = daemon({ settings: { groupMinGapMs: 0 } });
    const a = await accountWithSession(t, 'acc_1');
    await insertBoundTarget(t, '@group_one', a);
    h.fake.addMember('@group_one', 'acc_1');
    await t.query(`UPDATE targets SET telegram_id = $1, peer_access_hash = '12345'`, [
      h.fake.identity('@group_one', 'acc_1').telegramId,
    ]);
    await h.runFor(HOUR);
    // Refused, looked up and sent (the group held 30 min meanwhile), then sent to the new stored peer.
    expect(h.fake.calls.filter((c) => c.op === 'post').map((c) => c.outcome?.kind)).toEqual([
      'peer_invalid',
      'sent',
      'sent',
    ]);
    expect(h.fake.calls.filter((c) => c.op === 'post').map((c) => c.lookups ?? 0)).toEqual([0, 1, 0]);
    expect(h.logs.find((l) => l.event === 'group.peer_invalid')).toMatchObject({
      target: '@group_one',
      error: 'CHANNEL_INVALID',
    });
    expect(await t.query(`SELECT peer_access_hash FROM targets`)).toEqual([
      { peer_access_hash: h.fake.identity('@group_one', 'acc_1').accessHash },
    ]);
  });
});

describe('the UTC midnight', () => {
  it('no post is reserved in the last three minutes of a UTC day, so none lands on the next day counted on the old one', async () => {
    t.clock.set('2026-03-10T23:57:01.000Z');
    const h = daemon({ settings: { groupMinGapMs: 0, actionDelayMs: { min: 1000, max: 1000 } } });
    const a = await accountWithSession(t, 'acc_1');
    for (const link of ['@group_one', '@group_two']) {
      await insertBoundTarget(t, link, a, {
        daily_posts_in_group: 1,
        last_group_stats_reset: '2026-03-10T10:00:00Z',
        last_post_at: '2026-03-10T10:00:00Z',
      });
      h.fake.addMember(link, 'acc_1');
    }
    await h.runFor(10 * 60_000);
    const posts = h.fake.calls.filter((c) => c.op === 'post');
    expect(posts.length).toBeGreaterThan(0);
    expect(posts.every((c) => c.at.getTime() >= Date.parse('2026-03-11T00:00:00Z'))).toBe(true);
    // Counted on the day they land.
    expect(
      await t.query(`SELECT to_char(created_at, 'YYYY-MM-DD') AS day, count(*)::int AS n FROM post_history GROUP BY 1`),
    ).toEqual([{ day: '2026-03-11', n: posts.length }]);
  });
});

describe('a process taking an account over', () => {
  it("settles the previous process's unsettled slots in one transaction: the slot and the group's last post together, or neither", async () => {
    const a = await accountWithSession(t, 'acc_1');
    const g = await insertBoundTarget(t, '@group_one', a);
    await t.db.reservePostSlot({ accountId: a, targetId: g });
    await t.query(
      `CREATE OR REPLACE FUNCTION fail_target_writes() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'disk full' USING ERRCODE = '53100'; END $$`,
    );
    await t.query(
      `CREATE TRIGGER fail_target_writes BEFORE UPDATE OF last_post_at ON targets FOR EACH ROW EXECUTE FUNCTION fail_target_writes()`,
    );
    try {
      await expect(takeOverAccount(t.dataSource, a, t.clock.now())).rejects.toThrow('disk full');
      expect(await t.query(`SELECT status FROM post_history`)).toEqual([{ status: 'pending' }]);
    } finally {
      await t.query(`DROP TRIGGER fail_target_writes ON targets`);
    }
    expect(await takeOverAccount(t.dataSource, a, t.clock.now())).toMatchObject({ abandonedSlots: 1 });
    expect(
      await t.query(`SELECT h.status, t.last_post_at FROM post_history h JOIN targets t ON t.id = h.target_id`),
    ).toEqual([{ status: 'unknown', last_post_at: t.clock.now() }]);
  });
});

describe('an account Telegram restricts for spam', () => {
  it('loses no group: refusals from two groups within an hour pause the account and reopen them; it comes back at half its budget', async () => {
    const h = daemon({ settings: { groupMinGapMs: 0 } });
    const a = await accountWithSession(t, 'acc_1');
    for (let i = 1; i <= 12; i++) {
      const link = `@group_${String(i).padStart(2, '0')}`;
      await insertBoundTarget(t, link, a);
      h.fake.addMember(link, 'acc_1');
    }
    for (let i = 1; i <= 5; i++) await insertTarget(t, `@new_group_${i}`);
    // Refused by every group for two days.
    h.fake.restrict('acc_1', t.clock.now(), new Date(t.clock.now().getTime() + 48 * HOUR));
    await h.runFor(47 * HOUR);
    expect(await t.query(`SELECT count(*)::int AS n FROM targets WHERE status IN ('banned', 'error')`)).toEqual([
      { n: 0 },
    ]);
    const [account] = await t.query<{ status: string; status_reason: string; limited_since: Date }>(
      `SELECT status, status_reason, limited_since FROM accounts`,
    );
    expect(account).toMatchObject({
      status: 'flood_wait',
      status_reason: 'restricted by Telegram: 2 groups refused it in a row within 60 min (USER_BANNED_IN_CHANNEL)',
    });
    expect(h.logs.filter((l) => l.event === 'account.restricted').length).toBeGreaterThanOrEqual(1);
    // Two refusals, then 24 h of nothing, each time: a handful of calls, no joins meanwhile.
    const refused = h.fake.calls.filter((c) => c.restricted);
    expect(refused.length).toBeLessThanOrEqual(4);
    expect(h.fake.calls.filter((c) => c.op === 'join')).toEqual([]);

    // Free again: back on the day its pause ends at half its budget (10 of 20), then more.
    await h.runFor(4 * 24 * HOUR);
    expect(await t.query(`SELECT count(*)::int AS n FROM targets WHERE status IN ('banned', 'error')`)).toEqual([
      { n: 0 },
    ]);
    const [pause] = await t.query<{ limited_until: Date }>(`SELECT limited_until FROM accounts`);
    const dayOf = (d: Date) => d.toISOString().slice(0, 10);
    const perDay = new Map<string, number>();
    for (const post of h.fake.sent()) perDay.set(dayOf(post.at), (perDay.get(dayOf(post.at)) ?? 0) + 1);
    const returnDay = dayOf(pause!.limited_until);
    expect(perDay.get(returnDay) ?? 0).toBeLessThanOrEqual(10);
    const next = (day: string, n: number) => dayOf(new Date(Date.parse(`${day}T00:00:00Z`) + n * 24 * HOUR));
    expect(perDay.get(next(returnDay, 1))).toBe(15);
    expect(perDay.get(next(returnDay, 2))).toBe(20);
    expect(h.fake.violations()).toEqual([]);
  });

  it('a single group that bans us is still closed for good', async () => {
    const h = daemon({ settings: { groupMinGapMs: 0 } });
    const a = await accountWithSession(t, 'acc_1');
    for (const link of ['@group_one', '@group_two', '@group_three']) {
      await insertBoundTarget(t, link, a);
      h.fake.addMember(link, 'acc_1');
    }
    h.fake.on({
      op: 'post',
      link: '@group_two',
      outcome: { kind: 'group_refuses', reason: 'banned', error: 'USER_BANNED_IN_CHANNEL' },
    });
    await h.runFor(2 * 24 * HOUR);
    expect(await t.query(`SELECT link, status FROM targets ORDER BY id`)).toEqual([
      { link: '@group_one', status: 'joined' },
      { link: '@group_two', status: 'banned' },
      { link: '@group_three', status: 'joined' },
    ]);
    expect(h.fake.calls.filter((c) => c.link === '@group_two')).toHaveLength(1);
    expect(await t.query(`SELECT status, status_reason FROM accounts`)).toEqual([
      { status: 'active', status_reason: null },
    ]);
  });
});

describe('refusals read as a restriction (refuseTarget)', () => {
  const policy = { peerFloodPauseMs: 24 * HOUR, restriction: { refusals: 2, windowMs: HOUR } };
  const refuse = (accountId: number, targetId: number, at: string) =>
    refuseTarget(t.dataSource, {
      targetId,
      accountId,
      reason: 'banned: USER_BANNED_IN_CHANNEL',
      countsForRestriction: true,
      now: new Date(at),
      policy,
    });

  it('only when nothing the account sent went out between them, within the window; a reopened group refusing again after a post went out is final', async () => {
    const a = await accountWithSession(t, 'acc_1');
    const [g1, g2, g3, g4] = [
      await insertBoundTarget(t, '@group_one', a),
      await insertBoundTarget(t, '@group_two', a),
      await insertBoundTarget(t, '@group_three', a),
      await insertBoundTarget(t, '@group_four', a),
    ];
    // Two genuine bans with a post that went out between them: two bans.
    expect(await refuse(a, g1!, '2026-03-10T06:00:00Z')).toEqual({ restricted: null });
    await t.query(
      `INSERT INTO post_history (account_id, target_id, status, created_at) VALUES ($1, $2, 'success', '2026-03-10T06:05:00')`,
      [a, g3],
    );
    expect(await refuse(a, g2!, '2026-03-10T06:10:00Z')).toEqual({ restricted: null });
    expect(await t.query(`SELECT count(*)::int AS n FROM targets WHERE status = 'banned'`)).toEqual([{ n: 2 }]);
    // Two in a row, nothing sent between: the account, not the groups. An hour apart: not.
    expect(await refuse(a, g3!, '2026-03-10T08:00:00Z')).toEqual({ restricted: null });
    expect(await refuse(a, g4!, '2026-03-10T08:30:00Z')).toEqual({ restricted: 2 });
    expect(await t.query(`SELECT link, status FROM targets WHERE reopened_at IS NOT NULL ORDER BY id`)).toEqual([
      { link: '@group_three', status: 'joined' },
      { link: '@group_four', status: 'joined' },
    ]);
    // Still restricted the next day (nothing went out): still read as the restriction.
    expect(await refuse(a, g3!, '2026-03-11T09:00:00Z')).toEqual({ restricted: null });
    expect(await refuse(a, g4!, '2026-03-11T09:01:00Z')).toEqual({ restricted: 2 });
    // Free again, a post goes out; a reopened group that refuses now banned us for real.
    await t.query(
      `INSERT INTO post_history (account_id, target_id, status, created_at) VALUES ($1, $2, 'success', '2026-03-12T10:00:00')`,
      [a, g4],
    );
    expect(await refuse(a, g3!, '2026-03-12T10:05:00Z')).toEqual({ restricted: null });
    expect(await refuse(a, g4!, '2026-03-12T10:06:00Z')).toEqual({ restricted: null });
    expect(
      await t.query(
        `SELECT link, status, refused_account_id FROM targets WHERE link IN ('@group_three', '@group_four') ORDER BY id`,
      ),
    ).toEqual([
      { link: '@group_three', status: 'banned', refused_account_id: null },
      { link: '@group_four', status: 'banned', refused_account_id: null },
    ]);
  });
});

describe('recording an answer twice (a commit whose acknowledgement was lost)', () => {
  it('applies it once: the restriction stays a restriction, the join is counted once', async () => {
    const a = await accountWithSession(t, 'acc_1');
    const g1 = await insertBoundTarget(t, '@group_one', a);
    const g2 = await insertBoundTarget(t, '@group_two', a);
    const policy = { peerFloodPauseMs: 24 * HOUR, restriction: { refusals: 2, windowMs: HOUR } };
    const refusal = (answerId: string, targetId: number, at: string) => ({
      answerId,
      accountId: a,
      at: new Date(at),
      call: 'post' as const,
      outcome: 'group_refuses',
      error: 'USER_BANNED_IN_CHANNEL',
      targetId,
      consequence: consequenceOf('post', { kind: 'group_refuses', reason: 'banned', error: 'USER_BANNED_IN_CHANNEL' }),
      callStartedAt: null,
      policy,
    });
    expect(await recordAnswer(t.dataSource, refusal('p:1', g1!, '2026-03-10T06:00:00Z'))).toMatchObject({
      restricted: null,
    });
    const second = refusal('p:2', g2!, '2026-03-10T06:01:00Z');
    expect(await recordAnswer(t.dataSource, second)).toMatchObject({ restricted: { refusals: 2 } });
    const after = await t.query(`SELECT link, status, reopen_count FROM targets ORDER BY id`);
    // The same record again: nothing changes, and it still says how long the account waits.
    const again = await recordAnswer(t.dataSource, second);
    expect(again.holdUntil).toEqual(new Date('2026-03-11T06:01:00Z'));
    expect(await t.query(`SELECT link, status, reopen_count FROM targets ORDER BY id`)).toEqual(after);
    expect(after).toEqual([
      { link: '@group_one', status: 'joined', reopen_count: 1 },
      { link: '@group_two', status: 'joined', reopen_count: 1 },
    ]);
    const g3 = await insertTarget(t, '@group_three');
    const join = {
      answerId: 'p:3',
      accountId: a,
      at: new Date('2026-03-12T06:00:00Z'),
      call: 'join' as const,
      outcome: 'transient',
      error: 'RPC_CALL_FAIL',
      targetId: g3,
      consequence: consequenceOf('join', { kind: 'transient', error: 'RPC_CALL_FAIL', uncertain: false }),
      callStartedAt: null,
      policy,
    };
    await recordAnswer(t.dataSource, join);
    await recordAnswer(t.dataSource, join);
    expect(await t.query(`SELECT count(*)::int AS n FROM join_history`)).toEqual([{ n: 1 }]);
  });
});

describe('which of two rows of one chat keeps it (learnChat)', () => {
  const chat = { telegramId: '-1001234567890', accessHash: '77', title: 'Авторинок' };
  /** Two rows of one chat: the other one, whose id is known, and this one, claimed by acc_1. */
  async function pair() {
    const a = await accountWithSession(t, 'acc_1');
    const b = await accountWithSession(t, 'acc_2');
    const otherId = await insertTarget(t, '@autobazar_ua');
    await t.query(`UPDATE targets SET telegram_id = $1 WHERE id = $2`, [chat.telegramId, otherId]);
    const mine = await insertTarget(t, '@autobazar_ukraine');
    await t.query(`UPDATE targets SET join_claimed_by = $1 WHERE id = $2`, [a, mine]);
    return { a, b, otherId, mine };
  }
  const learn = (accountId: number, targetId: number) =>
    learnChat(t.dataSource, { targetId, accountId, chat, now: t.clock.now() });
  const statuses = async () => t.query(`SELECT link, status, telegram_id FROM targets ORDER BY id`);

  it('the other row, when another account holds it (bound, claimed) or it refused us', async () => {
    for (const [name, setup] of [
      [
        'bound',
        async (ids: { b: number; otherId: number }) =>
          t.query(
            `UPDATE targets SET status = 'joined', assigned_account_id = $1, joined_at = '2026-03-09T06:00:00' WHERE id = $2`,
            [ids.b, ids.otherId],
          ),
      ],
      [
        'claimed by another account',
        async (ids: { b: number; otherId: number }) =>
          t.query(`UPDATE targets SET join_claimed_by = $1 WHERE id = $2`, [ids.b, ids.otherId]),
      ],
      [
        'banned',
        async (ids: { b: number; otherId: number }) =>
          t.query(`UPDATE targets SET status = 'banned' WHERE id = $1`, [ids.otherId]),
      ],
      [
        'an orphan once joined',
        async (ids: { b: number; otherId: number }) =>
          t.query(`UPDATE targets SET status = 'joined', joined_at = '2026-03-09T06:00:00' WHERE id = $1`, [
            ids.otherId,
          ]),
      ],
    ] as const) {
      await t.query('TRUNCATE post_history, targets, accounts RESTART IDENTITY CASCADE');
      const ids = await pair();
      await setup(ids);
      expect({ name, learnt: await learn(ids.a, ids.mine) }).toEqual({
        name,
        learnt: { duplicateOf: '@autobazar_ua', absorbed: null },
      });
      expect((await statuses()).map((r) => r.status)[1]).toBe('duplicate');
    }
  });

  it('this row, when nobody holds the other (new, a dead link); a row closed already stays closed', async () => {
    const ids = await pair();
    expect(await learn(ids.a, ids.mine)).toEqual({ duplicateOf: null, absorbed: '@autobazar_ua' });
    expect(await statuses()).toEqual([
      { link: '@autobazar_ua', status: 'duplicate', telegram_id: chat.telegramId },
      { link: '@autobazar_ukraine', status: 'new', telegram_id: chat.telegramId },
    ]);
    // Learnt again (a retry), nothing moves; the closed row learning the chat stays closed.
    expect(await learn(ids.a, ids.mine)).toEqual({ duplicateOf: null, absorbed: null });
    expect(await learn(ids.a, ids.otherId)).toEqual({ duplicateOf: '@autobazar_ukraine', absorbed: null });
    expect((await statuses()).map((r) => r.status)).toEqual(['duplicate', 'new']);
  });
});

describe("a group reopened as an account's restriction", () => {
  const policy = { peerFloodPauseMs: 24 * HOUR, restriction: { refusals: 2, windowMs: HOUR } };
  it('stays claimed by that account, and is reopened at most a week of times', async () => {
    const a = await accountWithSession(t, 'acc_1');
    const b = await accountWithSession(t, 'acc_2');
    const [g1, g2] = [await insertTarget(t, '@group_one'), await insertTarget(t, '@group_two')];
    await t.query(`UPDATE targets SET join_claimed_by = $1`, [a]);
    const refuse = (targetId: number, at: Date) =>
      refuseTarget(t.dataSource, {
        targetId,
        accountId: a,
        reason: 'read_only: CHAT_WRITE_FORBIDDEN',
        countsForRestriction: true,
        now: at,
        policy,
      });
    for (let day = 0; day < MAX_REOPENS; day++) {
      const at = new Date(Date.parse('2026-03-10T06:00:00Z') + day * 24 * HOUR);
      await refuse(g1!, at);
      expect(await refuse(g2!, new Date(at.getTime() + 60_000))).toEqual({ restricted: 2 });
    }
    // Its claim stays: a FloodWait or a dead session of the account never hands it to another.
    await releaseJoinClaim(t.dataSource, g1!, a, t.clock.now());
    await banAccount(t.dataSource, a, 'session dead: SESSION_REVOKED', t.clock.now());
    expect(await t.query(`SELECT status, join_claimed_by, reopen_count FROM targets ORDER BY id`)).toEqual([
      { status: 'new', join_claimed_by: a, reopen_count: MAX_REOPENS },
      { status: 'new', join_claimed_by: a, reopen_count: MAX_REOPENS },
    ]);
    expect(await claimJoinTarget(t.dataSource, b, ['ukraine_cars'], t.clock.now())).toBeNull();
    // An eighth time: final.
    const at = new Date(Date.parse('2026-03-10T06:00:00Z') + MAX_REOPENS * 24 * HOUR);
    await refuse(g1!, at);
    expect(await refuse(g2!, new Date(at.getTime() + 60_000))).toEqual({ restricted: null });
    expect(await t.query(`SELECT status FROM targets ORDER BY id`)).toEqual([
      { status: 'banned' },
      { status: 'banned' },
    ]);
  });
});

import { describe, expect, it } from 'vitest';
import { DbManager, NotFoundError } from '../src/db/DbManager';
import { Account, Target } from '../src/db/entities';
import { InvalidLinkError } from '../src/links';
import { useTestDatabase } from './helpers/database';
import {
  counters,
  historyStatuses,
  insertAccount,
  insertBoundTarget,
  insertTarget,
  storedText,
} from './helpers/fixtures';

const t = useTestDatabase();

const at = (iso: string) => new Date(iso);

describe('assignGroup', () => {
  it('creates the group if missing, normalized, bound, joined, with a 24 h warm-up', async () => {
    const a = await insertAccount(t, 'acc_a');
    expect(await t.db.assignGroup('https://t.me/AutoBazar_UA/', a, at('2026-03-10T08:15:30.250Z'))).toBe(true);
    const [row] = await t.query<Record<string, unknown>>(
      'SELECT id, link, niche, status, assigned_account_id FROM targets',
    );
    expect(row).toEqual({
      id: 1,
      link: '@autobazar_ua',
      niche: 'ukraine_cars',
      status: 'joined',
      assigned_account_id: a,
    });
    expect(await storedText(t, 'targets', 'joined_at', 1)).toBe('2026-03-10T08:15:30.250');
    expect(await storedText(t, 'targets', 'warmup_ends_at', 1)).toBe('2026-03-11T08:15:30.250');
  });

  it('takes the join time from the clock when none is given, and can set the niche of a new group', async () => {
    const a = await insertAccount(t, 'acc_a');
    expect(await t.db.assignGroup('@kyiv_cars', a, undefined, { niche: 'kyiv_cars' })).toBe(true);
    expect(await storedText(t, 'targets', 'joined_at', 1)).toBe('2026-03-10T09:00:00.000');
    expect(await t.query('SELECT niche FROM targets')).toEqual([{ niche: 'kyiv_cars' }]);
  });

  it('binds an existing new group without changing its niche', async () => {
    const a = await insertAccount(t, 'acc_a');
    const g = await insertTarget(t, '@odesa_auto', { niche: 'odesa' });
    expect(await t.db.assignGroup('t.me/Odesa_Auto', a)).toBe(true);
    expect(await t.query('SELECT id, niche, status, assigned_account_id FROM targets')).toEqual([
      { id: g, niche: 'odesa', status: 'joined', assigned_account_id: a },
    ]);
  });

  it('never moves a binding: another account gets false and the group stays as it was', async () => {
    const a = await insertAccount(t, 'acc_a');
    const b = await insertAccount(t, 'acc_b');
    expect(await t.db.assignGroup('@autobazar_ua', a, at('2026-03-09T10:00:00Z'))).toBe(true);
    expect(await t.db.assignGroup('t.me/autobazar_ua', b)).toBe(false);
    expect(await t.query('SELECT assigned_account_id FROM targets')).toEqual([{ assigned_account_id: a }]);
    expect(await storedText(t, 'targets', 'joined_at', 1)).toBe('2026-03-09T10:00:00.000');
  });

  it('binding again to the same account is true and does not restart the warm-up', async () => {
    const a = await insertAccount(t, 'acc_a');
    await t.db.assignGroup('@autobazar_ua', a, at('2026-03-09T10:00:00Z'));
    expect(await t.db.assignGroup('@autobazar_ua', a, at('2026-03-10T09:00:00Z'))).toBe(true);
    expect(await storedText(t, 'targets', 'warmup_ends_at', 1)).toBe('2026-03-10T10:00:00.000');
  });

  it('refuses a group that banned us, and an orphan whose account was deleted', async () => {
    const a = await insertAccount(t, 'acc_a');
    const b = await insertAccount(t, 'acc_b');
    await insertTarget(t, '@banned_group', { status: 'banned' });
    await insertBoundTarget(t, '@orphan_group', b);
    await t.query('DELETE FROM accounts WHERE id = $1', [b]);
    expect(await t.query(`SELECT status, assigned_account_id FROM targets WHERE link = '@orphan_group'`)).toEqual([
      { status: 'joined', assigned_account_id: null },
    ]);
    expect(await t.db.assignGroup('@banned_group', a)).toBe(false);
    expect(await t.db.assignGroup('@orphan_group', a)).toBe(false);
    expect(await t.db.getGroupsReadyForPosting()).toEqual([]);
  });

  it('binds a group whose join failed before, with a fresh warm-up', async () => {
    const a = await insertAccount(t, 'acc_a');
    await insertTarget(t, '@flaky_group', { status: 'error' });
    expect(await t.db.assignGroup('@flaky_group', a)).toBe(true);
    expect(await storedText(t, 'targets', 'warmup_ends_at', 1)).toBe('2026-03-11T09:00:00.000');
  });

  it('refuses an unbound group that another account of ours was in: joined before, or posted to', async () => {
    const a = await insertAccount(t, 'acc_a');
    const b = await insertAccount(t, 'acc_b');
    await insertTarget(t, '@was_joined', { status: 'error', joined_at: '2026-01-01T00:00:00Z' });
    const posted = await insertTarget(t, '@was_posted_to', { status: 'new' });
    // The old system's history: b posted there, the binding was lost since.
    await t.query('ALTER TABLE post_history DISABLE TRIGGER post_history_only_bound_account');
    await t.query(`INSERT INTO post_history (account_id, target_id, status) VALUES ($1, $2, 'success')`, [b, posted]);
    await t.query('ALTER TABLE post_history ENABLE TRIGGER post_history_only_bound_account');
    expect(await t.db.assignGroup('@was_joined', a)).toBe(false);
    expect(await t.db.assignGroup('@was_posted_to', a)).toBe(false);
    expect(await t.db.assignGroup('@was_posted_to', b)).toBe(true);
  });

  it('throws on a bad link and on an unknown account instead of returning false', async () => {
    await expect(t.db.assignGroup('t.me/c/123/45', 1)).rejects.toThrow(InvalidLinkError);
    await expect(t.db.assignGroup('@autobazar_ua', 999)).rejects.toThrow(/foreign key/);
    expect(await t.query('SELECT * FROM targets')).toEqual([]);
  });
});

describe('the database keeps rule 1 on its own', () => {
  it('refuses to rebind or unbind a group by a plain UPDATE', async () => {
    const a = await insertAccount(t, 'acc_a');
    const b = await insertAccount(t, 'acc_b');
    const g = await insertBoundTarget(t, '@autobazar_ua', a);
    await expect(t.query('UPDATE targets SET assigned_account_id = $1 WHERE id = $2', [b, g])).rejects.toThrow(
      /bound to account/,
    );
    await expect(t.query('UPDATE targets SET assigned_account_id = NULL WHERE id = $1', [g])).rejects.toThrow(
      /bound to account/,
    );
    expect(await t.query('SELECT assigned_account_id FROM targets')).toEqual([{ assigned_account_id: a }]);
  });

  it('refuses a post history row from an account the group is not bound to', async () => {
    const a = await insertAccount(t, 'acc_a');
    const b = await insertAccount(t, 'acc_b');
    const g = await insertBoundTarget(t, '@autobazar_ua', a);
    await expect(t.db.recordPost({ accountId: b, targetId: g })).rejects.toThrow(/not bound/);
    await expect(
      t.query(`INSERT INTO post_history (account_id, target_id, status) VALUES ($1, $2, 'pending')`, [b, g]),
    ).rejects.toThrow(/not bound/);
    expect(await counters(t, b, g)).toEqual({ account: 0, group: 0 });
    expect(await historyStatuses(t)).toEqual([]);
    // A failed attempt may still be recorded, for the record.
    await t.db.recordPost({ accountId: b, targetId: g, status: 'error', errorMessage: 'CHAT_WRITE_FORBIDDEN' });
    expect(await historyStatuses(t)).toEqual(['error']);
  });
});

describe('getGroupsReadyForPosting', () => {
  // One ready group, and next to it groups that each fail exactly one of the seven rules.
  async function world() {
    const ok = await insertAccount(t, 'ok');
    const full = await insertAccount(t, 'full', { daily_posts_count: 20, last_stats_reset: '2026-03-10T01:00:00Z' });
    const waiting = await insertAccount(t, 'waiting', {
      status: 'flood_wait',
      next_allowed_action_time: '2026-03-10T09:00:01Z',
    });
    const banned = await insertAccount(t, 'banned', { status: 'banned' });
    const ids = {
      ready: await insertBoundTarget(t, '@ready', ok),
      otherNiche: await insertBoundTarget(t, '@other_niche', ok, { niche: 'bali_villas' }),
      notJoined: await insertTarget(t, '@not_joined', { status: 'new' }),
      errored: await insertBoundTarget(t, '@errored', ok, { status: 'error' }),
      warming: await insertBoundTarget(t, '@warming', ok, { joined_at: '2026-03-09T09:00:00.001Z' }),
      groupFull: await insertBoundTarget(t, '@group_full', ok, {
        daily_posts_in_group: 2,
        last_group_stats_reset: '2026-03-10T00:00:00Z',
      }),
      accountFull: await insertBoundTarget(t, '@account_full', full),
      accountWaiting: await insertBoundTarget(t, '@account_waiting', waiting),
      accountBanned: await insertBoundTarget(t, '@account_banned', banned),
    };
    return ids;
  }

  it('returns only groups that pass all seven rules, with their account', async () => {
    const ids = await world();
    const ready = await t.db.getGroupsReadyForPosting('ukraine_cars');
    expect(ready.map((g) => g.id)).toEqual([ids.ready]);
    expect(ready[0]!.assignedAccount?.sessionName).toBe('ok');
    expect(ready[0]!.isWarmupFinished(t.clock.now())).toBe(true);
    expect((await t.db.getGroupsReadyForPosting('bali_villas')).map((g) => g.id)).toEqual([ids.otherNiche]);
  });

  it('lets each excluded group in once its one rule is lifted', async () => {
    const ids = await world();
    t.clock.set('2026-03-10T09:00:01.000Z'); // the FloodWait ends; the warm-up (at 09:00:00.001) too
    const ready = (await t.db.getGroupsReadyForPosting()).map((g) => g.id).sort((x, y) => x - y);
    expect(ready).toEqual([ids.ready, ids.warming, ids.accountWaiting].sort((x, y) => x - y));
    t.clock.set('2026-03-11T00:00:00.000Z'); // a new UTC day: both limits start again
    expect((await t.db.getGroupsReadyForPosting()).map((g) => g.id).sort((x, y) => x - y)).toEqual(
      [ids.ready, ids.warming, ids.groupFull, ids.accountFull, ids.accountWaiting].sort((x, y) => x - y),
    );
  });

  it('a FloodWait time in the future stops an account whatever its status says', async () => {
    const a = await insertAccount(t, 'acc', { status: 'active', next_allowed_action_time: '2026-03-10T09:00:00.001Z' });
    const g = await insertBoundTarget(t, '@g', a);
    expect(await t.db.getGroupsReadyForPosting()).toEqual([]);
    expect(await t.db.reservePostSlot({ accountId: a, targetId: g })).toBeNull();
    t.clock.advance(1);
    expect((await t.db.getGroupsReadyForPosting()).map((x) => x.id)).toEqual([g]);
  });

  it('holds the warm-up to the millisecond, and to joined_at + 24 h even if warmup_ends_at says earlier', async () => {
    const a = await insertAccount(t, 'acc');
    await insertBoundTarget(t, '@g1', a, { joined_at: '2026-03-09T09:00:00.000Z' });
    await insertBoundTarget(t, '@g2', a, {
      joined_at: '2026-03-09T20:00:00.000Z',
      warmup_ends_at: '2026-03-09T21:00:00.000Z',
    });
    t.clock.set('2026-03-10T08:59:59.999Z');
    expect(await t.db.getGroupsReadyForPosting()).toEqual([]);
    t.clock.set('2026-03-10T09:00:00.000Z');
    expect((await t.db.getGroupsReadyForPosting()).map((g) => g.link)).toEqual(['@g1']);
    t.clock.set('2026-03-10T19:59:59.999Z');
    expect((await t.db.getGroupsReadyForPosting()).map((g) => g.link)).toEqual(['@g1']);
    t.clock.set('2026-03-10T20:00:00.000Z');
    expect((await t.db.getGroupsReadyForPosting()).map((g) => g.link)).toEqual(['@g1', '@g2']);
  });

  it('serves never-posted groups first, then the oldest post, and honours the limit', async () => {
    const a = await insertAccount(t, 'acc');
    await insertBoundTarget(t, '@posted_recently', a, { last_post_at: '2026-03-09T20:00:00Z' });
    await insertBoundTarget(t, '@never_1', a);
    await insertBoundTarget(t, '@posted_long_ago', a, { last_post_at: '2026-03-08T20:00:00Z' });
    await insertBoundTarget(t, '@never_2', a);
    expect((await t.db.getGroupsReadyForPosting()).map((g) => g.link)).toEqual([
      '@never_1',
      '@never_2',
      '@posted_long_ago',
      '@posted_recently',
    ]);
    expect((await t.db.getGroupsReadyForPosting('ukraine_cars', 3)).map((g) => g.link)).toEqual([
      '@never_1',
      '@never_2',
      '@posted_long_ago',
    ]);
  });

  it('returns each group and its account exactly as TypeORM itself loads them', async () => {
    const a = await insertAccount(t, 'acc', {
      daily_posts_count: 3,
      last_stats_reset: '2026-03-10T00:00:05Z',
      phone: '+380501234567',
      api_id: 12345,
    });
    const g = await insertBoundTarget(t, '@full_row', a, { last_post_at: '2026-03-09T20:00:00.123Z' });
    await t.query(`UPDATE targets SET telegram_id = 9007199254740993, title = 'Авто Київ' WHERE id = $1`, [g]);
    const [group] = await t.db.getGroupsReadyForPosting('ukraine_cars', 1);
    const loaded = await t.dataSource
      .getRepository(Target)
      .findOne({ where: { id: g }, relations: { assignedAccount: true } });
    expect(group).toBeInstanceOf(Target);
    expect(group!.assignedAccount).toBeInstanceOf(Account);
    expect(group).toEqual(loaded);
    expect(group!.telegramId).toBe('9007199254740993');
    expect(group!.lastPostAt).toEqual(new Date('2026-03-09T20:00:00.123Z'));
  });

  it('with a limit, skips past any number of groups that are not ready yet', async () => {
    const a = await insertAccount(t, 'acc');
    // 600 never-posted groups still in warm-up come first in serving order; the ready ones after.
    await t.query(
      `INSERT INTO targets (link, niche, status, assigned_account_id, joined_at, warmup_ends_at)
       SELECT '@warming_' || i, 'ukraine_cars', 'joined', $1, '2026-03-10T08:00:00', '2026-03-11T08:00:00' FROM generate_series(1000, 1599) i`,
      [a],
    );
    const ready = [
      await insertBoundTarget(t, '@ready_one', a, { last_post_at: '2026-03-08T10:00:00Z' }),
      await insertBoundTarget(t, '@ready_two', a, { last_post_at: '2026-03-08T09:00:00Z' }),
      await insertBoundTarget(t, '@ready_three', a, { last_post_at: '2026-03-08T11:00:00Z' }),
    ];
    expect((await t.db.getGroupsReadyForPosting('ukraine_cars', 2)).map((x) => x.id)).toEqual([ready[1], ready[0]]);
    expect((await t.db.getGroupsReadyForPosting('ukraine_cars', 10)).map((x) => x.id)).toEqual([
      ready[1],
      ready[0],
      ready[2],
    ]);
    expect((await t.db.getGroupsReadyForPosting('ukraine_cars')).map((x) => x.id)).toEqual([
      ready[1],
      ready[0],
      ready[2],
    ]);
  });

  it('counts a counter last reset before UTC midnight as 0, and resets it on its first call of the day', async () => {
    const a = await insertAccount(t, 'acc', { daily_posts_count: 20, last_stats_reset: '2026-03-09T23:59:59Z' });
    const g = await insertBoundTarget(t, '@g', a, {
      daily_posts_in_group: 2,
      last_group_stats_reset: '2026-03-09T12:00:00Z',
    });
    const manager = new DbManager(t.dataSource, { clock: t.clock });
    expect((await manager.getGroupsReadyForPosting()).map((x) => x.id)).toEqual([g]);
    expect(await counters(t, a, g)).toEqual({ account: 0, group: 0 });
    // Later the same day it does not reset again; a stale counter still reads as 0.
    await t.query(`UPDATE accounts SET daily_posts_count = 20, last_stats_reset = '2026-03-09T23:59:59'`);
    expect((await manager.getGroupsReadyForPosting()).map((x) => x.id)).toEqual([g]);
    expect(await counters(t, a, g)).toEqual({ account: 20, group: 0 });
    t.clock.set('2026-03-11T00:00:01Z');
    expect((await manager.getGroupsReadyForPosting()).map((x) => x.id)).toEqual([g]);
    expect(await counters(t, a, g)).toEqual({ account: 0, group: 0 });
  });
});

describe('reservePostSlot and settlePost', () => {
  async function readyPair() {
    const a = await insertAccount(t, 'acc');
    const g = await insertBoundTarget(t, '@g', a);
    return { a, g };
  }

  it('reserves: a pending history row, counted against both limits at once', async () => {
    const { a, g } = await readyPair();
    const slot = await t.db.reservePostSlot({
      accountId: a,
      targetId: g,
      messageContent: 'Продається Lexus IS 250',
      photoPath: 'lexus_assets/1.jpg',
    });
    expect(slot).toEqual({
      id: 1,
      accountId: a,
      targetId: g,
      link: '@g',
      telegramId: null,
      accessHash: null,
      reservedAt: t.clock.now(),
      lastMessage: null,
    });
    expect(await counters(t, a, g)).toEqual({ account: 1, group: 1 });
    expect(await t.query('SELECT status, message_content, photo_path FROM post_history')).toEqual([
      { status: 'pending', message_content: 'Продається Lexus IS 250', photo_path: 'lexus_assets/1.jpg' },
    ]);
  });

  it('sent: success and last_post_at; the slot stays counted', async () => {
    const { a, g } = await readyPair();
    const slot = (await t.db.reservePostSlot({ accountId: a, targetId: g }))!;
    t.clock.advance(5_000);
    await t.db.settlePost(slot.id, { outcome: 'sent' });
    expect(await historyStatuses(t)).toEqual(['success']);
    expect(await storedText(t, 'targets', 'last_post_at', g)).toBe('2026-03-10T09:00:05.000');
    expect(await counters(t, a, g)).toEqual({ account: 1, group: 1 });
  });

  it('not sent: the slot is given back, the reason kept', async () => {
    const { a, g } = await readyPair();
    const slot = (await t.db.reservePostSlot({ accountId: a, targetId: g }))!;
    await t.db.settlePost(slot.id, { outcome: 'not_sent', status: 'flood_wait', errorMessage: 'FLOOD_WAIT_420' });
    expect(await t.query('SELECT status, error_message FROM post_history')).toEqual([
      { status: 'flood_wait', error_message: 'FLOOD_WAIT_420' },
    ]);
    expect(await counters(t, a, g)).toEqual({ account: 0, group: 0 });
    expect(await storedText(t, 'targets', 'last_post_at', g)).toBeNull();
  });

  it('not sent, settled after UTC midnight: the new day keeps its count', async () => {
    const { a, g } = await readyPair();
    t.clock.set('2026-03-10T23:56:59.000Z');
    const yesterday = (await t.db.reservePostSlot({ accountId: a, targetId: g }))!;
    t.clock.set('2026-03-11T00:00:01.000Z');
    const today = (await t.db.reservePostSlot({ accountId: a, targetId: g }))!;
    expect(await counters(t, a, g)).toEqual({ account: 1, group: 1 });
    await t.db.settlePost(yesterday.id, { outcome: 'not_sent', status: 'error' });
    expect(await counters(t, a, g)).toEqual({ account: 1, group: 1 });
    await t.db.settlePost(today.id, { outcome: 'not_sent', status: 'error' });
    expect(await counters(t, a, g)).toEqual({ account: 0, group: 0 });
  });

  it('a clock still before midnight cannot reserve on a counter that already started the next day', async () => {
    const { a, g } = await readyPair();
    const lateClock = new DbManager(t.dataSource, { clock: { now: () => at('2026-03-11T00:00:00.100Z') } });
    t.clock.set('2026-03-10T23:56:59.900Z');
    expect(await lateClock.reservePostSlot({ accountId: a, targetId: g })).not.toBeNull();
    // Counted on the 11th; a post dated the 10th on top of it would be counted on the wrong day.
    expect(await t.db.reservePostSlot({ accountId: a, targetId: g })).toBeNull();
    expect(await t.db.getGroupsReadyForPosting()).toEqual([]);
    expect(await counters(t, a, g)).toEqual({ account: 1, group: 1 });
  });

  it('unknown: the slot stays spent, and the group counts as just posted', async () => {
    const { a, g } = await readyPair();
    const slot = (await t.db.reservePostSlot({ accountId: a, targetId: g }))!;
    await t.db.settlePost(slot.id, { outcome: 'unknown', errorMessage: 'timed out after sending' });
    expect(await historyStatuses(t)).toEqual(['unknown']);
    expect(await counters(t, a, g)).toEqual({ account: 1, group: 1 });
    expect(await storedText(t, 'targets', 'last_post_at', g)).toBe('2026-03-10T09:00:00.000');
  });

  it('a slot is settled once', async () => {
    const { a, g } = await readyPair();
    const slot = (await t.db.reservePostSlot({ accountId: a, targetId: g }))!;
    await t.db.settlePost(slot.id, { outcome: 'not_sent', status: 'error' });
    await expect(t.db.settlePost(slot.id, { outcome: 'not_sent', status: 'error' })).rejects.toThrow(/already settled/);
    await expect(t.db.settlePost(999, { outcome: 'sent' })).rejects.toThrow(NotFoundError);
    expect(await counters(t, a, g)).toEqual({ account: 0, group: 0 });
  });

  it('reserves nothing in the last three minutes of a UTC day, so a post lands on the day it is counted', async () => {
    const { a, g } = await readyPair();
    t.clock.set('2026-03-10T23:57:00.000Z');
    expect(await t.db.reservePostSlot({ accountId: a, targetId: g })).toBeNull();
    expect(await t.db.getGroupsReadyForPosting()).toEqual([]);
    t.clock.set('2026-03-10T23:56:59.999Z');
    expect(await t.db.reservePostSlot({ accountId: a, targetId: g })).not.toBeNull();
    t.clock.set('2026-03-11T00:00:00.000Z');
    expect(await t.db.reservePostSlot({ accountId: a, targetId: g })).not.toBeNull();
  });

  it('two posts per group per UTC day, then none until midnight, then two again', async () => {
    const { a, g } = await readyPair();
    expect(await t.db.reservePostSlot({ accountId: a, targetId: g })).not.toBeNull();
    expect(await t.db.reservePostSlot({ accountId: a, targetId: g })).not.toBeNull();
    expect(await t.db.reservePostSlot({ accountId: a, targetId: g })).toBeNull();
    t.clock.set('2026-03-10T23:59:59.999Z');
    expect(await t.db.reservePostSlot({ accountId: a, targetId: g })).toBeNull();
    t.clock.set('2026-03-11T00:00:00.000Z');
    expect(await t.db.reservePostSlot({ accountId: a, targetId: g })).not.toBeNull();
    expect(await t.db.reservePostSlot({ accountId: a, targetId: g })).not.toBeNull();
    expect(await t.db.reservePostSlot({ accountId: a, targetId: g })).toBeNull();
    expect(await counters(t, a, g)).toEqual({ account: 2, group: 2 });
  });

  it('twenty posts per account per UTC day across its groups', async () => {
    const a = await insertAccount(t, 'acc');
    const groups = [];
    for (let i = 0; i < 11; i++) groups.push(await insertBoundTarget(t, `@group_${String(i).padStart(2, '0')}`, a));
    let reserved = 0;
    for (let round = 0; round < 3; round++) {
      for (const g of groups) if (await t.db.reservePostSlot({ accountId: a, targetId: g })) reserved++;
    }
    expect(reserved).toBe(20);
    expect(await t.db.reservePostSlot({ accountId: a })).toBeNull();
    t.clock.set('2026-03-11T00:00:00.000Z');
    expect(await t.db.reservePostSlot({ accountId: a })).not.toBeNull();
  });

  it('reserves only in the niche asked for (default ukraine_cars)', async () => {
    const a = await insertAccount(t, 'acc');
    const villas = await insertBoundTarget(t, '@bali_villas_group', a, { niche: 'bali_villas' });
    expect(await t.db.reservePostSlot({ accountId: a })).toBeNull();
    expect(await t.db.reservePostSlot({ accountId: a, targetId: villas })).toBeNull();
    expect((await t.db.reservePostSlot({ accountId: a, niche: 'bali_villas' }))?.targetId).toBe(villas);
  });

  it("without a group, picks the account's ready group that waited longest", async () => {
    const a = await insertAccount(t, 'acc');
    const other = await insertAccount(t, 'other');
    await insertBoundTarget(t, '@others', other);
    await insertBoundTarget(t, '@recent', a, { last_post_at: '2026-03-10T08:00:00Z' });
    await insertBoundTarget(t, '@old', a, { last_post_at: '2026-03-09T08:00:00Z' });
    await insertBoundTarget(t, '@warming', a, { joined_at: '2026-03-10T08:00:00Z' });
    expect((await t.db.reservePostSlot({ accountId: a }))?.link).toBe('@old');
  });

  it("refuses every rule: warm-up, another account's group, FloodWait, banned account", async () => {
    const a = await insertAccount(t, 'acc');
    const b = await insertAccount(t, 'other');
    const warming = await insertBoundTarget(t, '@warming', a, { joined_at: '2026-03-10T08:00:00Z' });
    const others = await insertBoundTarget(t, '@others', b);
    const mine = await insertBoundTarget(t, '@mine', a);
    const unbound = await insertTarget(t, '@unbound', { status: 'joined', joined_at: '2026-03-01T00:00:00Z' });
    expect(await t.db.reservePostSlot({ accountId: a, targetId: warming })).toBeNull();
    expect(await t.db.reservePostSlot({ accountId: a, targetId: others })).toBeNull();
    expect(await t.db.reservePostSlot({ accountId: a, targetId: unbound })).toBeNull();
    await t.db.setAccountFloodWait(a, at('2026-03-10T10:00:00Z'));
    expect(await t.db.reservePostSlot({ accountId: a, targetId: mine })).toBeNull();
    t.clock.set('2026-03-10T10:00:00.000Z');
    expect(await t.db.reservePostSlot({ accountId: a, targetId: mine })).not.toBeNull();
    await t.query(`UPDATE accounts SET status = 'banned' WHERE id = $1`, [b]);
    expect(await t.db.reservePostSlot({ accountId: b, targetId: others })).toBeNull();
    expect(await historyStatuses(t)).toEqual(['pending']);
  });
});

describe('recordPost', () => {
  it('success: history, both counters and last_post_at in one go, resetting stale counters', async () => {
    const a = await insertAccount(t, 'acc', { daily_posts_count: 7, last_stats_reset: '2026-03-09T10:00:00Z' });
    const g = await insertBoundTarget(t, '@g', a, {
      daily_posts_in_group: 1,
      last_group_stats_reset: '2026-03-10T01:00:00Z',
    });
    const id = await t.db.recordPost({
      accountId: a,
      targetId: g,
      messageContent: 'text',
      photoPath: '/app/lexus_assets/1.jpg',
    });
    expect(id).toBe(1);
    expect(await counters(t, a, g)).toEqual({ account: 1, group: 2 });
    expect(await storedText(t, 'targets', 'last_post_at', g)).toBe('2026-03-10T09:00:00.000');
    expect(await t.query('SELECT status, message_content, photo_path, error_message FROM post_history')).toEqual([
      { status: 'success', message_content: 'text', photo_path: '/app/lexus_assets/1.jpg', error_message: null },
    ]);
  });

  it('an error is history only', async () => {
    const a = await insertAccount(t, 'acc');
    const g = await insertBoundTarget(t, '@g', a);
    await t.db.recordPost({ accountId: a, targetId: g, status: 'error', errorMessage: 'FloodWait: 3600 seconds' });
    expect(await counters(t, a, g)).toEqual({ account: 0, group: 0 });
    expect(await historyStatuses(t)).toEqual(['error']);
    expect(await storedText(t, 'targets', 'last_post_at', g)).toBeNull();
  });
});

describe('FloodWait', () => {
  it('sets status and time, and never shortens a longer wait', async () => {
    const a = await insertAccount(t, 'acc');
    expect(await t.db.setAccountFloodWait(a, at('2026-03-10T12:00:00Z'))).toEqual(at('2026-03-10T12:00:00Z'));
    expect(await t.db.setAccountFloodWait(a, at('2026-03-10T10:00:00Z'))).toEqual(at('2026-03-10T12:00:00Z'));
    expect(await t.query('SELECT status FROM accounts')).toEqual([{ status: 'flood_wait' }]);
    expect(await storedText(t, 'accounts', 'next_allowed_action_time', a)).toBe('2026-03-10T12:00:00.000');
    expect(await t.db.setAccountFloodWait(a, at('2026-03-10T13:00:00Z'))).toEqual(at('2026-03-10T13:00:00Z'));
  });

  it('a banned account stays banned', async () => {
    const a = await insertAccount(t, 'acc', { status: 'banned' });
    await t.db.setAccountFloodWait(a, at('2026-03-10T12:00:00Z'));
    expect(await t.query('SELECT status FROM accounts')).toEqual([{ status: 'banned' }]);
  });

  it('is not cleared before its time; after it, clears back to active', async () => {
    const a = await insertAccount(t, 'acc');
    await t.db.setAccountFloodWait(a, at('2026-03-10T09:30:00Z'));
    expect(await t.db.clearAccountFloodWait(a)).toBe(false);
    expect(await t.query('SELECT status FROM accounts')).toEqual([{ status: 'flood_wait' }]);
    t.clock.advance(30 * 60_000);
    expect(await t.db.clearAccountFloodWait(a)).toBe(true);
    expect(await t.query('SELECT status, next_allowed_action_time FROM accounts')).toEqual([
      { status: 'active', next_allowed_action_time: null },
    ]);
    expect(await t.db.clearAccountFloodWait(a)).toBe(false);
  });

  it('an unknown account is an error', async () => {
    await expect(t.db.setAccountFloodWait(42, at('2026-03-10T12:00:00Z'))).rejects.toThrow(NotFoundError);
    await expect(t.db.clearAccountFloodWait(42)).rejects.toThrow(NotFoundError);
  });
});

describe('resetDailyCountersIfNeeded', () => {
  it("resets counters from before today's UTC midnight, leaves today's, and is idempotent", async () => {
    const stale = await insertAccount(t, 'stale', {
      daily_posts_count: 20,
      last_stats_reset: '2026-03-09T23:59:59.999Z',
    });
    const fresh = await insertAccount(t, 'fresh', { daily_posts_count: 5, last_stats_reset: '2026-03-10T00:00:00Z' });
    const never = await insertAccount(t, 'never', { daily_posts_count: 3, last_stats_reset: null });
    const banned = await insertAccount(t, 'banned', {
      status: 'banned',
      daily_posts_count: 4,
      last_stats_reset: '2026-03-01T00:00:00Z',
    });
    const g1 = await insertBoundTarget(t, '@g1', stale, {
      daily_posts_in_group: 2,
      last_group_stats_reset: '2026-03-09T10:00:00Z',
    });
    const g2 = await insertBoundTarget(t, '@g2', fresh, {
      daily_posts_in_group: 1,
      last_group_stats_reset: '2026-03-10T08:00:00Z',
    });

    expect(await t.db.resetDailyCountersIfNeeded()).toEqual({ accounts: 3, targets: 1 });
    const rows = await t.query<{ id: number; status: string; daily_posts_count: number }>(
      'SELECT id, status, daily_posts_count FROM accounts ORDER BY id',
    );
    expect(rows).toEqual([
      { id: stale, status: 'active', daily_posts_count: 0 },
      { id: fresh, status: 'active', daily_posts_count: 5 },
      { id: never, status: 'active', daily_posts_count: 0 },
      { id: banned, status: 'banned', daily_posts_count: 0 },
    ]);
    expect(await storedText(t, 'accounts', 'last_stats_reset', stale)).toBe('2026-03-10T09:00:00.000');
    expect((await counters(t, stale, g1)).group).toBe(0);
    expect((await counters(t, fresh, g2)).group).toBe(1);
    expect(await t.db.resetDailyCountersIfNeeded()).toEqual({ accounts: 0, targets: 0 });
  });
});

describe('inTransaction', () => {
  it('runs every method in one transaction: all of it or none of it', async () => {
    const a = await insertAccount(t, 'acc');
    const failure = t.db.inTransaction(async (tx) => {
      expect(await tx.assignGroup('@group_one', a, at('2026-03-08T09:00:00Z'))).toBe(true);
      await tx.recordPost({ accountId: a, targetId: 1 });
      expect((await tx.getGroupsReadyForPosting()).map((g) => g.link)).toEqual(['@group_one']);
      throw new Error('changed my mind');
    });
    await expect(failure).rejects.toThrow('changed my mind');
    expect(await t.query('SELECT * FROM targets')).toEqual([]);
    expect(await historyStatuses(t)).toEqual([]);
    await t.db.inTransaction(async (tx) => {
      await tx.assignGroup('@group_two', a);
      await tx.setAccountFloodWait(a, at('2026-03-10T10:00:00Z'));
    });
    expect(await t.query('SELECT link FROM targets')).toEqual([{ link: '@group_two' }]);
    expect(await t.query('SELECT status FROM accounts')).toEqual([{ status: 'flood_wait' }]);
  });
});

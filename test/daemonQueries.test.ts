import { describe, expect, it } from 'vitest';
import { AccountLocks } from '../src/db/accountLocks';
import { banAccount } from '../src/sql/accounts';
import { claimJoinTarget, markJoinRequested, recordJoinAttempt } from '../src/sql/joining';
import { nextChanceAt } from '../src/sql/posting';
import { useTestDatabase } from './helpers/database';
import { insertAccount, insertBoundTarget, insertTarget } from './helpers/fixtures';

const t = useTestDatabase();
const at = (iso: string) => new Date(iso);

describe('the join queue', () => {
  it('gives a group to one account only, and never during its FloodWait', async () => {
    const a = await insertAccount(t, 'acc_a', {
      status: 'flood_wait',
      next_allowed_action_time: '2026-03-10T10:00:00Z',
    });
    const b = await insertAccount(t, 'acc_b');
    await insertTarget(t, '@g_one');
    expect(await claimJoinTarget(t.dataSource, a, ['ukraine_cars'], t.clock.now())).toBeNull();
    expect(await claimJoinTarget(t.dataSource, b, ['ukraine_cars'], t.clock.now())).toEqual({
      targetId: 1,
      link: '@g_one',
    });
    expect(await claimJoinTarget(t.dataSource, a, ['ukraine_cars'], at('2026-03-10T10:00:00Z'))).toBeNull();
    // b's claim holds until b gives it up or dies.
    await banAccount(t.dataSource, b, 'session dead: SESSION_REVOKED', t.clock.now());
    expect(await claimJoinTarget(t.dataSource, a, ['ukraine_cars'], at('2026-03-10T10:00:00Z'))).toEqual({
      targetId: 1,
      link: '@g_one',
    });
  });

  it('a join request is asked again by the same account only, once it is due', async () => {
    const a = await insertAccount(t, 'acc_a');
    const b = await insertAccount(t, 'acc_b');
    await insertTarget(t, 'https://t.me/+Private_Hash1');
    expect(await claimJoinTarget(t.dataSource, a, ['ukraine_cars'], t.clock.now())).not.toBeNull();
    await markJoinRequested(t.dataSource, 1, a, at('2026-03-10T21:00:00Z'), t.clock.now());
    expect(await claimJoinTarget(t.dataSource, b, ['ukraine_cars'], at('2026-03-11T00:00:00Z'))).toBeNull();
    expect(await claimJoinTarget(t.dataSource, a, ['ukraine_cars'], at('2026-03-10T20:59:59Z'))).toBeNull();
    expect(await claimJoinTarget(t.dataSource, a, ['ukraine_cars'], at('2026-03-10T21:00:00Z'))).toEqual({
      targetId: 1,
      link: 'https://t.me/+Private_Hash1',
    });
  });

  it("needs the account's lock when a lock holder is named", async () => {
    const a = await insertAccount(t, 'acc_a');
    await insertTarget(t, '@g_one');
    const locks = new AccountLocks(t.connection);
    try {
      await locks.acquire([a]);
      const pid = locks.holderPid!;
      expect(await claimJoinTarget(t.dataSource, a, ['ukraine_cars'], t.clock.now(), pid + 100000)).toBeNull();
      expect(await claimJoinTarget(t.dataSource, a, ['ukraine_cars'], t.clock.now(), pid)).not.toBeNull();
    } finally {
      await locks.close();
    }
  });
});

describe('nextChanceAt: when an idle account should look again', () => {
  // The clock is at 2026-03-10T09:00Z.
  const chance = (accountId: number, now = t.clock.now(), joinsPerDay = 10) =>
    nextChanceAt(t.dataSource, { accountId, niches: ['ukraine_cars'], minGapMs: 4 * 3_600_000, joinsPerDay, now });

  it('is null with nothing to join and no group bound, and for a banned account', async () => {
    const a = await insertAccount(t, 'acc_a');
    const banned = await insertAccount(t, 'acc_b', { status: 'banned' });
    await insertTarget(t, '@waiting');
    expect(await chance(a, t.clock.now(), 0)).toEqual(at('2026-03-11T00:00:00Z'));
    expect(await chance(banned)).toBeNull();
    await t.query(`UPDATE targets SET status = 'banned'`);
    expect(await chance(a)).toBeNull();
  });

  it('is the end of the warm-up, of the gap after the last post, or of a slow mode, whichever is latest', async () => {
    const a = await insertAccount(t, 'acc_a');
    await insertBoundTarget(t, '@warming', a, { joined_at: '2026-03-09T15:00:00Z' });
    expect(await chance(a)).toEqual(at('2026-03-10T15:00:00Z'));
    await insertBoundTarget(t, '@posted', a, {
      last_post_at: '2026-03-10T06:30:00Z',
      daily_posts_in_group: 1,
      last_group_stats_reset: '2026-03-10T06:30:00Z',
    });
    expect(await chance(a)).toEqual(at('2026-03-10T10:30:00Z'));
    await t.query(`UPDATE targets SET next_post_allowed_at = '2026-03-10T12:00:00' WHERE link = '@posted'`);
    expect(await chance(a)).toEqual(at('2026-03-10T12:00:00Z'));
    // A group ready right now: now.
    await insertBoundTarget(t, '@ready', a);
    expect(await chance(a)).toEqual(t.clock.now());
  });

  it("waits for tomorrow when the account's or the group's posts of today are used up, or for the FloodWait", async () => {
    const a = await insertAccount(t, 'acc_a', { daily_posts_count: 20, last_stats_reset: '2026-03-10T00:10:00Z' });
    await insertBoundTarget(t, '@ready', a);
    expect(await chance(a)).toEqual(at('2026-03-11T00:00:00Z'));
    const b = await insertAccount(t, 'acc_b', {
      next_allowed_action_time: '2026-03-10T09:40:00Z',
      status: 'flood_wait',
    });
    await insertBoundTarget(t, '@full', b, {
      daily_posts_in_group: 2,
      last_group_stats_reset: '2026-03-10T00:10:00Z',
      last_post_at: '2026-03-10T04:10:00Z',
    });
    expect(await chance(b)).toEqual(at('2026-03-11T00:00:00Z'));
    await insertBoundTarget(t, '@other', b);
    expect(await chance(b)).toEqual(at('2026-03-10T09:40:00Z'));
  });

  it("counts a join when a group waits, the budget allows it, and no 'too many chats' came in 24 h", async () => {
    const a = await insertAccount(t, 'acc_a');
    const g = await insertTarget(t, '@new');
    expect(await chance(a)).toEqual(t.clock.now());
    expect(await chance(a, t.clock.now(), 1)).toEqual(t.clock.now());
    await recordJoinAttempt(t.dataSource, a, g, 'transient', 'timeout', at('2026-03-10T08:00:00Z'));
    expect(await chance(a, t.clock.now(), 1)).toEqual(at('2026-03-11T00:00:00Z'));
    await t.query(`UPDATE targets SET join_retry_at = '2026-03-10T09:30:00' WHERE id = $1`, [g]);
    expect(await chance(a)).toEqual(at('2026-03-10T09:30:00Z'));
    await recordJoinAttempt(t.dataSource, a, g, 'too_many_channels', 'CHANNELS_TOO_MUCH', at('2026-03-10T08:30:00Z'));
    expect(await chance(a)).toEqual(at('2026-03-11T08:30:00Z'));
    // Another account's claim is not this account's chance.
    const b = await insertAccount(t, 'acc_b');
    await t.query(`UPDATE targets SET join_claimed_by = $1 WHERE id = $2`, [a, g]);
    expect(await chance(b)).toBeNull();
  });
});

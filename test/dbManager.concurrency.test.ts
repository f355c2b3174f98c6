/**
 * Many workers at once, each on its own connection: the limits and the binding must hold
 * whatever the interleaving. Every count is taken from post_history and targets, not from
 * what the calls returned.
 */
import { describe, expect, it } from 'vitest';
import { DbManager } from '../src/db/DbManager';
import { useTestDatabase } from './helpers/database';
import { insertAccount, insertBoundTarget } from './helpers/fixtures';

const t = useTestDatabase({ poolSize: 60 });

async function reservedPerGroup(): Promise<Map<number, number>> {
  const rows = await t.query<{ target_id: number; n: number }>(
    `SELECT target_id, count(*)::int AS n FROM post_history WHERE status = 'pending' GROUP BY target_id`,
  );
  return new Map(rows.map((r) => [r.target_id, r.n]));
}

describe('under concurrency', () => {
  it('50 parallel reservations on one group: exactly 2', async () => {
    const a = await insertAccount(t, 'acc');
    const g = await insertBoundTarget(t, '@g', a);
    const results = await Promise.all(
      Array.from({ length: 50 }, () => t.db.reservePostSlot({ accountId: a, targetId: g })),
    );
    expect(results.filter(Boolean)).toHaveLength(2);
    expect(await reservedPerGroup()).toEqual(new Map([[g, 2]]));
    expect(await t.query('SELECT daily_posts_count FROM accounts')).toEqual([{ daily_posts_count: 2 }]);
    expect(await t.query('SELECT daily_posts_in_group FROM targets')).toEqual([{ daily_posts_in_group: 2 }]);
  });

  it('one account across 30 groups, 60 parallel reservations: exactly 20', async () => {
    const a = await insertAccount(t, 'acc');
    const groups: number[] = [];
    for (let i = 0; i < 30; i++) groups.push(await insertBoundTarget(t, `@group_${i}`, a));
    const results = await Promise.all(
      [...groups, ...groups].map((g) => t.db.reservePostSlot({ accountId: a, targetId: g })),
    );
    expect(results.filter(Boolean)).toHaveLength(20);
    const perGroup = await reservedPerGroup();
    expect([...perGroup.values()].reduce((x, y) => x + y, 0)).toBe(20);
    expect(Math.max(...perGroup.values())).toBeLessThanOrEqual(2);
    expect(await t.query('SELECT daily_posts_count FROM accounts')).toEqual([{ daily_posts_count: 20 }]);
  });

  it('workers picking their own groups across the UTC midnight never exceed a limit on either day', async () => {
    const accounts: number[] = [];
    for (let i = 0; i < 3; i++) accounts.push(await insertAccount(t, `acc_${i}`));
    for (let i = 0; i < 36; i++) await insertBoundTarget(t, `@group_${i}`, accounts[i % 3]!);
    t.clock.set('2026-03-10T23:56:59.500Z');
    // 30 attempts per account on each side of midnight, for 12 groups (24 slots) each: the
    // account limit (20) is what stops them.
    const before = Array.from({ length: 90 }, (_, i) => t.db.reservePostSlot({ accountId: accounts[i % 3]! }));
    // A second manager whose clock is already past midnight races the first one. Once a
    // counter has started the new day, the late clock's reservations on it are refused: they
    // would be dated on the old day but counted on the new one.
    const late = new DbManager(t.dataSource, { clock: { now: () => new Date('2026-03-11T00:00:00.500Z') } });
    const after = Array.from({ length: 90 }, (_, i) => late.reservePostSlot({ accountId: accounts[i % 3]! }));
    const resets = [late.resetDailyCountersIfNeeded(), late.resetDailyCountersIfNeeded()];
    await Promise.all([...before, ...after, ...resets]);
    const perDay = await t.query<{ day: string; account_id: number; target_id: number; n: number }>(
      `SELECT to_char(created_at, 'YYYY-MM-DD') AS day, account_id, target_id, count(*)::int AS n
         FROM post_history GROUP BY 1, 2, 3`,
    );
    const byAccountDay = new Map<string, number>();
    for (const row of perDay) {
      expect(row.n).toBeLessThanOrEqual(2);
      const key = `${row.day}/${row.account_id}`;
      byAccountDay.set(key, (byAccountDay.get(key) ?? 0) + row.n);
    }
    for (const n of byAccountDay.values()) expect(n).toBeLessThanOrEqual(20);
    const days = new Set(perDay.map((r) => r.day));
    expect([...days].sort()).toEqual(['2026-03-10', '2026-03-11']);
    // The counters agree with the history of the day they count.
    const accountRows = await t.query<{ id: number; daily_posts_count: number; day: string }>(
      `SELECT id, daily_posts_count, to_char(last_stats_reset, 'YYYY-MM-DD') AS day FROM accounts`,
    );
    for (const row of accountRows) expect(row.daily_posts_count).toBe(byAccountDay.get(`${row.day}/${row.id}`) ?? 0);
    const groupRows = await t.query<{ id: number; n: number; day: string | null }>(
      `SELECT id, daily_posts_in_group AS n, to_char(last_group_stats_reset, 'YYYY-MM-DD') AS day FROM targets`,
    );
    for (const row of groupRows) {
      const history = perDay
        .filter((r) => r.target_id === row.id && r.day === row.day)
        .reduce((sum, r) => sum + r.n, 0);
      expect(row.n).toBe(history);
    }
  });

  it('reservations, resets and reads racing just after midnight never deadlock and never exceed a limit', async () => {
    const accounts: number[] = [];
    for (let i = 0; i < 4; i++) {
      accounts.push(
        await insertAccount(t, `acc_${i}`, { daily_posts_count: 20, last_stats_reset: '2026-03-10T22:00:00Z' }),
      );
    }
    for (let i = 0; i < 48; i++) {
      await insertBoundTarget(t, `@group_${i}`, accounts[i % 4]!, {
        daily_posts_in_group: 2,
        last_group_stats_reset: '2026-03-10T22:00:00Z',
      });
    }
    t.clock.set('2026-03-11T00:00:01.000Z');
    const calls: Promise<unknown>[] = [];
    for (let round = 0; round < 8; round++) {
      for (const a of accounts) for (let k = 0; k < 4; k++) calls.push(t.db.reservePostSlot({ accountId: a }));
      calls.push(t.db.resetDailyCountersIfNeeded(), t.db.getGroupsReadyForPosting('ukraine_cars', 10));
    }
    const results = await Promise.allSettled(calls);
    expect(
      results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason)),
    ).toEqual([]);
    const perAccount = await t.query<{ account_id: number; n: number }>(
      `SELECT account_id, count(*)::int AS n FROM post_history GROUP BY account_id`,
    );
    for (const row of perAccount) expect(row.n).toBeLessThanOrEqual(20);
    const perGroup = await reservedPerGroup();
    for (const n of perGroup.values()) expect(n).toBeLessThanOrEqual(2);
    expect(perAccount.reduce((sum, r) => sum + r.n, 0)).toBeGreaterThan(0);
  });

  it('20 parallel assignGroup calls for one new group: one winner, and the group is bound to it', async () => {
    const accounts: number[] = [];
    for (let i = 0; i < 20; i++) accounts.push(await insertAccount(t, `acc_${i}`));
    const results = await Promise.all(accounts.map((a) => t.db.assignGroup('t.me/Brand_New_Group', a)));
    const winners = accounts.filter((_, i) => results[i]);
    expect(winners).toHaveLength(1);
    expect(await t.query('SELECT link, assigned_account_id FROM targets')).toEqual([
      { link: '@brand_new_group', assigned_account_id: winners[0] },
    ]);
  });

  it('parallel FloodWaits keep the longest', async () => {
    const a = await insertAccount(t, 'acc');
    const waits = Array.from({ length: 30 }, (_, i) => new Date(Date.UTC(2026, 2, 10, 10, i)));
    await Promise.all([...waits].reverse().map((w) => t.db.setAccountFloodWait(a, w)));
    const [row] = await t.query<{ v: string }>(
      `SELECT to_char(next_allowed_action_time, 'HH24:MI') AS v FROM accounts`,
    );
    expect(row!.v).toBe('10:29');
  });
});

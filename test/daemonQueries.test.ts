import { describe, expect, it } from 'vitest';
import { AccountLocks } from '../src/db/accountLocks';
import { banAccount, claimJoinTarget, markJoinRequested } from '../src/db/daemonQueries';
import { useTestDatabase } from './helpers/database';
import { insertAccount, insertTarget } from './helpers/fixtures';

const t = useTestDatabase();
const at = (iso: string) => new Date(iso);

describe('the join queue', () => {
  it('gives a group to one account only, and never during its FloodWait', async () => {
    const a = await insertAccount(t, 'acc_a', { status: 'flood_wait', next_allowed_action_time: '2026-03-10T10:00:00Z' });
    const b = await insertAccount(t, 'acc_b');
    await insertTarget(t, '@g_one');
    expect(await claimJoinTarget(t.dataSource, a, ['ukraine_cars'], t.clock.now())).toBeNull();
    expect(await claimJoinTarget(t.dataSource, b, ['ukraine_cars'], t.clock.now())).toEqual({ targetId: 1, link: '@g_one' });
    expect(await claimJoinTarget(t.dataSource, a, ['ukraine_cars'], at('2026-03-10T10:00:00Z'))).toBeNull();
    // b's claim holds until b gives it up or dies.
    await banAccount(t.dataSource, b, 'session dead: SESSION_REVOKED', t.clock.now());
    expect(await claimJoinTarget(t.dataSource, a, ['ukraine_cars'], at('2026-03-10T10:00:00Z'))).toEqual({ targetId: 1, link: '@g_one' });
  });

  it('a join request is asked again by the same account only, once it is due', async () => {
    const a = await insertAccount(t, 'acc_a');
    const b = await insertAccount(t, 'acc_b');
    await insertTarget(t, 'https://t.me/+Private_Hash1');
    expect(await claimJoinTarget(t.dataSource, a, ['ukraine_cars'], t.clock.now())).not.toBeNull();
    await markJoinRequested(t.dataSource, 1, a, at('2026-03-10T21:00:00Z'), t.clock.now());
    expect(await claimJoinTarget(t.dataSource, b, ['ukraine_cars'], at('2026-03-11T00:00:00Z'))).toBeNull();
    expect(await claimJoinTarget(t.dataSource, a, ['ukraine_cars'], at('2026-03-10T20:59:59Z'))).toBeNull();
    expect(await claimJoinTarget(t.dataSource, a, ['ukraine_cars'], at('2026-03-10T21:00:00Z'))).toEqual({ targetId: 1, link: 'https://t.me/+Private_Hash1' });
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

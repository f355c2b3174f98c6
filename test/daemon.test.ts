import { afterEach, describe, expect, it } from 'vitest';
import { useTestDatabase, type TestDatabase } from './helpers/database';
import { makeDaemon, type DaemonHarness } from './helpers/daemon';
import { insertAccount, insertTarget } from './helpers/fixtures';

const t = useTestDatabase({ start: '2026-03-10T06:00:00.000Z' });
const HOUR = 3_600_000;
let running: DaemonHarness[] = [];
afterEach(async () => {
  for (const h of running) await h.daemon.stop(1000);
  running = [];
});

function daemon(options: Parameters<typeof makeDaemon>[1] = {}): DaemonHarness {
  const h = makeDaemon(t, options);
  running.push(h);
  return h;
}

async function fleet(t: TestDatabase, accounts: number, groups: number): Promise<{ accounts: number[]; groups: number[] }> {
  const a: number[] = [];
  for (let i = 1; i <= accounts; i++) {
    const id = await insertAccount(t, `acc_${i}`);
    await t.query(`UPDATE accounts SET session_string = $1 WHERE id = $2`, [`1fake-session-${i}`, id]);
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
    expect(joins.map((c) => c.link).sort()).toEqual(['@group_001', '@group_002', '@group_003', '@group_004', '@group_005', '@group_006']);
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
    const history = await t.query<{ status: string; n: number }>(`SELECT status, count(*)::int AS n FROM post_history GROUP BY status`);
    expect(history).toEqual([{ status: 'success', n: sent.length }]);
    expect(h.logs.filter((l) => l.event === 'post.sent')).toHaveLength(sent.length);
  });
});

/**
 * `lexus simulate`: the real daemon on virtual time. Its goals on small fleets (the full-size
 * figures come from the command itself, see the README), and its checks shown to catch what
 * they are for.
 */
import { describe, expect, it } from 'vitest';
import { formatSimulationReport } from '../src/simulate/formatReport';
import { renderHtml } from '../src/simulate/html';
import { checkInvariants } from '../src/simulate/invariants';
import { SessionLedger } from '../src/simulate/replica';
import { policyMaximum } from '../src/simulate/report';
import type { SimulationOptions, SimulationResult } from '../src/simulate/simulation';
import type { FakeCall } from '../src/telegram/fakeGateway';
import { TEST_SETTINGS } from './helpers/daemon';
import { useTestDatabase } from './helpers/database';
import { insertAccount, insertBoundTarget } from './helpers/fixtures';
import { simulateOnScratch } from './helpers/simulation';

const run = (options: Partial<SimulationOptions>): Promise<SimulationResult> =>
  simulateOnScratch({ settings: { ...TEST_SETTINGS, maxParallelAccounts: 5 } }, options);

const HOUR = 3_600_000;

describe('lexus simulate', () => {
  it('without faults: joins, waits out the warm-up, then posts all the rules allow, breaking none', async () => {
    const days: number[] = [];
    const r = await run({ onDay: (d) => days.push(d.day) });
    expect(days).toEqual([1, 2, 3]);
    expect(r.violations).toBe(0);
    expect(r.invariants.map((c) => c.violations.length)).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0]);
    // Day 1: 10 joins per account, nothing to post (warm-up); then 20 posts per account a day.
    expect(r.days[0]).toMatchObject({ joins: 40, posts: 0, maxPosts: 0 });
    expect(r.days[1]).toMatchObject({ posts: 80, maxPosts: 80 });
    expect(r.totals.utilization).toBeGreaterThanOrEqual(0.99);
    expect(r.hourly).toHaveLength(72);
    expect(r.hourly.reduce((n, h) => n + h.posts, 0)).toBe(r.totals.posts);
  });

  it('under heavy chaos with 3 processes on one database: crashes, restarts, faults, and no rule broken', async () => {
    const r = await run({ accounts: 6, groups: 90, days: 4, chaos: 'heavy', replicas: 3, seed: 3 });
    expect(r.violations).toBe(0);
    expect(r.events.some((e) => e.what.includes('crashed between sending a post and recording it'))).toBe(true);
    expect(r.events.some((e) => e.what.includes('got SIGTERM'))).toBe(true);
    expect(r.totals.floodWaits).toBeGreaterThan(0);
    expect(r.totals.groupBans).toBeGreaterThan(0);
    expect(r.totals.posts).toBeGreaterThan(0);
    // The faults of Telegram's answers and of the database, each met at least once.
    const f = r.faults;
    expect(
      [f.dbOutages, f.partitions, f.aliases, f.aliasesClosed, f.renames, f.restrictedAccounts].every((n) => n > 0),
    ).toBe(true);
    expect(f.aliasesClosed).toBe(f.aliases);
    expect(f.restrictedRefusals).toBeGreaterThan(0);
    expect(r.events.some((e) => e.what.includes('cut off from the database (not from Telegram)'))).toBe(true);
    expect(r.events.some((e) => e.what.includes('the database went away for every process'))).toBe(true);
    expect(r.totals.callsPerAction).toBeGreaterThan(1);
  });

  it('replays exactly with the same seed, and differently with another', async () => {
    const strip = (r: SimulationResult) => ({ ...r, wallMs: 0 });
    const a = await run({ chaos: 'some', seed: 11, days: 2 });
    const b = await run({ chaos: 'some', seed: 11, days: 2 });
    const c = await run({ chaos: 'some', seed: 12, days: 2 });
    expect(strip(b)).toEqual(strip(a));
    expect(strip(c)).not.toEqual(strip(a));
  });
});

describe('the report', () => {
  it("counts what a group can take in a day: 2 from its warm-up's end until it refused us, 20 per account", () => {
    const day = Date.parse('2026-03-03T00:00:00Z');
    const joined = (iso: string, extra: Partial<{ closed_at: Date; account_gone_at: Date }> = {}) => ({
      account_id: 1,
      joined_at: new Date(iso),
      closed_at: null,
      account_gone_at: null,
      ...extra,
    });
    const max = (rows: ReturnType<typeof joined>[]) => policyMaximum(rows, day, day + 24 * HOUR);
    expect(max([joined('2026-03-01T10:00:00Z')])).toBe(2);
    expect(max([joined('2026-03-02T23:59:00Z')])).toBe(2); // the rules allow both posts in its last minute
    expect(max([joined('2026-03-03T00:00:00Z')])).toBe(0);
    expect(max([joined('2026-03-03T01:00:00Z')])).toBe(0);
    expect(max([joined('2026-03-01T10:00:00Z', { closed_at: new Date('2026-03-03T02:00:00Z') })])).toBe(2);
    expect(max([joined('2026-03-01T10:00:00Z', { closed_at: new Date('2026-03-03T00:00:00Z') })])).toBe(0);
    expect(max([joined('2026-03-01T10:00:00Z', { account_gone_at: new Date('2026-03-02T02:00:00Z') })])).toBe(0);
    // 20 per account, whatever its groups could take.
    expect(max(Array.from({ length: 15 }, () => joined('2026-03-01T10:00:00Z')))).toBe(20);
  });

  it('lists each broken rule in the text and the page', () => {
    const r: SimulationResult = {
      options: {
        accounts: 1,
        groups: 1,
        days: 1,
        seed: 1,
        chaos: 'none',
        replicas: 1,
        start: '2026-03-02T00:00:00.000Z',
        postingHours: { start: 8, end: 22 },
        timeZone: 'Europe/Kyiv',
        spread: true,
      },
      days: [
        {
          day: 1,
          date: '2026-03-02',
          joins: 1,
          posts: 3,
          maxPosts: 0,
          utilization: null,
          floodWaits: 0,
          groupBans: 0,
          sessionsLost: 0,
          accountsActive: 1,
        },
      ],
      totals: {
        joins: 1,
        posts: 3,
        maxPosts: 0,
        utilization: null,
        floodWaits: 0,
        groupBans: 0,
        sessionsLost: 0,
        telegramCalls: 4,
        callsPerAction: 1,
      },
      faults: {
        dbOutages: 0,
        partitions: 0,
        lostJoins: 0,
        aliases: 0,
        aliasesClosed: 0,
        renames: 0,
        postsAfterRename: 0,
        restrictedAccounts: 0,
        restrictedRefusals: 0,
        crashes: 0,
        restarts: 0,
      },
      invariants: [
        { name: 'at most 2 posts per group per UTC day', violations: ['3 posts in @g on 2026-03-02 (Telegram)'] },
      ],
      violations: 1,
      hourly: [{ hour: 0, posts: 3, joins: 1, inWindow: false }],
      pacing: { windowShare: 0, maxAccountPostsPerHour: 3, maxAccountJoinsPerHour: 1, maxFleetPostsPerHour: 3 },
      events: [],
      wallMs: 10,
    };
    const text = formatSimulationReport(r);
    expect(text).toContain('FAIL  at most 2 posts per group per UTC day: 1 violation');
    expect(text).toContain('3 posts in @g on 2026-03-02 (Telegram)');
    expect(text).toContain('1 VIOLATION.');
    const html = renderHtml(r);
    expect(html).toContain('<svg');
    expect(html).toContain('3 posts in @g on 2026-03-02 (Telegram)');
    expect(html).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org)/);
  });
});

describe('the invariant checks', () => {
  const t = useTestDatabase();
  const at = (iso: string) => new Date(iso);
  const post = (account: string, link: string, iso: string, delivered = true): FakeCall => ({
    at: at(iso),
    account,
    op: 'post',
    link,
    outcome: delivered
      ? { kind: 'sent', messageId: 1 }
      : { kind: 'group_refuses', reason: 'banned', error: 'USER_BANNED_IN_CHANNEL' },
    delivered,
  });
  const join = (account: string, link: string, iso: string): FakeCall => ({
    at: at(iso),
    account,
    op: 'join',
    link,
    outcome: { kind: 'joined', telegramId: null, title: null },
  });

  it('pass on a clean history', async () => {
    const a = await insertAccount(t, 'acc_a');
    await insertBoundTarget(t, '@g_one', a, { joined_at: '2026-03-08T09:00:00Z' });
    await t.query(
      `INSERT INTO post_history (account_id, target_id, status, created_at) VALUES ($1, 1, 'success', '2026-03-10T09:00:00')`,
      [a],
    );
    const checks = await checkInvariants({
      dataSource: t.dataSource,
      calls: [join('acc_a', '@g_one', '2026-03-08T09:00:00Z'), post('acc_a', '@g_one', '2026-03-10T09:00:00Z')],
      fakeViolations: [],
      ledger: { overlaps: [] },
    });
    expect(checks.filter((c) => c.violations.length > 0)).toEqual([]);
  });

  it("catch every kind of violation, from the history and from Telegram's record", async () => {
    const a = await insertAccount(t, 'acc_a');
    await insertAccount(t, 'acc_b');
    await insertBoundTarget(t, '@g_one', a, { joined_at: '2026-03-08T09:00:00Z' });
    await insertBoundTarget(t, '@g_new', a, { joined_at: '2026-03-10T00:00:00Z' });
    // Three posts in @g_one on one day; 21 by acc_a on one day; one in @g_new during its warm-up.
    await t.query(
      `INSERT INTO post_history (account_id, target_id, status, created_at)
       SELECT CAST($1 AS integer), 1, 'success', '2026-03-10T01:00:00'::timestamp + i * interval '1 minute' FROM generate_series(1, 3) i
       UNION ALL SELECT CAST($1 AS integer), 2, 'unknown', '2026-03-10T05:00:00'::timestamp + i * interval '1 minute' FROM generate_series(1, 18) i`,
      [a],
    );
    const calls = [
      join('acc_a', '@g_one', '2026-03-08T09:00:00Z'),
      post('acc_b', '@g_one', '2026-03-10T10:00:00Z'),
      post('acc_a', '@g_one', '2026-03-10T11:00:00Z', false),
      post('acc_a', '@g_one', '2026-03-10T12:00:00Z'),
      {
        at: at('2026-03-10T13:00:00Z'),
        account: 'acc_a',
        op: 'connect' as const,
        outcome: { kind: 'session_dead' as const, error: 'AUTH_KEY_DUPLICATED' },
      },
    ];
    const checks = await checkInvariants({
      dataSource: t.dataSource,
      calls,
      fakeViolations: [
        { at: at('2026-03-10T12:00:00Z'), account: 'acc_a', link: '@g_one', what: 'action during a FloodWait' },
      ],
      ledger: { overlaps: [{ at: at('2026-03-10T13:00:00Z'), account: 'acc_a', replicas: ['p1', 'p2'] }] },
    });
    const found = Object.fromEntries(checks.map((c) => [c.name, c.violations]));
    expect(found['posts only from the bound account, and one account per group']).toEqual([
      '2026-03-10T10:00:00.000Z Telegram got a post in @g_one from acc_b, bound to acc_a',
      '2026-03-10T10:00:00.000Z acc_b posted in @g_one, which acc_a had joined',
    ]);
    expect(found['at most 2 posts per group per UTC day']).toEqual([
      '3 posts in @g_one on 2026-03-10 (post_history)',
      '18 posts in @g_new on 2026-03-10 (post_history)',
    ]);
    expect(found['at most 20 posts per account per UTC day']).toEqual([
      '21 posts by acc_a on 2026-03-10 (post_history)',
    ]);
    expect(found['no post during the 24 h warm-up']).toHaveLength(19); // 18 rows in @g_new, and acc_b never joined @g_one
    expect(found['no action during a FloodWait or slow mode']).toEqual([
      '2026-03-10T12:00:00.000Z acc_a @g_one: action during a FloodWait',
    ]);
    expect(found['no call to a group after it refused us']).toEqual([
      '2026-03-10T12:00:00.000Z acc_a post in @g_one, which refused us at 2026-03-10T11:00:00.000Z',
    ]);
    expect(found['no session driven by two processes at once']).toHaveLength(2);
  });

  it('count a chat, not a link: a second account or a third post reaching one chat through another link', async () => {
    const a = await insertAccount(t, 'acc_a');
    const b = await insertAccount(t, 'acc_b');
    await insertBoundTarget(t, '@g_one', a, { joined_at: '2026-03-08T09:00:00Z' });
    await insertBoundTarget(t, '@g_one_alt', b, { joined_at: '2026-03-08T09:00:00Z' });
    const viaAlias = (c: FakeCall): FakeCall => ({ ...c, chat: '@g_one' });
    const calls: FakeCall[] = [
      join('acc_a', '@g_one', '2026-03-08T09:00:00Z'),
      viaAlias(join('acc_b', '@g_one_alt', '2026-03-08T10:00:00Z')),
      post('acc_a', '@g_one', '2026-03-10T01:00:00Z'),
      post('acc_a', '@g_one', '2026-03-10T05:00:00Z'),
      viaAlias(post('acc_b', '@g_one_alt', '2026-03-10T09:00:00Z')),
    ];
    const checks = await checkInvariants({
      dataSource: t.dataSource,
      calls,
      fakeViolations: [],
      ledger: { overlaps: [] },
    });
    const found = Object.fromEntries(checks.map((c) => [c.name, c.violations]));
    // Per link, nothing is wrong; per chat, both.
    expect(found['at most 2 posts per group per UTC day']).toEqual([]);
    expect(found["at most 2 posts per chat per UTC day, and one account per chat (by Telegram's chat id)"]).toEqual([
      '3 posts reached chat @g_one on 2026-03-10',
      '2026-03-08T10:00:00.000Z acc_b joined chat @g_one (through @g_one_alt), which acc_a is in',
      '2026-03-10T09:00:00.000Z acc_b posted in chat @g_one (through @g_one_alt), which acc_a is in',
    ]);
  });

  it("catch a group closed when only an account's restriction refused it", async () => {
    const a = await insertAccount(t, 'acc_a');
    await insertBoundTarget(t, '@g_one', a, { joined_at: '2026-03-08T09:00:00Z', status: 'banned' });
    await insertBoundTarget(t, '@g_two', a, { joined_at: '2026-03-08T09:00:00Z', status: 'banned' });
    const calls: FakeCall[] = [
      { ...post('acc_a', '@g_one', '2026-03-10T01:00:00Z', false), restricted: true },
      post('acc_a', '@g_two', '2026-03-10T01:05:00Z', false),
    ];
    const checks = await checkInvariants({
      dataSource: t.dataSource,
      calls,
      fakeViolations: [],
      ledger: { overlaps: [] },
    });
    const found = Object.fromEntries(checks.map((c) => [c.name, c.violations]));
    expect(found['no group closed because of an account-wide restriction']).toEqual([
      "@g_one is closed (banned), but only an account's restriction ever refused it",
    ]);
    // The restriction's refusal is not the group's: a later call to @g_one would not break "no call after it refused us".
    expect(found['no call to a group after it refused us']).toEqual([]);
  });

  it("catch what only Telegram's record shows: limits, warm-up, a second account in a group", async () => {
    const a = await insertAccount(t, 'acc_a');
    await insertAccount(t, 'acc_b');
    await insertBoundTarget(t, '@g_one', a, { joined_at: '2026-03-08T09:00:00Z' });
    const calls: FakeCall[] = [
      join('acc_a', '@g_one', '2026-03-08T09:00:00Z'),
      // Three posts reach @g_one on one day; the history (empty) knows nothing of them.
      post('acc_a', '@g_one', '2026-03-10T01:00:00Z'),
      post('acc_a', '@g_one', '2026-03-10T05:00:00Z'),
      post('acc_a', '@g_one', '2026-03-10T09:00:00Z'),
      // acc_a joins 20 more groups and posts in each an hour later, still in their warm-up: 23 posts that day.
      ...Array.from({ length: 20 }, (_, i) => [
        join('acc_a', `@g_${i}`, '2026-03-10T10:00:00Z'),
        post('acc_a', `@g_${i}`, '2026-03-10T11:00:00Z'),
      ]).flat(),
      // acc_b joins @g_one, which acc_a had joined (it crashed before the binding was stored, say).
      join('acc_b', '@g_one', '2026-03-10T12:00:00Z'),
    ];
    const checks = await checkInvariants({
      dataSource: t.dataSource,
      calls,
      fakeViolations: [],
      ledger: { overlaps: [] },
    });
    const found = Object.fromEntries(checks.map((c) => [c.name, c.violations]));
    expect(found['at most 2 posts per group per UTC day']).toEqual(['3 posts in @g_one on 2026-03-10 (Telegram)']);
    expect(found['at most 20 posts per account per UTC day']).toEqual(['23 posts by acc_a on 2026-03-10 (Telegram)']);
    expect(found['no post during the 24 h warm-up']).toHaveLength(20);
    expect(found['no post during the 24 h warm-up']![0]).toBe(
      '2026-03-10T11:00:00.000Z acc_a posted in @g_0, joined 2026-03-10T10:00:00.000Z',
    );
    expect(found['posts only from the bound account, and one account per group']).toEqual([
      ...Array.from(
        { length: 20 },
        (_, i) => `2026-03-10T11:00:00.000Z Telegram got a post in @g_${i} from acc_a, bound to nobody`,
      ),
      '2026-03-10T12:00:00.000Z acc_b joined @g_one, which acc_a had joined',
    ]);
  });

  it('catch a history row from an account the group is not bound to', async () => {
    const a = await insertAccount(t, 'acc_a');
    const b = await insertAccount(t, 'acc_b');
    const g = await insertBoundTarget(t, '@g_one', a, { joined_at: '2026-03-08T09:00:00Z' });
    // The database refuses a 'success' or 'pending' row from acc_b; an 'unknown' one it takes.
    await t.query(
      `INSERT INTO post_history (account_id, target_id, status, created_at) VALUES ($1, $2, 'unknown', '2026-03-10T09:00:00')`,
      [b, g],
    );
    const checks = await checkInvariants({
      dataSource: t.dataSource,
      calls: [join('acc_a', '@g_one', '2026-03-08T09:00:00Z')],
      fakeViolations: [],
      ledger: { overlaps: [] },
    });
    expect(checks.find((c) => c.name.startsWith('posts only from the bound account'))!.violations).toEqual([
      'post_history #1: acc_b posted in @g_one, bound to acc_a',
    ]);
  });
});

describe('the session ledger', () => {
  it('records a call by one process while another has the session connected, and nothing once it is closed', () => {
    const ledger = new SessionLedger();
    const at = new Date('2026-03-10T09:00:00Z');
    ledger.connected('acc_a', 'p1');
    ledger.use(at, 'acc_a', 'p1');
    expect(ledger.overlaps).toEqual([]);
    ledger.use(at, 'acc_a', 'p2');
    expect(ledger.overlaps).toEqual([{ at, account: 'acc_a', replicas: ['p1', 'p2'] }]);
    ledger.disconnected('acc_a', 'p2'); // not p2's to close
    ledger.use(at, 'acc_a', 'p2');
    expect(ledger.overlaps).toHaveLength(2);
    ledger.disconnected('acc_a', 'p1');
    ledger.connected('acc_a', 'p2');
    ledger.use(at, 'acc_a', 'p2');
    expect(ledger.overlaps).toHaveLength(2);
  });
});

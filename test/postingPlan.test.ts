/**
 * Posts land when buyers read, at a person's pace (issue 13): the posting window in the
 * audience's zone, each account's day spread over it, joins spaced, new accounts ramped up.
 */
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config';
import { inPostingWindow } from '../src/daemon/postingWindow';
import { DbManager } from '../src/db/DbManager';
import type { SimulationOptions, SimulationResult } from '../src/simulate/simulation';
import { mayTryJoin } from '../src/sql/joining';
import { NO_PACE } from '../src/sql/rules';
import { loadStatus } from '../src/status/loadStatus';
import { type FakeCall, FakeTelegram } from '../src/telegram/fakeGateway';
import { type DaemonHarness, TEST_SETTINGS, useDaemons } from './helpers/daemon';
import { useTestDatabase } from './helpers/database';
import { insertBoundTarget, insertDrivableAccount, insertTarget } from './helpers/fixtures';
import { simulateOnScratch } from './helpers/simulation';

const HOUR = 3_600_000;
const KYIV_DAY = { postingHours: { start: 8, end: 22 }, timeZone: 'Europe/Kyiv' };
const RAMP = { startJoins: 2, startPosts: 3, flatDays: 3, fullDays: 14 };
/** The production pace: joins 30 min apart, posts 20, new accounts ramped up. */
const PACE = { rampUp: RAMP, joinSpacingMs: 30 * 60_000, postSpacingMs: 20 * 60_000 };
/** The production plan: spread, 08-22 Kyiv, at the production pace. */
const PLANNED = { ...KYIV_DAY, spread: true, ...PACE };

const t = useTestDatabase({ start: '2026-03-10T00:00:00.000Z' });
const daemon = useDaemons(t);

const perClockHour = (calls: FakeCall[]) => {
  const counts = new Map<string, number>();
  for (const c of calls) {
    const key = `${c.account} ${c.at.toISOString().slice(0, 13)}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return Math.max(0, ...counts.values());
};

/** acc_1, seasoned (full budgets), bound to 30 warmed-up groups it is a member of. */
async function seasonedAccountIn30Groups(h: DaemonHarness): Promise<void> {
  const a = await insertDrivableAccount(t, 'acc_1', { seasoned: true });
  for (let i = 1; i <= 30; i++) {
    const link = `@group_${String(i).padStart(2, '0')}`;
    await insertBoundTarget(t, link, a);
    h.fake.addMember(link, 'acc_1');
  }
}

describe("one account's day", () => {
  it('spreads its 20 posts over 08-22 in Kyiv (06-20 UTC in March), at most 3 in a clock hour, none bunched at the end', async () => {
    const h = daemon({ settings: PLANNED });
    await seasonedAccountIn30Groups(h);
    await h.runFor(24 * HOUR);
    const posts = h.fake.sent();
    expect(posts).toHaveLength(20);
    expect(posts.every((c) => inPostingWindow(c.at, KYIV_DAY.postingHours, KYIV_DAY.timeZone))).toBe(true);
    expect(perClockHour(posts)).toBeLessThanOrEqual(3);
    // Over the whole window: the first in its first two hours, the last in its last two, and no
    // gap between two posts longer than twice the even share (14 h / 21).
    const at = posts.map((c) => c.at.getTime());
    expect(at[0]! - Date.parse('2026-03-10T06:00:00Z')).toBeLessThan(2 * HOUR);
    expect(Date.parse('2026-03-10T20:00:00Z') - at[at.length - 1]!).toBeLessThan(2 * HOUR);
    const gaps = at.slice(1).map((x, i) => x - at[i]!);
    expect(Math.max(...gaps)).toBeLessThan((2 * 14 * HOUR) / 21);
    expect(Math.min(...gaps)).toBeGreaterThan(10 * 60_000);
    // lexus status shows the next planned post.
    const [row] = await t.query<{ next_post_planned_at: Date }>(`SELECT next_post_planned_at FROM accounts`);
    expect(row!.next_post_planned_at.getTime()).toBeGreaterThanOrEqual(Date.parse('2026-03-11T06:00:00Z'));
  });

  it('after a FloodWait of three hours, spreads what is left over the rest of the window instead of bunching it', async () => {
    const h = daemon({ settings: PLANNED });
    await seasonedAccountIn30Groups(h);
    h.fake.on({
      op: 'post',
      outcome: (call) =>
        call.at.getTime() >= Date.parse('2026-03-10T10:00:00Z') &&
        !h.fake.calls.some((c) => c.outcome?.kind === 'account_flood_wait')
          ? { kind: 'account_flood_wait', seconds: 3 * 3600, error: 'FLOOD_WAIT_10800' }
          : undefined,
    });
    await h.runFor(24 * HOUR);
    const posts = h.fake.sent();
    expect(posts).toHaveLength(20);
    expect(perClockHour(posts)).toBeLessThanOrEqual(3);
    expect(h.fake.violations()).toEqual([]);
    expect(posts.every((c) => inPostingWindow(c.at, KYIV_DAY.postingHours, KYIV_DAY.timeZone))).toBe(true);
  });

  it('spaces its joins at least 30 minutes apart, and joins over the part of the window that leaves its groups time for both posts', async () => {
    const h = daemon({ settings: PLANNED });
    await insertDrivableAccount(t, 'acc_1', { seasoned: true });
    for (let i = 1; i <= 20; i++) await insertTarget(t, `@group_${String(i).padStart(2, '0')}`);
    await h.runFor(24 * HOUR);
    const joins = h.fake.calls.filter((c) => c.op === 'join');
    expect(joins).toHaveLength(10);
    const at = joins.map((c) => c.at.getTime());
    expect(Math.min(...at.slice(1).map((x, i) => x - at[i]!))).toBeGreaterThanOrEqual(30 * 60_000);
    expect(perClockHour(joins)).toBeLessThanOrEqual(2);
    // 06-20 UTC, less the 4 h gap: joined by 16:00, warm 24 h later with 4 h of window left.
    expect(
      joins.every(
        (c) =>
          c.at.getTime() >= Date.parse('2026-03-10T06:00:00Z') && c.at.getTime() < Date.parse('2026-03-10T16:00:00Z'),
      ),
    ).toBe(true);
  });

  it('keeps the spacing between joins in the database: a restart, or another process taking the account over, waits for it too', async () => {
    const a = await insertDrivableAccount(t, 'acc_1', { seasoned: true });
    const earlier = await insertTarget(t, '@joined_before');
    await insertTarget(t, '@next_in_queue');
    // The last process joined at 09:00 and died; a new one starts at 09:05 and, acting as soon as
    // the rules allow (no plan of its own yet), would join at once.
    await t.query(
      `INSERT INTO join_history (account_id, target_id, outcome, created_at) VALUES ($1, $2, 'joined', '2026-03-10 09:00:00')`,
      [a, earlier],
    );
    t.clock.set('2026-03-10T09:05:00Z');
    const spacing = 30 * 60_000;
    expect(
      await mayTryJoin(t.dataSource, a, 10, new Date('2026-03-10T09:29:59Z'), { ...NO_PACE, joinSpacingMs: spacing }),
    ).toBe(false);
    expect(
      await mayTryJoin(t.dataSource, a, 10, new Date('2026-03-10T09:30:00Z'), { ...NO_PACE, joinSpacingMs: spacing }),
    ).toBe(true);
    const status = await loadStatus(t.dataSource, t.clock.now(), { ...TEST_SETTINGS, joinSpacingMs: spacing });
    expect(status.nextAction).toMatchObject({
      kind: 'join',
      at: '2026-03-10T09:30:00.000Z',
      waitingFor: ['the spacing between two joins'],
    });
    const h = daemon({ settings: { joinSpacingMs: spacing } });
    await h.runFor(2 * HOUR);
    const joins = h.fake.calls.filter((c) => c.op === 'join' || c.op === 'lookup');
    expect(joins.length).toBeGreaterThan(0);
    expect(joins[0]!.at.getTime()).toBeGreaterThanOrEqual(Date.parse('2026-03-10T09:30:00Z'));
  });

  it('restarted every 10 minutes, still posts at its pace: the spacing from its last post is in the database, a new plan starts at its phase', async () => {
    t.clock.set('2026-03-10T09:00:00Z');
    const fake = new FakeTelegram({ clock: t.clock });
    let h = daemon({ settings: PLANNED, fake });
    await seasonedAccountIn30Groups(h);
    for (let i = 0; i < 18; i++) {
      if (i > 0) h = daemon({ settings: PLANNED, fake, seed: i + 1 });
      await h.runFor(10 * 60_000);
      await h.daemon.stop(1000);
    }
    const at = fake.sent().map((c) => c.at.getTime());
    // 3 hours: about one post every 20-40 minutes, never two within 20.
    expect(at.length).toBeGreaterThanOrEqual(4);
    expect(Math.min(...at.slice(1).map((x, i) => x - at[i]!))).toBeGreaterThanOrEqual(20 * 60_000);
    expect(perClockHour(fake.sent())).toBeLessThanOrEqual(3);
  });

  it('started late in the window, posts what the spacing lets it, not its whole day in a burst', async () => {
    // 18:00 in Kyiv: 4 hours of window left, 20 posts of budget.
    t.clock.set('2026-03-10T16:00:00Z');
    const h = daemon({ settings: PLANNED });
    await seasonedAccountIn30Groups(h);
    await h.runFor(8 * HOUR);
    const at = h.fake.sent().map((c) => c.at.getTime());
    expect(at.length).toBeGreaterThanOrEqual(6);
    expect(at.length).toBeLessThanOrEqual(12);
    expect(Math.min(...at.slice(1).map((x, i) => x - at[i]!))).toBeGreaterThanOrEqual(20 * 60_000);
    expect(perClockHour(h.fake.sent())).toBeLessThanOrEqual(3);
    expect(at.every((x) => x < Date.parse('2026-03-10T20:00:00Z'))).toBe(true);
  });

  it('with a window that crosses UTC midnight, a fleet whose day was used up does not all post at 00:00 UTC', async () => {
    t.clock.set('2026-03-10T20:00:00Z');
    const h = daemon({ settings: { ...PLANNED, postingHours: { start: 20, end: 4 }, timeZone: 'UTC' } });
    for (let n = 1; n <= 8; n++) {
      const a = await insertDrivableAccount(t, `acc_${n}`, { seasoned: true });
      for (let i = 1; i <= 10; i++) {
        const link = `@g${n}_${String(i).padStart(2, '0')}`;
        await insertBoundTarget(t, link, a);
        h.fake.addMember(link, `acc_${n}`);
      }
    }
    await h.runFor(2 * 24 * HOUR);
    const posts = h.fake.sent();
    for (const night of ['2026-03-11', '2026-03-12']) {
      const start = Date.parse(`${night}T00:00:00Z`);
      const first = posts.filter((c) => c.at.getTime() >= start && c.at.getTime() < start + 5 * 60_000);
      expect(new Set(first.map((c) => c.account)).size).toBeLessThanOrEqual(4);
      expect(posts.filter((c) => c.at.getTime() >= start && c.at.getTime() < start + 4 * HOUR).length).toBeGreaterThan(
        0,
      );
    }
    expect(perClockHour(posts)).toBeLessThanOrEqual(3);
  });

  it('with a window that crosses UTC midnight, still never more than 20 a UTC day for the account or 2 for a group', async () => {
    const h = daemon({ settings: { ...PLANNED, postingHours: { start: 20, end: 4 }, timeZone: 'UTC' } });
    await seasonedAccountIn30Groups(h);
    await h.runFor(3 * 24 * HOUR);
    const posts = h.fake.sent();
    const byDay = new Map<string, number>();
    const byGroupDay = new Map<string, number>();
    for (const c of posts) {
      const day = c.at.toISOString().slice(0, 10);
      byDay.set(day, (byDay.get(day) ?? 0) + 1);
      byGroupDay.set(`${c.link} ${day}`, (byGroupDay.get(`${c.link} ${day}`) ?? 0) + 1);
      const hour = c.at.getUTCHours();
      expect(hour >= 20 || hour < 4).toBe(true);
    }
    expect(Math.max(...byDay.values())).toBeLessThanOrEqual(20);
    expect(Math.max(...byGroupDay.values())).toBeLessThanOrEqual(2);
    // Both sides of midnight are used, each UTC day's budget spread over both of its parts.
    expect(posts.some((c) => c.at.getUTCHours() >= 20) && posts.some((c) => c.at.getUTCHours() < 4)).toBe(true);
    expect(perClockHour(posts)).toBeLessThanOrEqual(3);
  });
});

describe('the plan at its edges', () => {
  it('plans the posts groups bring that were not there when the window opened: the first soon, not hours later', async () => {
    t.clock.set('2026-03-10T05:50:00Z');
    const a = await insertDrivableAccount(t, 'acc_1', { seasoned: true });
    const h = daemon({ settings: PLANNED });
    // The window opens at 06:00 UTC with nothing to post; at 09:05 in Kyiv ten ready groups are bound (an import).
    await h.runFor(75 * 60_000);
    expect(h.fake.sent()).toEqual([]);
    for (let i = 1; i <= 10; i++) {
      await insertBoundTarget(t, `@g${i}`, a);
      h.fake.addMember(`@g${i}`, 'acc_1');
    }
    await h.runFor(13 * HOUR);
    const at = h.fake.sent().map((c) => c.at.getTime());
    expect(at[0]! - Date.parse('2026-03-10T07:05:00Z')).toBeLessThan(HOUR);
    expect(at).toHaveLength(20);
    expect(Math.min(...at.slice(1).map((x, i) => x - at[i]!))).toBeGreaterThanOrEqual(20 * 60_000);
  });

  it('starts no post in the last minutes of the window, so that what is sent lands inside it', async () => {
    // 21:57:30 in Kyiv (UTC+2 in March): a post may take two calls of a minute, and a minute more.
    t.clock.set('2026-03-10T19:57:30Z');
    const a = await insertDrivableAccount(t, 'acc_1', { seasoned: true });
    const h = daemon({ settings: { ...PLANNED, spread: false } });
    await insertBoundTarget(t, '@ready', a);
    h.fake.addMember('@ready', 'acc_1');
    await h.runFor(2 * HOUR);
    expect(h.fake.calls.filter((c) => c.op !== 'disconnect')).toEqual([]);
    // Three minutes earlier, it posts (and the post lands before 22:00).
    t.clock.set('2026-03-11T19:56:00Z');
    await h.runFor(4 * 60_000);
    expect(h.fake.sent().map((c) => c.at.toISOString())).toEqual(['2026-03-11T19:56:00.000Z']);
  });

  it('does not join after the window closed during the lookup, an invite to a chat we are not in included', async () => {
    // A lookup that takes 4 minutes, begun at 21:56 in Kyiv.
    t.clock.set('2026-03-10T19:56:00Z');
    const fake = new FakeTelegram({
      clock: t.clock,
      latencyMs: (op) => (op === 'lookup' ? 4 * 60_000 : 0),
      sleep: async (ms) => void t.clock.advance(ms),
    });
    await insertDrivableAccount(t, 'acc_1', { seasoned: true });
    await insertTarget(t, 'https://t.me/+AbCdEfGh12345');
    fake.on({ op: 'lookup', outcome: { kind: 'found', chat: null, member: false } });
    const h = daemon({ settings: { ...PLANNED, spread: false }, fake });
    await h.runFor(60_000);
    expect(fake.calls.filter((c) => c.op === 'lookup')).toHaveLength(1);
    await h.runFor(9 * HOUR);
    const joins = fake.calls.filter((c) => c.op === 'join');
    expect(joins.every((c) => inPostingWindow(c.at, KYIV_DAY.postingHours, KYIV_DAY.timeZone))).toBe(true);
    // The lookup's answer was recorded: no call is left marked unanswered overnight.
    expect(await t.query(`SELECT call_started_at FROM accounts`)).toEqual([{ call_started_at: null }]);
    // The claim stays with the account, which joins when the window opens again.
    await h.runFor(4 * HOUR);
    expect(
      fake.calls.filter((c) => c.op === 'join').map((c) => c.at.getTime() >= Date.parse('2026-03-11T06:00:00Z')),
    ).toEqual([true]);
  });

  for (const spread of [false, true]) {
    it(`keeps the joins spaced after a process died in a call of the account whose answer it never recorded${spread ? ' (spread)' : ''}`, async () => {
      const a = await insertDrivableAccount(t, 'acc_1', { seasoned: true });
      const earlier = await insertTarget(t, '@joined_before');
      await t.query(
        `INSERT INTO join_history (account_id, target_id, outcome, created_at) VALUES ($1, $2, 'joined', '2026-03-10 08:00:00')`,
        [a, earlier],
      );
      // The previous process began a call (a join, maybe) at 09:00 and died before recording it.
      await insertTarget(t, '@claimed');
      await t.query(`UPDATE targets SET join_claimed_by = $1 WHERE link = '@claimed'`, [a]);
      await t.query(`UPDATE accounts SET call_started_at = '2026-03-10 09:00:00' WHERE id = $1`, [a]);
      for (let i = 1; i <= 5; i++) await insertTarget(t, `@q${i}`);
      t.clock.set('2026-03-10T09:01:00Z');
      const h = daemon({ settings: { ...PLANNED, spread } });
      await h.runFor(3 * HOUR);
      const joins = h.fake.calls.filter((c) => c.op === 'join' || c.op === 'lookup');
      expect(joins.length).toBeGreaterThan(0);
      // 30 minutes after the latest that call could have landed (its start and a post's deadline, 3 min).
      expect(joins[0]!.at.getTime()).toBeGreaterThanOrEqual(Date.parse('2026-03-10T09:33:00Z'));
      expect(perClockHour(h.fake.calls.filter((c) => c.op === 'join'))).toBeLessThanOrEqual(2);
    });
  }
});

describe("the pace, kept by the database: a new account's budgets, the spacing of posts", () => {
  it('grow with its days in the fleet: 3 posts and 2 joins for 3 days, full after 14; a seasoned one has them at once', async () => {
    const a = await insertDrivableAccount(t, 'acc_new');
    const s = await insertDrivableAccount(t, 'acc_seasoned', { seasoned: true });
    for (let i = 1; i <= 12; i++) {
      await insertBoundTarget(t, `@new_${String(i).padStart(2, '0')}`, a);
      await insertBoundTarget(t, `@old_${String(i).padStart(2, '0')}`, s);
    }
    const db = (at: string) =>
      new DbManager(t.dataSource, { clock: { now: () => new Date(at) }, pace: { ...NO_PACE, rampUp: RAMP } });
    const postsOn = async (at: string, accountId: number) => {
      let n = 0;
      while (await db(at).reservePostSlot({ accountId })) n++;
      return n;
    };
    await t.query(`UPDATE accounts SET first_driven_at = '2026-03-10 07:00:00'`);
    expect(await postsOn('2026-03-10T09:00:00Z', a)).toBe(3);
    expect(await postsOn('2026-03-10T09:00:00Z', s)).toBe(20);
    expect(await postsOn('2026-03-12T09:00:00Z', a)).toBe(3); // day 3
    expect(await postsOn('2026-03-13T09:00:00Z', a)).toBe(4); // day 4: growing
    expect(await postsOn('2026-03-23T09:00:00Z', a)).toBe(18); // day 14
    expect(await postsOn('2026-03-24T09:00:00Z', a)).toBe(20); // day 15: full
    // Joins: 2 on the first days, 10 at full.
    await t.query(
      `INSERT INTO join_history (account_id, target_id, outcome, created_at) SELECT $1, 1, 'joined', '2026-03-10 08:00:00' FROM generate_series(1, 2)`,
      [a],
    );
    expect(await mayTryJoin(t.dataSource, a, 10, new Date('2026-03-10T09:00:00Z'), { ...NO_PACE, rampUp: RAMP })).toBe(
      false,
    );
    expect(await mayTryJoin(t.dataSource, s, 10, new Date('2026-03-10T09:00:00Z'), { ...NO_PACE, rampUp: RAMP })).toBe(
      true,
    );
  });

  it('post at least the spacing apart, whoever reserves: the reservation itself refuses a post sooner', async () => {
    const a = await insertDrivableAccount(t, 'acc_1');
    for (const link of ['@one', '@two', '@three']) await insertBoundTarget(t, link, a);
    const db = (at: string) =>
      new DbManager(t.dataSource, {
        clock: { now: () => new Date(at) },
        pace: { ...NO_PACE, postSpacingMs: 20 * 60_000 },
      });
    expect(await db('2026-03-10T09:00:00Z').reservePostSlot({ accountId: a })).not.toBeNull();
    expect(await db('2026-03-10T09:19:59Z').reservePostSlot({ accountId: a })).toBeNull();
    expect(await db('2026-03-10T09:19:59Z').getGroupsReadyForPosting()).toEqual([]);
    expect(await db('2026-03-10T09:20:00Z').reservePostSlot({ accountId: a })).not.toBeNull();
    // The spacing counts from the send when it ended later than the reservation (a slow upload).
    const slow = await db('2026-03-10T09:40:00Z').reservePostSlot({ accountId: a });
    await db('2026-03-10T09:41:30Z').settlePost(slow!.id, { outcome: 'sent' });
    expect(await db('2026-03-10T10:01:29Z').reservePostSlot({ accountId: a })).toBeNull();
    expect(await db('2026-03-10T10:01:30Z').reservePostSlot({ accountId: a })).not.toBeNull();
    // Without the pace (the seed's API), only the limits.
    expect(
      await new DbManager(t.dataSource, { clock: { now: () => new Date('2026-03-10T10:01:31Z') } }).reservePostSlot({
        accountId: a,
      }),
    ).not.toBeNull();
  });

  it('counts from when a daemon first drove it, kept in the database', async () => {
    const h = daemon({ settings: PLANNED });
    await insertDrivableAccount(t, 'acc_1');
    t.clock.set('2026-03-10T07:00:00Z');
    await h.daemon.tick();
    expect(await t.query(`SELECT first_driven_at FROM accounts`)).toEqual([
      { first_driven_at: new Date('2026-03-10T07:00:00Z') },
    ]);
  });
});

describe('the configuration of the plan', () => {
  it('reads the posting hours, the old quiet hours as their complement, the spacings and the ramp-up', () => {
    expect(loadConfig({}, { inDocker: false }).daemon).toMatchObject({
      postingHours: { start: 8, end: 22 },
      timeZone: 'Europe/Kyiv',
      spread: true,
      joinSpacingMs: 30 * 60_000,
      postSpacingMs: 20 * 60_000,
      rampUp: { startJoins: 2, startPosts: 3, flatDays: 3, fullDays: 14 },
    });
    expect(loadConfig({ LEXUS_QUIET_HOURS: '23-07' }, { inDocker: false }).daemon.postingHours).toEqual({
      start: 7,
      end: 23,
    });
    expect(
      loadConfig(
        { LEXUS_POSTING_HOURS: '00-24', LEXUS_RAMP_UP_START: '1/5', LEXUS_RAMP_UP_DAYS: '2-7' },
        { inDocker: false },
      ).daemon,
    ).toMatchObject({
      postingHours: { start: 0, end: 24 },
      rampUp: { startJoins: 1, startPosts: 5, flatDays: 2, fullDays: 7 },
    });
    expect(() => loadConfig({ LEXUS_POSTING_HOURS: '08-22', LEXUS_QUIET_HOURS: '23-07' }, { inDocker: false })).toThrow(
      /LEXUS_QUIET_HOURS: set LEXUS_POSTING_HOURS or LEXUS_QUIET_HOURS, not both/,
    );
    expect(() => loadConfig({ LEXUS_POSTING_HOURS: '8-8' }, { inDocker: false })).toThrow(
      /LEXUS_POSTING_HOURS: START and END must differ/,
    );
    expect(() => loadConfig({ LEXUS_RAMP_UP_DAYS: '14-3' }, { inDocker: false })).toThrow(
      /LEXUS_RAMP_UP_DAYS: FLAT must not be more than FULL/,
    );
    expect(() => loadConfig({ LEXUS_RAMP_UP_START: '99999999999/3' }, { inDocker: false })).toThrow(
      /LEXUS_RAMP_UP_START: JOINS must be at most 50/,
    );
    expect(() => loadConfig({ LEXUS_RAMP_UP_START: '2/21' }, { inDocker: false })).toThrow(
      /LEXUS_RAMP_UP_START: POSTS must be at most 20/,
    );
    expect(loadConfig({ LEXUS_POST_SPACING_MIN: '0' }, { inDocker: false }).daemon.postSpacingMs).toBe(0);
    expect(() => loadConfig({ LEXUS_POST_SPACING_MIN: 'soon' }, { inDocker: false })).toThrow(
      /LEXUS_POST_SPACING_MIN: must be a number/,
    );
  });
});

describe('lexus simulate with the plan, on small fleets', () => {
  const run = (options: Partial<SimulationOptions>): Promise<SimulationResult> =>
    simulateOnScratch(
      { accounts: 4, groups: 120, days: 5, settings: { ...TEST_SETTINGS, ...PLANNED, maxParallelAccounts: 5 } },
      options,
    );
  const figures = (r: SimulationResult) => ({
    violations: r.violations,
    inWindow: r.pacing.windowShare !== null && r.pacing.windowShare >= 0.99,
    postsPerHour: r.pacing.maxAccountPostsPerHour <= 3,
    joinsPerHour: r.pacing.maxAccountJoinsPerHour <= 2,
    utilization: r.totals.utilization !== null && r.totals.utilization >= 0.99,
  });
  const met = { violations: 0, inWindow: true, postsPerHour: true, joinsPerHour: true, utilization: true };

  it("posts in the window, at a person's pace, all the rules and the ramp-up allow: new accounts and seasoned ones", async () => {
    const fresh = await run({});
    expect(figures(fresh)).toEqual(met);
    expect(fresh.totals.posts).toBeGreaterThan(0);
    expect(fresh.hourly.some((h) => h.inWindow) && fresh.hourly.some((h) => !h.inWindow)).toBe(true);
    const seasoned = await run({ seasoned: true, days: 4 });
    expect(figures(seasoned)).toEqual(met);
    // Seasoned accounts post at full rate from their second day: 20 each.
    expect(seasoned.days[2]!.posts).toBe(80);
  });

  it('across the last Sunday of March, when Kyiv moves to summer time', async () => {
    const r = await run({ start: new Date('2026-03-27T00:00:00Z'), days: 4, seasoned: true });
    expect(figures(r)).toEqual(met);
    // On the 29th the window is 05-19 UTC, on the 28th 06-20 UTC.
    expect(r.hourly.filter((h) => h.inWindow && h.hour >= 48 && h.hour < 72).map((h) => h.hour - 48)).toEqual([
      5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18,
    ]);
    expect(r.hourly.filter((h) => h.inWindow && h.hour >= 24 && h.hour < 48).map((h) => h.hour - 24)).toEqual([
      6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19,
    ]);
  });
});

import { describe, expect, it } from 'vitest';
import { holdGroup } from '../src/sql/groups';
import { formatStatus } from '../src/status/formatStatus';
import { type FleetStatus, loadStatus, type StatusSettings } from '../src/status/loadStatus';
import { ROOT, runLexus } from './helpers/cli';
import { AS_SOON_AS_ALLOWED_ENV } from './helpers/daemon';
import { createEmptyDatabase, type TestDatabase, useTestDatabase } from './helpers/database';
import { insertAccount, insertBoundTarget, insertTarget } from './helpers/fixtures';
import { databaseUrl } from './helpers/net';

const t = useTestDatabase();

const HOUR = 3_600_000;
const settings = { niches: ['ukraine_cars', 'kyiv_cars'], joinsPerAccountPerDay: 10, groupMinGapMs: 4 * HOUR };

const SESSION = 'SECRET-SESSION-xyz';
const OTHER_SESSION = 'SECRET-SESSION-abc';
const API_HASH = '0123456789abcdef0123456789abcdef';
const PROXY_PASSWORD = 'Pr0xyPa55word';

async function post(
  t: TestDatabase,
  accountId: number,
  targetId: number,
  status: string,
  createdAt: string,
): Promise<void> {
  await t.query(
    `INSERT INTO post_history (account_id, target_id, message_content, status, created_at) VALUES ($1, $2, 'Lexus IS 250', $3, $4)`,
    [accountId, targetId, status, createdAt],
  );
}

async function join(
  t: TestDatabase,
  accountId: number,
  targetId: number,
  outcome: string,
  createdAt: string,
): Promise<void> {
  await t.query(`INSERT INTO join_history (account_id, target_id, outcome, created_at) VALUES ($1, $2, $3, $4)`, [
    accountId,
    targetId,
    outcome,
    createdAt,
  ]);
}

/**
 * The clock is at 2026-03-10T09:00:00Z. Four accounts:
 * - acc_active: 3 posts today; groups ready (2), warming (1), in the gap (1), done for today (1), banned (1);
 * - acc_flood: in a FloodWait until 09:12:30, one warmed-up group that would take a post;
 * - acc_banned: dead session, a stale counter, one warmed-up group and one dead link bound;
 * - acc_nosession: imported without a session.
 * Unbound: groups to join in both served niches, one asked for (join request), a dead link, and
 * one in a niche the daemon does not serve.
 */
async function seedWorld(t: TestDatabase) {
  // acc_active: driven since two days ago, its next post planned at 11:20 UTC (13:20 in Kyiv);
  // acc_flood ran in the old system (seasoned). Both driven by a daemon on host-a (its lease runs
  // to 09:00:20); acc_active connected 10 min ago.
  const driven = { driven_by: 'host-a:1234:9f3c', driven_until: '2026-03-10 09:00:20' };
  const active = await insertAccount(t, 'acc_active', {
    daily_posts_count: 3,
    last_stats_reset: '2026-03-10T06:00:00Z',
    session_string: OTHER_SESSION,
    api_id: 12345,
    api_hash: API_HASH,
    proxy: `socks5://user:${PROXY_PASSWORD}@10.0.0.1:1080`,
    first_driven_at: '2026-03-08 07:00:00',
    next_post_planned_at: '2026-03-10 11:20:00',
    ...driven,
    last_connect_at: '2026-03-10 08:50:00',
    last_connect_outcome: 'connected',
  });
  const flood = await insertAccount(t, 'acc_flood', {
    status: 'flood_wait',
    next_allowed_action_time: '2026-03-10T09:12:30Z',
    daily_posts_count: 1,
    last_stats_reset: '2026-03-10T05:00:00Z',
    session_string: OTHER_SESSION,
    seasoned: true,
    ...driven,
    last_connect_at: '2026-03-10 08:47:30',
    last_connect_outcome: 'account_flood_wait',
  });
  const banned = await insertAccount(t, 'acc_banned', {
    status: 'banned',
    daily_posts_count: 7,
    last_stats_reset: '2026-03-09T18:00:00Z',
    session_string: SESSION,
    api_hash: API_HASH,
    status_reason: 'session dead: SESSION_REVOKED',
  });
  await insertAccount(t, 'acc_nosession');

  const readyOne = await insertBoundTarget(t, '@ready_one', active);
  // Posted twice yesterday: today's counter starts afresh.
  await insertBoundTarget(t, '@ready_two', active, {
    niche: 'kyiv_cars',
    joined_at: '2026-03-09T03:00:00Z',
    last_post_at: '2026-03-09T20:00:00Z',
    daily_posts_in_group: 2,
    last_group_stats_reset: '2026-03-09T14:00:00Z',
  });
  const warming = await insertBoundTarget(t, '@warming', active, { joined_at: '2026-03-09T15:00:00Z' });
  const gap = await insertBoundTarget(t, '@gap', active, {
    last_post_at: '2026-03-10T07:30:00Z',
    daily_posts_in_group: 1,
    last_group_stats_reset: '2026-03-10T07:30:00Z',
  });
  const done = await insertBoundTarget(t, '@done', active, {
    last_post_at: '2026-03-10T08:00:00Z',
    daily_posts_in_group: 2,
    last_group_stats_reset: '2026-03-10T06:00:00Z',
  });
  await insertBoundTarget(t, '@closed', active, { status: 'banned' });
  const floodGroup = await insertBoundTarget(t, '@flood_group', flood, {
    last_post_at: '2026-03-10T05:00:00Z',
    daily_posts_in_group: 1,
    last_group_stats_reset: '2026-03-10T05:00:00Z',
  });
  const bannedGroup = await insertBoundTarget(t, '@banned_acc_group', banned, { joined_at: '2026-03-07T09:00:00Z' });
  await insertBoundTarget(t, '@closed_two', banned, { status: 'error' });

  const newOne = await insertTarget(t, '@new_one');
  await insertTarget(t, '@new_two', { niche: 'kyiv_cars' });
  const requested = await insertTarget(t, '@requested');
  await t.query(
    `UPDATE targets SET status = 'requested', join_claimed_by = $1, join_retry_at = '2026-03-10T20:00:00' WHERE id = $2`,
    [active, requested],
  );
  const deadLink = await insertTarget(t, '@dead_link', { status: 'error' });
  await insertTarget(t, '@odessa', { niche: 'odessa_cars' });

  await post(t, active, done, 'success', '2026-03-10T06:00:00Z');
  await post(t, active, gap, 'success', '2026-03-10T07:30:00Z');
  await post(t, active, done, 'unknown', '2026-03-10T08:00:00Z');
  await post(t, active, readyOne, 'error', '2026-03-10T08:30:00Z');
  await post(t, active, gap, 'success', '2026-03-09T23:59:59Z'); // yesterday
  await post(t, flood, floodGroup, 'success', '2026-03-10T05:00:00Z');
  await post(t, banned, bannedGroup, 'success', '2026-03-09T18:00:00Z');

  await join(t, active, warming, 'joined', '2026-03-09T15:00:00Z');
  await join(t, active, deadLink, 'link_dead', '2026-03-10T02:00:00Z');
  await join(t, active, requested, 'join_request_pending', '2026-03-10T08:00:00Z');
  await join(t, flood, newOne, 'account_flood_wait', '2026-03-10T08:47:30Z');
  return { active, flood, banned };
}

const EXPECTED = `Lexus status at 2026-03-10 09:00:00 UTC
Niches served: ukraine_cars, kyiv_cars; joins per account per day: 10; gap between two posts in a group: 4h
Posting hours: 08-22 Europe/Kyiv (open now; next post times below are Europe/Kyiv times)

Accounts: 4 (2 active, 1 needs login, 1 flood_wait)
account        status                                      session  in fleet  posts today  joins today  next post  FloodWait  warming  ready  waiting  done today  closed  last action
acc_active     active                                      yes      day 3            3/20         2/10      13:20          -        1      2        1           1       1  post error @ready_one 30m ago
acc_banned     needs login: session dead: SESSION_REVOKED  yes      new              0/20         0/10          -          -        0      0        1           0       1  post success @banned_acc_group 15h ago
acc_flood      flood_wait                                  yes      seasoned         1/20         1/10          -    12m 30s        0      0        1           0       0  join account_flood_wait @new_one 12m 30s ago
acc_nosession  active                                      no       new              0/20         0/10          -          -        0      0        0           0       0  -
Groups: warming = in the 24 h warm-up; ready = may take a post now; waiting = warmed up, held by the gap,
a hold (slow mode, failing posts, a refused message) or its account; done today = its 2 posts of today made;
closed = banned us or a dead link.
Needs a login: acc_banned (session dead: SESSION_REVOKED), acc_nosession (no session)  ->  lexus login NAME

account        driven by    last connect                    next attempt  waits for
acc_active     host-a:1234  connected 10m ago                      13:20  its plan for the day (posts spread over the posting hours)
acc_banned     -            -                                          -  a login (lexus login acc_banned)
acc_flood      host-a:1234  account_flood_wait 12m 30s ago         11:12  a FloodWait
acc_nosession  -            -                                          -  a login (lexus login acc_nosession)

Groups by niche: 14
niche         served  new  requested  joined  error  banned  total
kyiv_cars     yes       1          0       1      0       0      2
odessa_cars   no        1          0       0      0       0      1
ukraine_cars  yes       1          1       6      2       1     11
total                   3          1       7      2       1     14

Posts today (since 00:00 UTC): 4 of at most 12 the rules allow (success 3, unknown 1, pending 0); not sent: error 1
Next action: now: acc_active can post to @ready_one
`;

const load = (now = t.clock.now(), overrides: Partial<StatusSettings> = {}) =>
  loadStatus(t.dataSource, now, { ...settings, ...overrides });

describe('lexus status', () => {
  it('shows accounts, groups, posts of the day and the next action, as text', async () => {
    await seedWorld(t);
    expect(formatStatus(await load())).toBe(EXPECTED);
  });

  it('gives the same numbers as JSON, dates as ISO strings', async () => {
    const { active, flood, banned } = await seedWorld(t);
    const status: FleetStatus = JSON.parse(JSON.stringify(await load()));
    expect(status.now).toBe('2026-03-10T09:00:00.000Z');
    expect(status.accounts.map((a) => a.sessionName)).toEqual([
      'acc_active',
      'acc_banned',
      'acc_flood',
      'acc_nosession',
    ]);
    const [a, b, f, n] = status.accounts;
    expect(a).toEqual({
      id: active,
      sessionName: 'acc_active',
      status: 'active',
      statusReason: null,
      hasSession: true,
      needsLogin: false,
      configProblem: null,
      ownCredentials: true,
      drivenBy: 'host-a:1234',
      drivenUntil: '2026-03-10T09:00:20.000Z',
      lastConnect: { outcome: 'connected', at: '2026-03-10T08:50:00.000Z' },
      next: { at: '2026-03-10T11:20:00.000Z', waitsFor: 'its plan for the day (posts spread over the posting hours)' },
      postsToday: 3,
      postsLimit: 20,
      joinsToday: 2,
      joinsLimit: 10,
      limitedSince: null,
      limitedUntil: null,
      floodWaitUntil: null,
      floodWaitRemainingMs: null,
      daysInFleet: 2,
      seasoned: false,
      nextPostPlannedAt: '2026-03-10T11:20:00.000Z',
      groups: { warming: 1, ready: 2, waiting: 1, doneForToday: 1, closed: 1 },
      lastAction: { kind: 'post', outcome: 'error', target: '@ready_one', at: '2026-03-10T08:30:00.000Z' },
    });
    expect(b).toMatchObject({
      id: banned,
      status: 'banned',
      statusReason: 'session dead: SESSION_REVOKED',
      hasSession: true,
      needsLogin: true,
      postsToday: 0,
      joinsToday: 0,
    });
    expect(b!.groups).toEqual({ warming: 0, ready: 0, waiting: 1, doneForToday: 0, closed: 1 });
    expect(f).toMatchObject({
      id: flood,
      status: 'flood_wait',
      postsToday: 1,
      joinsToday: 1,
      floodWaitUntil: '2026-03-10T09:12:30.000Z',
      floodWaitRemainingMs: 750_000,
      lastAction: { kind: 'join', outcome: 'account_flood_wait', target: '@new_one', at: '2026-03-10T08:47:30.000Z' },
    });
    expect(f!.groups).toEqual({ warming: 0, ready: 0, waiting: 1, doneForToday: 0, closed: 0 });
    expect(n).toMatchObject({
      hasSession: false,
      lastAction: null,
      groups: { warming: 0, ready: 0, waiting: 0, doneForToday: 0, closed: 0 },
    });
    expect(status.accountsByStatus).toEqual({ active: 2, banned: 1, flood_wait: 1 });
    expect(status.niches).toEqual([
      {
        niche: 'kyiv_cars',
        served: true,
        byStatus: { new: 1, requested: 0, joined: 1, error: 0, banned: 0 },
        total: 2,
      },
      {
        niche: 'odessa_cars',
        served: false,
        byStatus: { new: 1, requested: 0, joined: 0, error: 0, banned: 0 },
        total: 1,
      },
      {
        niche: 'ukraine_cars',
        served: true,
        byStatus: { new: 1, requested: 1, joined: 6, error: 2, banned: 1 },
        total: 11,
      },
    ]);
    expect(status.targetsByStatus).toEqual({ new: 3, requested: 1, joined: 7, error: 2, banned: 1 });
    expect(status.postsToday).toBe(4);
    expect(status.postsTodayByStatus).toEqual({ success: 3, unknown: 1, error: 1 });
    // acc_active: 5 joined groups of served niches warmed up before midnight (@warming at 15:00), 2 each; acc_flood: 1 group.
    expect(status.maxPostsToday).toBe(12);
    expect(status.nextAction).toEqual({
      at: '2026-03-10T09:00:00.000Z',
      now: true,
      inMs: 0,
      account: 'acc_active',
      accountId: active,
      kind: 'post',
      target: '@ready_one',
      waitingFor: [],
    });
    // The same from a QueryRunner (the caller's own connection or transaction).
    const runner = t.dataSource.createQueryRunner();
    try {
      expect(JSON.parse(JSON.stringify(await loadStatus(runner, t.clock.now(), settings)))).toEqual(status);
    } finally {
      await runner.release();
    }
  });

  it('never shows a session string, an API hash or a proxy', async () => {
    await seedWorld(t);
    const status = await load();
    for (const shown of [formatStatus(status), JSON.stringify(status)]) {
      for (const secret of [SESSION, OTHER_SESSION, API_HASH, PROXY_PASSWORD, '10.0.0.1', 'socks5']) {
        expect(shown).not.toContain(secret);
      }
    }
  });

  it('names the next action when nothing can be done right now, and why it waits', async () => {
    const { active } = await seedWorld(t);
    // Without acc_active, acc_flood's post (and its join) wait for its FloodWait.
    await t.query(`UPDATE accounts SET status = 'banned' WHERE id = $1`, [active]);
    let status = await load();
    expect(status.nextAction).toMatchObject({
      at: '2026-03-10T09:12:30.000Z',
      now: false,
      inMs: 750_000,
      account: 'acc_flood',
      kind: 'post',
      target: '@flood_group',
      waitingFor: ['FloodWait'],
    });
    expect(formatStatus(status)).toContain(
      'Next action: 2026-03-10 09:12:30 UTC (in 12m 30s): acc_flood can post to @flood_group (waiting for: FloodWait)\n',
    );
    // The FloodWait over and acc_flood's posts of the day made: its join comes first.
    await t.query(
      `UPDATE accounts SET next_allowed_action_time = NULL, daily_posts_count = 20 WHERE session_name = 'acc_flood'`,
    );
    status = await load();
    expect(status.nextAction).toMatchObject({ now: true, account: 'acc_flood', kind: 'join', target: '@new_one' });
    expect(formatStatus(status)).toContain('Next action: now: acc_flood can join @new_one\n');
    // No joins allowed: the post waits for the next UTC midnight, at any hour...
    status = await load(t.clock.now(), { joinsPerAccountPerDay: 0, postingHours: { start: 0, end: 24 } });
    expect(status.nextAction).toMatchObject({
      at: '2026-03-11T00:00:00.000Z',
      kind: 'post',
      waitingFor: ["the account's 20 posts of today made"],
    });
    // ... and for the posting hours' opening (08:00 in Kyiv, 06:00 UTC in March) when they are 08-22.
    status = await load(t.clock.now(), { joinsPerAccountPerDay: 0 });
    expect(status.nextAction).toMatchObject({
      at: '2026-03-11T06:00:00.000Z',
      now: false,
      kind: 'post',
      waitingFor: ["the account's 20 posts of today made", 'the posting hours'],
    });
    // Something possible now, but at night: the next action is at the opening, not "now".
    await t.query(`UPDATE accounts SET daily_posts_count = 0 WHERE session_name = 'acc_flood'`);
    status = await load(new Date('2026-03-10T21:00:00Z'));
    expect(status.nextAction).toMatchObject({
      at: '2026-03-11T06:00:00.000Z',
      now: false,
      waitingFor: ['the posting hours'],
    });
    expect(formatStatus(status)).toContain('Next action: 2026-03-11 06:00:00 UTC (in 9h): ');
  });

  it('names the kind of hold a group waits for: a slow mode, failing posts, a refused message, a restriction, or one of no known kind', async () => {
    const a = await insertAccount(t, 'acc_a', { session_string: 'x' });
    const g = await insertBoundTarget(t, '@held', a);
    const waits = async () => (await load(t.clock.now(), { joinsPerAccountPerDay: 0 })).nextAction?.waitingFor;
    const until = (minutes: number) => new Date(t.clock.now().getTime() + minutes * 60_000);
    await holdGroup(t.dataSource, { targetId: g, until: until(30), kind: 'failing', now: t.clock.now() });
    expect(await waits()).toEqual(['a hold after its posts failed']);
    // A shorter hold of another kind keeps the longer one, and its kind.
    await holdGroup(t.dataSource, { targetId: g, until: until(5), kind: 'slow_mode', now: t.clock.now() });
    expect(await waits()).toEqual(['a hold after its posts failed']);
    await holdGroup(t.dataSource, { targetId: g, until: until(60), kind: 'slow_mode', now: t.clock.now() });
    expect(await waits()).toEqual(['slow mode']);
    await holdGroup(t.dataSource, { targetId: g, until: until(90), kind: 'refuses_message', now: t.clock.now() });
    expect(await waits()).toEqual(['a hold after it refused our message']);
    await t.query(`UPDATE targets SET post_hold_kind = 'restriction' WHERE id = $1`, [g]);
    expect(await waits()).toEqual(["a hold after an account's restriction"]);
    // Written by hand, or before the kind was kept.
    await t.query(`UPDATE targets SET post_hold_kind = NULL WHERE id = $1`, [g]);
    expect(await waits()).toEqual(['a hold']);
  });

  it('waits for the end of a warm-up, or for a join budget of tomorrow', async () => {
    const a = await insertAccount(t, 'acc_a', { session_string: 'x' });
    await insertBoundTarget(t, '@warming', a, { joined_at: '2026-03-09T15:00:00Z' });
    let status = await load(t.clock.now(), { joinsPerAccountPerDay: 1 });
    expect(status.nextAction).toMatchObject({
      at: '2026-03-10T15:00:00.000Z',
      kind: 'post',
      target: '@warming',
      waitingFor: ['warm-up'],
    });
    expect(status.maxPostsToday).toBe(2);
    expect(status.accounts[0]!.groups).toEqual({ warming: 1, ready: 0, waiting: 0, doneForToday: 0, closed: 0 });
    // A group to join, but the day's one join is made: tomorrow, after the warm-up's post.
    const g = await insertTarget(t, '@to_join');
    await join(t, a, g, 'transient', '2026-03-10T08:00:00Z');
    await insertBoundTarget(t, '@late', a, { joined_at: '2026-03-10T00:00:00Z' });
    status = await load(t.clock.now(), { joinsPerAccountPerDay: 1 });
    expect(status.nextAction).toMatchObject({ at: '2026-03-10T15:00:00.000Z', target: '@warming' });
    // A warm-up ending at midnight adds nothing to today's maximum.
    expect(status.maxPostsToday).toBe(2);
    await t.query(`UPDATE targets SET status = 'banned' WHERE link = '@warming'`);
    status = await load(t.clock.now(), { joinsPerAccountPerDay: 1, postingHours: { start: 0, end: 24 } });
    expect(status.nextAction).toMatchObject({
      at: '2026-03-11T00:00:00.000Z',
      kind: 'post',
      target: '@late',
      waitingFor: ['warm-up'],
    });
    await t.query(`UPDATE targets SET status = 'banned' WHERE link = '@late'`);
    status = await load(t.clock.now(), { joinsPerAccountPerDay: 1, postingHours: { start: 0, end: 24 } });
    expect(status.nextAction).toMatchObject({
      at: '2026-03-11T00:00:00.000Z',
      kind: 'join',
      target: '@to_join',
      waitingFor: ["the account's joins of today made"],
    });
    expect(status.maxPostsToday).toBe(0);
  });

  it("counts at most 20 posts a day per account in the day's maximum, and none for an account that cannot act", async () => {
    const a = await insertAccount(t, 'acc_many', { session_string: 'x' });
    const b = await insertAccount(t, 'acc_gone', { status: 'banned', session_string: 'x' });
    for (let i = 0; i < 11; i++) await insertBoundTarget(t, `@group_${i}`, a);
    await insertBoundTarget(t, '@gone_group', b);
    const status = await load();
    expect(status.accounts.map((x) => x.groups.ready)).toEqual([0, 11]);
    expect(status.maxPostsToday).toBe(20);
  });

  it('on an empty database, says there is no account yet and how to add one', async () => {
    const status = await load();
    expect(status).toMatchObject({ accounts: [], postsToday: 0, maxPostsToday: 0, nextAction: null });
    expect(formatStatus(status)).toBe(`Lexus status at 2026-03-10 09:00:00 UTC
Niches served: ukraine_cars, kyiv_cars; joins per account per day: 10; gap between two posts in a group: 4h
Posting hours: 08-22 Europe/Kyiv (open now; next post times below are Europe/Kyiv times)

Accounts: none yet. Import the old system's files (\`lexus import --dir PATH\`) or log an account in (\`lexus login NAME\`).

Groups: none yet. \`lexus import --dir PATH\` adds the old system's groups.

Posts today (since 00:00 UTC): 0 of at most 0 the rules allow (success 0, unknown 0, pending 0)
Next action: none: there is no account yet.
`);
  });
});

describe('lexus status, the command', () => {
  const run = (url: string, args: string[] = []) =>
    runLexus(['status', ...args], { cwd: ROOT, env: { DATABASE_URL: url, ...AS_SOON_AS_ALLOWED_ENV } });

  it('prints the view, or JSON for scripts, from the configured database and without a secret', async () => {
    const a = await insertAccount(t, 'acc_cli', { session_string: SESSION, api_hash: API_HASH });
    await insertBoundTarget(t, '@cli_group', a, { joined_at: new Date(Date.now() - 48 * HOUR).toISOString() });
    const text = run(databaseUrl(t.connection));
    expect(text.status).toBe(0);
    expect(text.stdout).toMatch(/^Lexus status at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\n/);
    // The real clock: in a UTC day's last 3 minutes no post is reserved, so the group waits for midnight.
    const lastMinutes = new Date().getUTCHours() === 23 && new Date().getUTCMinutes() >= 56;
    if (!lastMinutes) {
      expect(text.stdout).toMatch(/\nacc_cli +active +yes +new +0\/20 +0\/10 +- +- +0 +1 +0 +0 +0 +-\n/);
      expect(text.stdout).toContain('Next action: now: acc_cli can post to @cli_group');
    }
    // Not driven, and without API credentials where status runs: both said.
    expect(text.stdout).toMatch(/\nacc_cli +- +- +- +API credentials \(TG_API_ID and TG_API_HASH\) and a daemon\n/);
    expect(text.stdout).toContain(
      'No daemon drives any account: none runs (lexus start), or each has lost its database; 1 account could be driven.',
    );
    const json = run(databaseUrl(t.connection), ['--json']);
    expect(json.status).toBe(0);
    const status = JSON.parse(json.stdout) as FleetStatus;
    expect(status.accounts).toMatchObject([
      { sessionName: 'acc_cli', status: 'active', hasSession: true, postsToday: 0 },
    ]);
    for (const out of [text.stdout + text.stderr, json.stdout + json.stderr]) {
      expect(out).not.toContain(SESSION);
      expect(out).not.toContain(API_HASH);
    }
  });

  it('on a database without the schema, says to migrate and exits 1', async () => {
    const empty = await createEmptyDatabase();
    try {
      const result = run(databaseUrl(empty.connection));
      expect(result.status).toBe(1);
      expect(result.stderr).toContain('is not set up (or not up to date): run lexus migrate, or lexus start');
    } finally {
      await empty.drop();
    }
  });
});

describe('lexus status after Telegram limited an account, and with one chat under two links', () => {
  it('says which account is restricted, since when and until when, its reduced budget, and which rows are duplicates', async () => {
    await insertAccount(t, 'acc_restricted', {
      status: 'flood_wait',
      next_allowed_action_time: '2026-03-11T08:00:00Z',
      session_string: 'x',
      limited_since: '2026-03-10T08:00:00',
      limited_until: '2026-03-11T08:00:00',
      status_reason: 'restricted by Telegram: 2 groups refused it within 60 min (USER_BANNED_IN_CHANNEL)',
    });
    await insertTarget(t, '@autobazar_ua');
    await t.query(
      `INSERT INTO targets (link, niche, status, status_reason) VALUES ('@autobazar_ukraine', 'ukraine_cars', 'duplicate', 'the same chat as @autobazar_ua (target #1)')`,
    );
    const text = formatStatus(await load());
    expect(text).toContain(
      'Limited by Telegram: acc_restricted since 2026-03-10 08:00:00 UTC (restricted by Telegram: 2 groups refused it within 60 min (USER_BANNED_IN_CHANNEL)); paused until 2026-03-11 08:00:00 UTC, then back at half its budget, growing daily',
    );
    expect(text).toContain(
      'Duplicate: @autobazar_ukraine is the same chat as @autobazar_ua (target #1); never joined or posted to',
    );
    // The day its pause ends: half the budget; the next day three quarters; then all of it.
    const budget = async (now: string) => (await load(new Date(now))).accounts[0]!;
    expect(await budget('2026-03-11T09:00:00Z')).toMatchObject({
      postsLimit: 10,
      joinsLimit: 5,
      limitedSince: '2026-03-10T08:00:00.000Z',
      limitedUntil: '2026-03-11T08:00:00.000Z',
    });
    expect(await budget('2026-03-12T09:00:00Z')).toMatchObject({ postsLimit: 15, joinsLimit: 7 });
    expect(await budget('2026-03-13T09:00:00Z')).toMatchObject({ postsLimit: 20, joinsLimit: 10 });
    expect(formatStatus(await load(new Date('2026-03-11T09:00:00Z')))).toContain(
      'now back at 10 posts and 5 joins today',
    );
  });
});

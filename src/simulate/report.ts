/**
 * What a simulation shows: per UTC day the joins, posts, FloodWaits, bans and active accounts,
 * and the utilization, i.e. the posts Telegram received over the most the rules allowed for that
 * population and those bindings. Posts and answers are counted from the fake Telegram's record
 * (what really happened), bindings from the database.
 */
import type { DataSource } from 'typeorm';
import { DAY_MS, HOUR_MS } from '../clock';
import { inPostingWindow, openParts, type PostingHours } from '../daemon/postingWindow';
import { ACCOUNT_DAILY_POST_LIMIT, GROUP_DAILY_POST_LIMIT, type RampUp, WARMUP_MS } from '../sql/rules';
import { type JoinedGroupRow, loadAccountsRampUp, loadJoinedGroups } from '../sql/simulation';
import type { FakeCall } from '../telegram/fakeGateway';

export interface DayReport {
  /** 1-based. */
  day: number;
  date: string;
  joins: number;
  posts: number;
  /** The most the rules allowed that day for the groups bound by then (see policyMaximum). */
  maxPosts: number;
  utilization: number | null;
  floodWaits: number;
  /** Groups that refused us that day (banned, read-only). */
  groupBans: number;
  /** Sessions that died that day. */
  sessionsLost: number;
  /** Accounts that made at least one call to Telegram that day. */
  accountsActive: number;
}

export interface HourPoint {
  /** Hours since the start of the run. */
  hour: number;
  posts: number;
  joins: number;
  /** The posting window is open at the start of this hour. */
  inWindow?: boolean;
}

/** Where in the audience's day the posts went, and how bunched they were. */
export interface Pacing {
  /** Posts that landed inside the posting window, of all that landed (null: none landed). */
  windowShare: number | null;
  /** The most posts one account made in one clock hour (UTC), and the most joins it tried. */
  maxAccountPostsPerHour: number;
  maxAccountJoinsPerHour: number;
  /** The most posts the fleet made in one clock hour. */
  maxFleetPostsPerHour: number;
}

/** The pacing figures from Telegram's record. */
export function pacing(calls: readonly FakeCall[], window: { hours: PostingHours; timeZone: string }): Pacing {
  const posts = calls.filter((c) => c.op === 'post' && c.delivered);
  const hourOf = (c: FakeCall) => Math.floor(c.at.getTime() / HOUR_MS);
  const most = (keys: string[]) => {
    const counts = new Map<string, number>();
    for (const key of keys) counts.set(key, (counts.get(key) ?? 0) + 1);
    return Math.max(0, ...counts.values());
  };
  const inside = posts.filter((c) => inPostingWindow(c.at, window.hours, window.timeZone)).length;
  return {
    windowShare: posts.length ? inside / posts.length : null,
    maxAccountPostsPerHour: most(posts.map((c) => `${c.account} ${hourOf(c)}`)),
    maxAccountJoinsPerHour: most(calls.filter((c) => c.op === 'join').map((c) => `${c.account} ${hourOf(c)}`)),
    maxFleetPostsPerHour: most(posts.map((c) => String(hourOf(c)))),
  };
}

interface BindingRow extends JoinedGroupRow {
  /** When the group closed to us (refused, or its link died), and when the account's session died. */
  closed_at: Date | null;
  account_gone_at: Date | null;
}

/**
 * When Telegram limited each account (PEER_FLOOD, or refusals from its restriction): from each
 * such answer until the daemon's pause after it ends; and what each account delivered per UTC day.
 */
export interface AccountLimits {
  periods: Map<string, { from: number; until: number }[]>;
  /** account -> 'YYYY-MM-DD' -> posts that landed. */
  delivered: Map<string, Map<string, number>>;
}

export function accountLimits(calls: readonly FakeCall[], pauseMs: number): AccountLimits {
  const periods = new Map<string, { from: number; until: number }[]>();
  const delivered = new Map<string, Map<string, number>>();
  for (const c of calls) {
    if (c.outcome?.kind === 'account_limited' || c.restricted) {
      periods.set(c.account, [
        ...(periods.get(c.account) ?? []),
        { from: c.at.getTime(), until: c.at.getTime() + pauseMs },
      ]);
    }
    if (c.op === 'post' && c.delivered) {
      const days = delivered.get(c.account) ?? new Map<string, number>();
      const day = c.at.toISOString().slice(0, 10);
      days.set(day, (days.get(day) ?? 0) + 1);
      delivered.set(c.account, days);
    }
  }
  return { periods, delivered };
}

/**
 * The rules and the daemon's own policies that an allowance counts: the posting window (no post
 * outside it) and a new account's ramp-up (its budget of the day, by its days in the fleet).
 */
export interface AllowancePolicy {
  window?: { hours: PostingHours; timeZone: string };
  rampUp?: RampUp;
  /** When each account was first driven (its ramp-up counts from then), and which are seasoned. */
  accounts?: Map<string, { firstDrivenAt: Date | null; seasoned: boolean }>;
}

/** A limited account's posts on the UTC day after its pause ends (rules.ts budgetShareSql: three quarters). */
export function postsTheDayAfterAPause(): number {
  return Math.floor(ACCOUNT_DAILY_POST_LIMIT * 0.75);
}

/** A new account's post budget on its `d`-th day in the fleet (rules.ts rampedSql, the same arithmetic). */
export function rampedPosts(ramp: RampUp, d: number): number {
  if (d >= ramp.fullDays) return ACCOUNT_DAILY_POST_LIMIT;
  if (d < ramp.flatDays) return Math.min(ramp.startPosts, ACCOUNT_DAILY_POST_LIMIT);
  return Math.min(
    ACCOUNT_DAILY_POST_LIMIT,
    ramp.startPosts +
      Math.floor(
        ((ACCOUNT_DAILY_POST_LIMIT - ramp.startPosts) * (d - ramp.flatDays + 1)) / (ramp.fullDays - ramp.flatDays + 1),
      ),
  );
}

/** The parts of [dayStart, dayEnd) the posting window is open (all of it without a window). */
function openPartsOf(dayStart: number, dayEnd: number, window: AllowancePolicy['window']): [number, number][] {
  return window ? openParts(dayStart, dayEnd, window.hours, window.timeZone) : [[dayStart, dayEnd]];
}

/**
 * The most posts the rules allow on day [dayStart, dayEnd) for these bindings: per account the
 * smaller of its budget of the day (20; less in a new account's ramp-up) and the sum over its
 * groups of what each group can take that day. A group takes nothing before its warm-up ends,
 * after it closed to us (it refused us, its link died) or its account's session died, nor while
 * the posting window is shut; if it is open to it at all that day, it takes 2. An account whose
 * session died during the window is allowed the share of 20 the window held before (its day was
 * spread over all of it). An account Telegram limited that day (`limits`) is allowed what it
 * delivered; the day after its pause ended, three quarters of 20 (the daemon's recovery, rules.ts). The daemon's own pacing (the spread over the
 * window, the gap between two posts in a group), FloodWaits, slow modes and database outages are
 * not subtracted: utilization says what they cost.
 */
export function policyMaximum(
  bindings: readonly (Pick<BindingRow, 'account_id' | 'joined_at' | 'closed_at' | 'account_gone_at'> & {
    account?: string;
  })[],
  dayStart: number,
  dayEnd: number,
  limits?: AccountLimits,
  policy: AllowancePolicy = {},
): number {
  const parts = openPartsOf(dayStart, dayEnd, policy.window);
  const perAccount = new Map<number, { n: number; account: string | undefined; goneAt: number }>();
  for (const b of bindings) {
    const from = b.joined_at.getTime() + WARMUP_MS;
    const to = Math.min(b.closed_at?.getTime() ?? Infinity, b.account_gone_at?.getTime() ?? Infinity);
    if (!parts.some(([open, shut]) => Math.max(open, from) < Math.min(shut, to))) continue;
    perAccount.set(b.account_id, {
      n: (perAccount.get(b.account_id)?.n ?? 0) + GROUP_DAILY_POST_LIMIT,
      account: b.account,
      goneAt: b.account_gone_at?.getTime() ?? Infinity,
    });
  }
  const open = parts.reduce((ms, [a, b]) => ms + (b - a), 0);
  let total = 0;
  for (const { n, account, goneAt } of perAccount.values()) {
    // A session that died during the window had only the part before: the day's posts are spread
    // over all of it (the daemon's plan), so that part's share of them.
    let cap =
      policy.window && goneAt < dayEnd && open > 0
        ? Math.floor(
            (ACCOUNT_DAILY_POST_LIMIT * parts.reduce((ms, [a, b]) => ms + Math.max(0, Math.min(b, goneAt) - a), 0)) /
              open,
          )
        : ACCOUNT_DAILY_POST_LIMIT;
    const known = account !== undefined ? policy.accounts?.get(account) : undefined;
    if (policy.rampUp && known && !known.seasoned) {
      const first = known.firstDrivenAt
        ? Math.floor(known.firstDrivenAt.getTime() / DAY_MS)
        : Math.floor(dayStart / DAY_MS);
      cap = Math.min(cap, rampedPosts(policy.rampUp, Math.floor(dayStart / DAY_MS) - first));
    }
    const periods = (account !== undefined && limits?.periods.get(account)) || [];
    if (periods.some((p) => p.from < dayEnd && p.until > dayStart)) {
      cap = Math.min(cap, limits?.delivered.get(account!)?.get(new Date(dayStart).toISOString().slice(0, 10)) ?? 0);
    } else if (periods.some((p) => p.until <= dayStart && p.until > dayStart - DAY_MS)) {
      cap = Math.min(cap, postsTheDayAfterAPause());
    }
    total += Math.min(cap, n);
  }
  return total;
}

/**
 * The bindings, from the database, with the times they ended from Telegram's record (the first
 * refusal or dead link of the group, the first dead session of the account): the rows' own
 * updated_at moves with every later write, such as the midnight reset.
 */
export async function loadBindings(
  ds: DataSource,
  calls: readonly FakeCall[],
  sessionDeaths: ReadonlyMap<string, number> = new Map(),
): Promise<BindingRow[]> {
  const rows = await loadJoinedGroups(ds);
  const closedAt = new Map<string, Date>();
  const goneAt = new Map<string, Date>();
  for (const c of calls) {
    const kind = c.outcome?.kind;
    // A refusal from the account's restriction does not close the group.
    if (c.link && ((kind === 'group_refuses' && !c.restricted) || kind === 'link_dead') && !closedAt.has(c.link))
      closedAt.set(c.link, c.at);
    if (kind === 'session_dead' && !goneAt.has(c.account)) goneAt.set(c.account, c.at);
  }
  // Telegram revoked a session when the plan says, whether or not a call met it then.
  for (const [account, at] of sessionDeaths)
    if (at < (goneAt.get(account)?.getTime() ?? Infinity)) goneAt.set(account, new Date(at));
  return rows.map((r) => ({
    ...r,
    closed_at: closedAt.get(r.link) ?? null,
    account_gone_at: goneAt.get(r.account) ?? null,
  }));
}

const isJoin = (c: FakeCall) =>
  c.op === 'join' && (c.joinedChat === true || c.outcome?.kind === 'joined' || c.outcome?.kind === 'already_member');

export async function dayReport(
  ds: DataSource,
  calls: readonly FakeCall[],
  startMs: number,
  day: number,
  pauseMs = 24 * HOUR_MS,
  sessionDeaths: ReadonlyMap<string, number> = new Map(),
  policy: Omit<AllowancePolicy, 'accounts'> = {},
): Promise<DayReport> {
  const from = startMs + (day - 1) * DAY_MS;
  const to = from + DAY_MS;
  const inDay = calls.filter((c) => c.at.getTime() >= from && c.at.getTime() < to);
  const posts = inDay.filter((c) => c.op === 'post' && c.delivered).length;
  const accounts = await loadAccountsRampUp(ds);
  const maxPosts = policyMaximum(
    await loadBindings(ds, calls, sessionDeaths),
    from,
    to,
    accountLimits(calls, pauseMs),
    {
      ...policy,
      accounts: new Map(
        accounts.map((a) => [a.session_name, { firstDrivenAt: a.first_driven_at, seasoned: a.seasoned }]),
      ),
    },
  );
  return {
    day,
    date: new Date(from).toISOString().slice(0, 10),
    joins: inDay.filter(isJoin).length,
    posts,
    maxPosts,
    utilization: maxPosts > 0 ? posts / maxPosts : null,
    floodWaits: inDay.filter((c) => c.outcome?.kind === 'account_flood_wait').length,
    groupBans: inDay.filter((c) => c.outcome?.kind === 'group_refuses' && !c.restricted).length,
    sessionsLost: inDay.filter((c) => c.outcome?.kind === 'session_dead').length,
    accountsActive: new Set(inDay.filter((c) => c.op !== 'disconnect').map((c) => c.account)).size,
  };
}

export function hourly(
  calls: readonly FakeCall[],
  startMs: number,
  hours: number,
  window?: { hours: PostingHours; timeZone: string },
): HourPoint[] {
  const points: HourPoint[] = Array.from({ length: hours }, (_, hour) => ({
    hour,
    posts: 0,
    joins: 0,
    ...(window ? { inWindow: inPostingWindow(new Date(startMs + hour * HOUR_MS), window.hours, window.timeZone) } : {}),
  }));
  for (const c of calls) {
    const point = points[Math.floor((c.at.getTime() - startMs) / HOUR_MS)];
    if (!point) continue;
    if (c.op === 'post' && c.delivered) point.posts++;
    else if (isJoin(c)) point.joins++;
  }
  return points;
}

/**
 * What a simulation shows: per UTC day the joins, posts, FloodWaits, bans and active accounts,
 * and the utilization, i.e. the posts Telegram received over the most the rules allowed for that
 * population and those bindings. Posts and answers are counted from the fake Telegram's record
 * (what really happened), bindings from the database.
 */
import type { DataSource } from 'typeorm';
import { HOUR_MS } from '../clock';
import { sql } from '../db/sql';
import { ACCOUNT_DAILY_POST_LIMIT, GROUP_DAILY_POST_LIMIT, WARMUP_MS } from '../rules';
import type { FakeCall } from '../telegram/fakeGateway';

const DAY_MS = 24 * HOUR_MS;

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
}

interface BindingRow {
  account_id: number;
  account: string;
  link: string;
  joined_at: Date;
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
      periods.set(c.account, [...(periods.get(c.account) ?? []), { from: c.at.getTime(), until: c.at.getTime() + pauseMs }]);
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
 * The most posts the rules allow on day [dayStart, dayEnd) for these bindings: per account the
 * smaller of 20 and the sum over its groups of what each group can take that day. A group takes
 * nothing before its warm-up ends, after it closed to us (it refused us, its link died) or its
 * account's session died; any time in between, it takes 2. An account Telegram limited that day
 * (`limits`) is allowed what it delivered; the day after its pause ended, three quarters of 20
 * (the daemon's recovery, rules.ts). The daemon's own pacing (the gap between two posts in a
 * group, quiet hours) is not the rules' and is not subtracted, nor are FloodWaits, slow modes or
 * database outages: utilization says what they cost.
 */
export function policyMaximum(
  bindings: readonly (Pick<BindingRow, 'account_id' | 'joined_at' | 'closed_at' | 'account_gone_at'> & { account?: string })[],
  dayStart: number,
  dayEnd: number,
  limits?: AccountLimits,
): number {
  const perAccount = new Map<number, { n: number; account: string | undefined }>();
  for (const b of bindings) {
    const from = Math.max(dayStart, b.joined_at.getTime() + WARMUP_MS);
    const to = Math.min(dayEnd, b.closed_at?.getTime() ?? Infinity, b.account_gone_at?.getTime() ?? Infinity);
    if (from >= to) continue;
    perAccount.set(b.account_id, { n: (perAccount.get(b.account_id)?.n ?? 0) + GROUP_DAILY_POST_LIMIT, account: b.account });
  }
  let total = 0;
  for (const { n, account } of perAccount.values()) {
    let cap = ACCOUNT_DAILY_POST_LIMIT;
    const periods = (account !== undefined && limits?.periods.get(account)) || [];
    if (periods.some((p) => p.from < dayEnd && p.until > dayStart)) {
      cap = Math.min(cap, limits?.delivered.get(account!)?.get(new Date(dayStart).toISOString().slice(0, 10)) ?? 0);
    } else if (periods.some((p) => p.until <= dayStart && p.until > dayStart - DAY_MS)) {
      cap = Math.floor(ACCOUNT_DAILY_POST_LIMIT * 0.75);
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
export async function loadBindings(ds: DataSource, calls: readonly FakeCall[], sessionDeaths: ReadonlyMap<string, number> = new Map()): Promise<BindingRow[]> {
  const { rows } = await sql<Omit<BindingRow, 'closed_at' | 'account_gone_at'>>(
    ds,
    `SELECT t.assigned_account_id AS account_id, a.session_name AS account, t.link, t.joined_at
       FROM targets t JOIN accounts a ON a.id = t.assigned_account_id
      WHERE t.joined_at IS NOT NULL`,
  );
  const closedAt = new Map<string, Date>();
  const goneAt = new Map<string, Date>();
  for (const c of calls) {
    const kind = c.outcome?.kind;
    // A refusal from the account's restriction does not close the group.
    if (c.link && ((kind === 'group_refuses' && !c.restricted) || kind === 'link_dead') && !closedAt.has(c.link)) closedAt.set(c.link, c.at);
    if (kind === 'session_dead' && !goneAt.has(c.account)) goneAt.set(c.account, c.at);
  }
  // Telegram revoked a session when the plan says, whether or not a call met it then.
  for (const [account, at] of sessionDeaths) if (at < (goneAt.get(account)?.getTime() ?? Infinity)) goneAt.set(account, new Date(at));
  return rows.map((r) => ({ ...r, closed_at: closedAt.get(r.link) ?? null, account_gone_at: goneAt.get(r.account) ?? null }));
}

const isJoin = (c: FakeCall) => c.op === 'join' && (c.joinedChat === true || c.outcome?.kind === 'joined' || c.outcome?.kind === 'already_member');

export async function dayReport(
  ds: DataSource,
  calls: readonly FakeCall[],
  startMs: number,
  day: number,
  pauseMs = 24 * HOUR_MS,
  sessionDeaths: ReadonlyMap<string, number> = new Map(),
): Promise<DayReport> {
  const from = startMs + (day - 1) * DAY_MS;
  const to = from + DAY_MS;
  const inDay = calls.filter((c) => c.at.getTime() >= from && c.at.getTime() < to);
  const posts = inDay.filter((c) => c.op === 'post' && c.delivered).length;
  const maxPosts = policyMaximum(await loadBindings(ds, calls, sessionDeaths), from, to, accountLimits(calls, pauseMs));
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

export function hourly(calls: readonly FakeCall[], startMs: number, hours: number): HourPoint[] {
  const points = Array.from({ length: hours }, (_, hour) => ({ hour, posts: 0, joins: 0 }));
  for (const c of calls) {
    const point = points[Math.floor((c.at.getTime() - startMs) / HOUR_MS)];
    if (!point) continue;
    if (c.op === 'post' && c.delivered) point.posts++;
    else if (isJoin(c)) point.joins++;
  }
  return points;
}

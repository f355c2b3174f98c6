/**
 * `lexus status`: the ops view of the fleet, read from the database only, through the fleet views
 * of src/sql/fleet.ts (each one function with its SQL in full, built from the predicates of
 * src/sql/rules.ts, "now" passed in). The views run in one read-only REPEATABLE READ
 * transaction, so the numbers of one status agree with each other; what an account waits for is
 * decided here, from what they read.
 *
 * Never selected, so never returned: accounts.session_string (only whether there is one),
 * api_hash, proxy, phone, and the error messages of the history tables.
 */
import type { DaemonSettings } from '../config';
import {
  DEFAULT_POSTING_HOURS,
  DEFAULT_TIME_ZONE,
  inPostingWindow,
  type PostingHours,
  postingWindowAt,
} from '../daemon/postingWindow';
import {
  type AccountStatusView,
  type DuplicateView,
  inFleetSnapshot,
  iso,
  loadAccountStatuses,
  loadDuplicates,
  loadNextAction,
  loadNicheStatuses,
  loadPostsToday,
  type NextActionView,
  type NicheStatusView,
  statusParams,
  TARGET_STATUSES,
} from '../sql/fleet';
import { restoreHold } from '../sql/restore';
import { COUNTED_POST_STATUSES } from '../sql/rules';
import type { Runner } from '../sql/sql';

export type StatusSettings = Pick<DaemonSettings, 'niches' | 'joinsPerAccountPerDay' | 'groupMinGapMs'> &
  Partial<Pick<DaemonSettings, 'rampUp' | 'postingHours' | 'timeZone' | 'joinSpacingMs' | 'postSpacingMs'>> & {
    /** TG_API_ID and TG_API_HASH are set where status runs (undefined: not known). */
    globalCredentials?: boolean;
  };

export interface FleetStatus {
  now: string;
  settings: {
    niches: string[];
    joinsPerAccountPerDay: number;
    groupMinGapMs: number;
    postingHours: PostingHours;
    timeZone: string;
  };
  accounts: AccountStatusView[];
  accountsByStatus: Record<string, number>;
  niches: NicheStatusView[];
  targetsByStatus: Record<string, number>;
  /** Posts since today's UTC midnight: history rows success, unknown and pending. */
  postsToday: number;
  /** Every post_history row of today by status (failures too). */
  postsTodayByStatus: Record<string, number>;
  /**
   * The most the rules allow today: per account that may act (not banned, with a session)
   * min(20, 2 per joined group of a served niche whose warm-up ends before the next UTC midnight).
   */
  maxPostsToday: number;
  /** Null: no account can do anything in sight. */
  nextAction: NextActionView | null;
  /** Rows closed as a second link of a chat another row stands for (at most 20 shown). */
  duplicates: DuplicateView[];
  /** Posting is held after a restore from a dump, until lexus repair counters (null: it is not). */
  postingHeld: { since: string | null } | null;
}

/**
 * An account's next attempt and what it waits for, as ops ask "why no post": a person (its
 * settings, a login, API credentials), a daemon to drive it, Telegram (a FloodWait, a limit),
 * the posting hours, tomorrow's budgets, or its day's plan.
 */
export function nextAttemptOf(
  a: AccountStatusView,
  now: Date,
  settings: StatusSettings,
  postingHeld = false,
): { at: string | null; waitsFor: string } {
  const hours = settings.postingHours ?? DEFAULT_POSTING_HOURS;
  const zone = settings.timeZone ?? DEFAULT_TIME_ZONE;
  /** `instant`, or the opening of the posting hours after it when they are shut then. */
  const inHours = (instant: Date) =>
    inPostingWindow(instant, hours, zone) ? instant : new Date(postingWindowAt(instant, hours, zone).start);
  if (a.configProblem) return { at: null, waitsFor: 'its settings to be fixed (then lexus import)' };
  if (a.needsLogin) return { at: null, waitsFor: `a login (lexus login ${a.sessionName})` };
  if (!a.drivenBy) {
    // Where status runs, the daemon's credentials are not known; of an account no process drives, they are said.
    if (!a.ownCredentials && settings.globalCredentials === false)
      return { at: null, waitsFor: 'API credentials (TG_API_ID and TG_API_HASH) and a daemon' };
    return { at: null, waitsFor: 'a daemon: no process drives it' };
  }
  if (a.lastConnect?.outcome === 'misconfigured')
    return {
      at: null,
      waitsFor: 'its connection settings (the last connect was refused as misconfigured: lexus check)',
    };
  if (postingHeld) return { at: null, waitsFor: 'lexus repair counters (posting is held after a restore)' };
  if (a.floodWaitUntil) {
    const limited = a.limitedUntil !== null && a.limitedUntil >= a.floodWaitUntil;
    return {
      at: inHours(new Date(a.floodWaitUntil)).toISOString(),
      waitsFor: limited ? "Telegram's limit (PEER_FLOOD or a restriction)" : 'a FloodWait',
    };
  }
  if (!inPostingWindow(now, hours, zone)) return { at: inHours(now).toISOString(), waitsFor: 'the posting hours' };
  if (a.postsToday !== null && a.postsToday >= a.postsLimit && a.joinsToday >= a.joinsLimit) {
    const tomorrow = new Date(new Date(now).setUTCHours(24, 0, 0, 0));
    return {
      at: new Date(postingWindowAt(tomorrow, hours, zone).start).toISOString(),
      waitsFor: "tomorrow's budgets (20 posts and its joins are used)",
    };
  }
  if (a.groups.ready > 0 && (a.nextPostPlannedAt === null || new Date(a.nextPostPlannedAt) <= now))
    return { at: now.toISOString(), waitsFor: 'nothing: it may post now' };
  if (a.nextPostPlannedAt)
    return { at: a.nextPostPlannedAt, waitsFor: 'its plan for the day (posts spread over the posting hours)' };
  return { at: null, waitsFor: 'a group to post in or to join' };
}

/** The next action, moved to the opening of the posting window when it falls outside it. */
export function inPostingHours(
  next: NextActionView | null,
  now: Date,
  hours: PostingHours,
  timeZone: string,
): NextActionView | null {
  if (!next || inPostingWindow(new Date(next.at), hours, timeZone)) return next;
  const at = postingWindowAt(new Date(next.at), hours, timeZone).start;
  const inMs = Math.max(0, at - now.getTime());
  return {
    ...next,
    at: new Date(at).toISOString(),
    now: false,
    inMs,
    waitingFor: [...next.waitingFor, 'the posting hours'],
  };
}

/**
 * What the metrics need of the status: today's counted posts against the most the rules allow,
 * and when the next action is (in the posting hours), as lexus status computes them.
 */
export async function loadDayAtGlance(
  db: Runner,
  now: Date,
  settings: StatusSettings,
): Promise<{ postsToday: number; maxPostsToday: number; nextActionAt: Date | null }> {
  const params = statusParams(now, settings);
  const posts = await loadPostsToday(db, params);
  // A restore holds every post: nothing is in sight until the repair.
  const held = (await restoreHold(db)).held;
  const next = held
    ? null
    : inPostingHours(
        await loadNextAction(db, params),
        now,
        settings.postingHours ?? DEFAULT_POSTING_HOURS,
        settings.timeZone ?? DEFAULT_TIME_ZONE,
      );
  return {
    postsToday: COUNTED_POST_STATUSES.reduce((n, status) => n + (posts.byStatus[status] ?? 0), 0),
    maxPostsToday: posts.maxPostsToday,
    nextActionAt: next ? new Date(next.at) : null,
  };
}

/**
 * The whole status at `now`. `db` is a DataSource (the queries then share one read-only
 * REPEATABLE READ transaction) or a QueryRunner already in the caller's transaction.
 */
export async function loadStatus(db: Runner, now: Date, settings: StatusSettings): Promise<FleetStatus> {
  const params = statusParams(now, settings);
  const { niches } = params;
  const read = async (runner: Runner): Promise<FleetStatus> => {
    const hold = await restoreHold(runner);
    const accounts = (await loadAccountStatuses(runner, params)).map((a) => ({
      ...a,
      next: nextAttemptOf(a, now, settings, hold.held),
    }));
    const nicheViews = await loadNicheStatuses(runner, params);
    const posts = await loadPostsToday(runner, params);
    const nextAction = hold.held
      ? null
      : inPostingHours(
          await loadNextAction(runner, params),
          now,
          settings.postingHours ?? DEFAULT_POSTING_HOURS,
          settings.timeZone ?? DEFAULT_TIME_ZONE,
        );
    const duplicates = await loadDuplicates(runner);
    const accountsByStatus: Record<string, number> = {};
    for (const a of accounts) accountsByStatus[a.status] = (accountsByStatus[a.status] ?? 0) + 1;
    const targetsByStatus: Record<string, number> = Object.fromEntries(TARGET_STATUSES.map((s) => [s, 0]));
    for (const n of nicheViews)
      for (const [s, c] of Object.entries(n.byStatus)) targetsByStatus[s] = (targetsByStatus[s] ?? 0) + c;
    return {
      now: now.toISOString(),
      settings: {
        niches,
        joinsPerAccountPerDay: params.joinsPerDay,
        groupMinGapMs: params.minGapMs,
        postingHours: settings.postingHours ?? DEFAULT_POSTING_HOURS,
        timeZone: settings.timeZone ?? DEFAULT_TIME_ZONE,
      },
      accounts,
      accountsByStatus,
      niches: nicheViews,
      targetsByStatus,
      postsToday: COUNTED_POST_STATUSES.reduce((n, status) => n + (posts.byStatus[status] ?? 0), 0),
      postsTodayByStatus: posts.byStatus,
      maxPostsToday: posts.maxPostsToday,
      nextAction,
      duplicates,
      postingHeld: hold.held ? { since: iso(hold.since) } : null,
    };
  };
  return inFleetSnapshot(db, read);
}

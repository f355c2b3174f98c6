/**
 * `lexus status`: the ops view of the fleet, read from the database only. Every query is one
 * function with its SQL in full, built from the rules' predicates in rules.ts, with "now" passed
 * in as :now (never the database's now()). The queries run in one read-only REPEATABLE READ
 * transaction, so the numbers of one status agree with each other.
 *
 * Never selected, so never returned: accounts.session_string (only whether there is one),
 * api_hash, proxy, phone, and the error messages of the history tables.
 */
import type { DaemonSettings } from '../config';
import { sqlTime } from '../db/postgresTypes';
import { sql, type Runner } from '../db/sql';
import { restoreHold } from '../sql/restore';
import { accountDrivableSql, inJoinQueueSql, joinBudgetSql } from '../sql/rules';
import { DEFAULT_POSTING_HOURS, DEFAULT_TIME_ZONE, inPostingWindow, postingWindowAt, type PostingHours } from '../daemon/postingWindow';
import {
  ACCOUNT_DAILY_POST_LIMIT,
  COUNTED_POST_STATUSES,
  accountDaysInFleetSql,
  NO_RAMP_UP,
  paceParams,
  DEFAULT_NICHE,
  GROUP_DAILY_POST_LIMIT,
  READY_ORDER_SQL,
  TODAY_UTC_SQL,
  TOMORROW_UTC_SQL,
  accountJoinBudgetSql,
  accountMayPostSql,
  accountNextPostAtSql,
  accountPostBudgetSql,
  accountPostsTodaySql,
  groupPostsTodaySql,
  targetGapKeptSql,
  targetMayReceivePostFromSql,
  targetNextPostAtSql,
  targetSlowModeOverSql,
  targetWarmupOverSql,
} from '../sql/rules';

export type StatusSettings = Pick<DaemonSettings, 'niches' | 'joinsPerAccountPerDay' | 'groupMinGapMs'> &
  Partial<Pick<DaemonSettings, 'rampUp' | 'postingHours' | 'timeZone' | 'joinSpacingMs' | 'postSpacingMs'>> & {
    /** TG_API_ID and TG_API_HASH are set where status runs (undefined: not known). */
    globalCredentials?: boolean;
  };

/** The target statuses always shown, in this order; any other status found is shown after them. */
export const TARGET_STATUSES = ['new', 'requested', 'joined', 'error', 'banned'] as const;

/**
 * An account's bound groups, each in exactly one state:
 * - warming: joined, its 24 h warm-up not over (rule 2);
 * - ready: may receive a post from its account now (rules 1-4, slow mode, the daemon's gap,
 *   a niche the daemon serves);
 * - waiting: warmed up, not ready, today's 2 posts not made: the gap after its last post, a
 *   slow mode, its account's FloodWait, 20 posts, ban or missing session, or a niche the daemon
 *   does not serve;
 * - doneForToday: warmed up, its 2 posts of today made (rule 3), until the next UTC midnight;
 * - closed: banned us, read-only, or a dead link (status 'banned' or 'error').
 */
export interface GroupCounts {
  warming: number;
  ready: number;
  waiting: number;
  doneForToday: number;
  closed: number;
}

export interface LastAction {
  kind: 'post' | 'join';
  /** post_history.status or join_history.outcome. */
  outcome: string;
  target: string | null;
  at: string;
}

export interface AccountStatusView {
  id: number;
  sessionName: string;
  status: string;
  statusReason: string | null;
  hasSession: boolean;
  /** Why its own settings cannot be used (no daemon drives it), or null. */
  configProblem: string | null;
  /** It has its own api_id and api_hash (else TG_API_ID / TG_API_HASH are needed). */
  ownCredentials: boolean;
  /** Which process drives it now (host:pid, from its live lease), and until when its lease runs; null: none. */
  drivenBy: string | null;
  drivenUntil: string | null;
  /** Telegram's last answer to connecting it, and when. */
  lastConnect: { outcome: string; at: string } | null;
  /** The lazy counter (null: reset on a day later than now, so unknown for today). */
  postsToday: number | null;
  /** Today's budgets: 20 posts and LEXUS_JOINS_PER_DAY joins, less while it recovers from a limit. */
  postsLimit: number;
  joinsToday: number;
  joinsLimit: number;
  /** The last time Telegram limited it (PEER_FLOOD, a restriction), and when that pause ends; null: never. */
  limitedSince: string | null;
  limitedUntil: string | null;
  /** Whole UTC days since a daemon first drove it (null: never yet); a seasoned one has no ramp-up. */
  daysInFleet: number | null;
  seasoned: boolean;
  /** When the daemon plans its next post (null: no plan known, or it is past). */
  nextPostPlannedAt: string | null;
  /** Set while next_allowed_action_time is after now. */
  floodWaitUntil: string | null;
  floodWaitRemainingMs: number | null;
  groups: GroupCounts;
  lastAction: LastAction | null;
  /** Its next attempt and what it waits for (null `at`: nothing in sight, or it waits for a person). */
  next: { at: string | null; waitsFor: string };
}

export interface NicheStatusView {
  niche: string;
  /** In the daemon's niches (LEXUS_NICHES). */
  served: boolean;
  byStatus: Record<string, number>;
  total: number;
}

export interface NextActionView {
  at: string;
  /** True when some account may do it right now. */
  now: boolean;
  inMs: number;
  account: string;
  accountId: number;
  kind: 'post' | 'join';
  target: string;
  /** What holds it until `at`, as seen now (empty when `now`). */
  waitingFor: string[];
}

export interface FleetStatus {
  now: string;
  settings: { niches: string[]; joinsPerAccountPerDay: number; groupMinGapMs: number; postingHours: PostingHours; timeZone: string };
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

export interface DuplicateView {
  link: string;
  /** Why: "the same chat as @x (target #n)". */
  reason: string | null;
}

interface Params extends ReturnType<typeof paceParams> {
  [name: string]: unknown;
  now: string;
  niches: string[];
  minGapMs: number;
  joinsPerDay: number;
}

const iso = (d: Date | null | undefined): string | null => (d ? d.toISOString() : null);

/** Bound groups by state, posts and joins of today, FloodWait and last action, per account. */
export async function loadAccountStatuses(db: Runner, params: Params): Promise<AccountStatusView[]> {
  const { rows } = await sql<{
    id: number; session_name: string; status: string; status_reason: string | null; has_session: boolean; config_problem: string | null;
    own_credentials: boolean; driven_by: string | null; driven_until: Date | null; last_connect_at: Date | null; last_connect_outcome: string | null;
    posts_today: number | null; flood_wait_until: Date | null; joins_today: number; posts_budget: number; joins_budget: number;
    limited_since: Date | null; limited_until: Date | null; days_in_fleet: number | null; seasoned: boolean; next_post_planned_at: Date | null;
    warming: number; ready: number; waiting: number; done_for_today: number; closed: number;
    last_kind: 'post' | 'join' | null; last_outcome: string | null; last_link: string | null; last_at: Date | null;
  }>(
    db,
    `SELECT a.id, a.session_name, COALESCE(a.status, 'active') AS status, a.status_reason,
            a.session_string IS NOT NULL AS has_session, a.config_problem,
            (a.api_id IS NOT NULL AND a.api_hash IS NOT NULL) AS own_credentials,
            CASE WHEN a.driven_until > CAST(:now AS timestamp) THEN a.driven_by END AS driven_by,
            CASE WHEN a.driven_until > CAST(:now AS timestamp) THEN a.driven_until END AS driven_until,
            a.last_connect_at, a.last_connect_outcome,
            ${accountPostsTodaySql('a')} AS posts_today,
            CASE WHEN a.next_allowed_action_time > CAST(:now AS timestamp) THEN a.next_allowed_action_time END AS flood_wait_until,
            j.today AS joins_today, ${accountPostBudgetSql('a')} AS posts_budget, ${accountJoinBudgetSql('a')} AS joins_budget,
            a.limited_since, a.limited_until, a.seasoned,
            CASE WHEN a.first_driven_at IS NOT NULL THEN ${accountDaysInFleetSql('a')} END AS days_in_fleet,
            -- The plan, unless a FloodWait or the spacing from its last post comes later.
            CASE WHEN a.next_post_planned_at > CAST(:now AS timestamp)
                 THEN GREATEST(a.next_post_planned_at, a.next_allowed_action_time, a.last_post_at + CAST(:postSpacingMs AS integer) * interval '1 millisecond') END AS next_post_planned_at,
            COALESCE(g.warming, 0) AS warming, COALESCE(g.ready, 0) AS ready, COALESCE(g.waiting, 0) AS waiting,
            COALESCE(g.done_for_today, 0) AS done_for_today, COALESCE(g.closed, 0) AS closed,
            last.kind AS last_kind, last.outcome AS last_outcome, lt.link AS last_link, last.at AS last_at
       FROM accounts a
       -- Every bound group once (one pass over targets), each in one state, counted per account.
       LEFT JOIN (
         SELECT s.account_id,
                count(*) FILTER (WHERE s.state = 'warming')::int AS warming,
                count(*) FILTER (WHERE s.state = 'ready')::int AS ready,
                count(*) FILTER (WHERE s.state = 'waiting')::int AS waiting,
                count(*) FILTER (WHERE s.state = 'done_for_today')::int AS done_for_today,
                count(*) FILTER (WHERE s.state = 'closed')::int AS closed
           FROM (SELECT t.assigned_account_id AS account_id,
                        CASE
                          WHEN t.status IN ('banned', 'error', 'duplicate') THEN 'closed'
                          WHEN t.status IS DISTINCT FROM 'joined' THEN NULL
                          WHEN NOT COALESCE(${targetWarmupOverSql('t')}, false) THEN 'warming'
                          WHEN t.niche = ANY(CAST(:niches AS text[])) AND ${accountDrivableSql('ga')}
                               AND COALESCE(${targetMayReceivePostFromSql('t', 'ga')} AND ${targetGapKeptSql('t')} AND ${accountMayPostSql('ga')}, false)
                            THEN 'ready'
                          WHEN COALESCE(${groupPostsTodaySql('t')}, ${GROUP_DAILY_POST_LIMIT}) >= ${GROUP_DAILY_POST_LIMIT} THEN 'done_for_today'
                          ELSE 'waiting'
                        END AS state
                   FROM targets t
                   JOIN accounts ga ON ga.id = t.assigned_account_id) s
          GROUP BY s.account_id) g ON g.account_id = a.id
       CROSS JOIN LATERAL ${joinBudgetSql('a')} j
       LEFT JOIN LATERAL (
         SELECT x.kind, x.outcome, x.target_id, x.at
           FROM ((SELECT 'post' AS kind, p.status AS outcome, p.target_id, p.created_at AS at, p.id
                    FROM post_history p WHERE p.account_id = a.id ORDER BY p.created_at DESC, p.id DESC LIMIT 1)
                 UNION ALL
                 (SELECT 'join', h.outcome, h.target_id, h.created_at, h.id
                    FROM join_history h WHERE h.account_id = a.id ORDER BY h.created_at DESC, h.id DESC LIMIT 1)) x
          ORDER BY x.at DESC, x.kind DESC
          LIMIT 1) last ON true
       LEFT JOIN targets lt ON lt.id = last.target_id
      ORDER BY a.session_name`,
    params,
  );
  const now = new Date(params.now).getTime();
  return rows.map((r) => ({
    id: r.id,
    sessionName: r.session_name,
    status: r.status,
    statusReason: r.status_reason,
    hasSession: r.has_session,
    configProblem: r.config_problem,
    ownCredentials: r.own_credentials,
    drivenBy: r.driven_by === null ? null : r.driven_by.split(':').slice(0, 2).join(':'),
    drivenUntil: iso(r.driven_until),
    lastConnect: r.last_connect_at && r.last_connect_outcome ? { outcome: r.last_connect_outcome, at: r.last_connect_at.toISOString() } : null,
    next: { at: null, waitsFor: '' },
    postsToday: r.posts_today,
    postsLimit: r.posts_budget,
    joinsToday: r.joins_today,
    joinsLimit: r.joins_budget,
    limitedSince: iso(r.limited_since),
    limitedUntil: iso(r.limited_until),
    daysInFleet: r.days_in_fleet,
    seasoned: r.seasoned,
    nextPostPlannedAt: iso(r.next_post_planned_at),
    floodWaitUntil: iso(r.flood_wait_until),
    floodWaitRemainingMs: r.flood_wait_until ? r.flood_wait_until.getTime() - now : null,
    groups: { warming: r.warming, ready: r.ready, waiting: r.waiting, doneForToday: r.done_for_today, closed: r.closed },
    lastAction: r.last_kind && r.last_at ? { kind: r.last_kind, outcome: r.last_outcome ?? '', target: r.last_link, at: r.last_at.toISOString() } : null,
  }));
}

/** Targets by niche and status; the served niches are listed even when they have none. */
export async function loadNicheStatuses(db: Runner, params: Params): Promise<NicheStatusView[]> {
  const { rows } = await sql<{ niche: string; status: string; n: number }>(
    db,
    `SELECT t.niche, COALESCE(t.status, 'new') AS status, count(*)::int AS n
       FROM targets t
      GROUP BY 1, 2
      ORDER BY 1, 2`,
  );
  const byNiche = new Map<string, NicheStatusView>();
  const view = (niche: string) => {
    let v = byNiche.get(niche);
    if (!v) {
      v = { niche, served: params.niches.includes(niche), byStatus: Object.fromEntries(TARGET_STATUSES.map((s) => [s, 0])), total: 0 };
      byNiche.set(niche, v);
    }
    return v;
  };
  for (const niche of params.niches) view(niche);
  for (const r of rows) {
    const v = view(r.niche);
    v.byStatus[r.status] = (v.byStatus[r.status] ?? 0) + r.n;
    v.total += r.n;
  }
  return [...byNiche.values()].sort((x, y) => (x.niche < y.niche ? -1 : x.niche > y.niche ? 1 : 0));
}

/**
 * Today's posts (history rows since today's UTC midnight, by status) and the most the rules allow
 * today: per account that may act, min(20, 2 per joined group of a served niche that is warmed up
 * before the next UTC midnight, i.e. whose warm-up is over at the day's last instant :dayEnd).
 */
export async function loadPostsToday(db: Runner, params: Params): Promise<{ byStatus: Record<string, number>; maxPostsToday: number }> {
  const warmedUpByDayEnd = targetWarmupOverSql('t', 'dayEnd');
  const dayEnd = new Date(new Date(params.now).setUTCHours(24, 0, 0, 0) - 1);
  const { rows } = await sql<{ status: string | null; n: number; max_posts: number }>(
    db,
    `SELECT h.status, h.n, m.max_posts
       FROM (SELECT COALESCE(sum(LEAST(${accountPostBudgetSql('a')}, g.n)), 0)::int AS max_posts
               FROM accounts a
               CROSS JOIN LATERAL (
                 SELECT ${GROUP_DAILY_POST_LIMIT} * count(*) AS n
                   FROM targets t
                  WHERE t.assigned_account_id = a.id AND t.status = 'joined' AND t.niche = ANY(CAST(:niches AS text[]))
                    AND ${warmedUpByDayEnd}) g
              WHERE ${accountDrivableSql('a')}) m
       -- Today's history rows by status, read per account from its (account_id, created_at) index.
       LEFT JOIN (SELECT COALESCE(p.status, 'success') AS status, count(*)::int AS n
                    FROM accounts pa
                    JOIN post_history p ON p.account_id = pa.id
                   WHERE p.created_at >= ${TODAY_UTC_SQL} AND p.created_at < ${TOMORROW_UTC_SQL}
                   GROUP BY 1) h ON true
      ORDER BY h.status`,
    { ...params, dayEnd: sqlTime(dayEnd) },
  );
  const byStatus: Record<string, number> = {};
  for (const r of rows) if (r.status !== null) byStatus[r.status] = r.n;
  return { byStatus, maxPostsToday: rows[0]?.max_posts ?? 0 };
}


/**
 * The earliest action any account may take, and what it is. Per account that may act (not
 * banned, with a session): its next post, at the latest of the rules' next-post instants of its
 * group (targetNextPostAtSql: warm-up, slow mode, gap, the group's 2 posts) and of the account
 * (accountNextPostAtSql: FloodWait, its 20 posts); and its next join, as the daemon's join queue
 * sees it (nextChanceAt, claimJoinTarget): a group of a served niche nobody else claimed, after
 * its retry time, the account's FloodWait, its join budget of the day and a "too many chats"
 * answer of the last 24 h. A post wins a tie. The posting hours are inPostingHours'.
 */
export async function loadNextAction(db: Runner, params: Params): Promise<NextActionView | null> {
  const { rows } = await sql<{
    account_id: number; session_name: string; kind: 'post' | 'join'; link: string; at: Date; waiting_for: string[];
  }>(
    db,
    `WITH drivable AS MATERIALIZED (
       SELECT a.* FROM accounts a
        WHERE ${accountDrivableSql('a')}
     ), free_group AS MATERIALIZED (
       -- The join queue's next group nobody claimed: the first one due, else the first to be due.
       SELECT * FROM (
         (SELECT t.id, t.link, t.join_retry_at FROM targets t
           WHERE t.join_claimed_by IS NULL AND ${inJoinQueueSql('t')}
             AND (t.join_retry_at IS NULL OR t.join_retry_at <= CAST(:now AS timestamp))
           ORDER BY t.id LIMIT 1)
         UNION ALL
         (SELECT t.id, t.link, t.join_retry_at FROM targets t
           WHERE t.join_claimed_by IS NULL AND ${inJoinQueueSql('t')} AND t.join_retry_at > CAST(:now AS timestamp)
           ORDER BY t.join_retry_at, t.id LIMIT 1)) f
        ORDER BY GREATEST(f.join_retry_at, CAST(:now AS timestamp)), f.id
        LIMIT 1
     ), posts AS (
       SELECT a.id AS account_id, a.session_name, 'post' AS kind, g.link,
              GREATEST(g.at, ${accountNextPostAtSql('a')}, CAST(:now AS timestamp)) AS at,
              array_remove(ARRAY[
                CASE WHEN g.warming THEN 'warm-up' END,
                CASE WHEN g.slow_mode THEN 'slow mode' END,
                CASE WHEN g.gap THEN 'gap since its last post' END,
                CASE WHEN g.group_full THEN 'its 2 posts of today made' END,
                CASE WHEN a.next_allowed_action_time > CAST(:now AS timestamp) THEN 'FloodWait' END,
                CASE WHEN COALESCE(${accountPostsTodaySql('a')}, ${ACCOUNT_DAILY_POST_LIMIT}) >= ${accountPostBudgetSql('a')}
                     THEN 'the account''s ' || ${accountPostBudgetSql('a')} || ' posts of today made' END], NULL) AS waiting_for
         FROM drivable a
         CROSS JOIN LATERAL (
           SELECT t.link, ${targetNextPostAtSql('t')} AS at,
                  NOT COALESCE(${targetWarmupOverSql('t')}, false) AS warming,
                  NOT ${targetSlowModeOverSql('t')} AS slow_mode,
                  NOT ${targetGapKeptSql('t')} AS gap,
                  COALESCE(${groupPostsTodaySql('t')}, ${GROUP_DAILY_POST_LIMIT}) >= ${GROUP_DAILY_POST_LIMIT} AS group_full
             FROM targets t
            WHERE t.assigned_account_id = a.id AND t.status = 'joined' AND t.niche = ANY(CAST(:niches AS text[]))
              AND ${targetNextPostAtSql('t')} IS NOT NULL
            ORDER BY 2, ${READY_ORDER_SQL('t')}
            LIMIT 1) g
     ), joins AS (
       SELECT a.id AS account_id, a.session_name, 'join' AS kind, q.link,
              GREATEST(CAST(:now AS timestamp), a.next_allowed_action_time, q.join_retry_at, jb.too_many_until, jb.spaced_until,
                       CASE WHEN jb.today >= ${accountJoinBudgetSql('a')} THEN ${TOMORROW_UTC_SQL} END) AS at,
              array_remove(ARRAY[
                CASE WHEN q.join_retry_at > CAST(:now AS timestamp) THEN 'its join retry time' END,
                CASE WHEN a.next_allowed_action_time > CAST(:now AS timestamp) THEN 'FloodWait' END,
                CASE WHEN jb.today >= ${accountJoinBudgetSql('a')} THEN 'the account''s joins of today made' END,
                CASE WHEN jb.too_many_until > CAST(:now AS timestamp) THEN 'too many chats' END,
                CASE WHEN jb.spaced_until > CAST(:now AS timestamp) THEN 'the spacing between two joins' END], NULL) AS waiting_for
         FROM drivable a
         CROSS JOIN LATERAL ${joinBudgetSql('a')} jb
         -- Its own claim (a join request to ask again, a lost answer) or the queue's first free
         -- group, whichever is due first; the claim wins a tie (claimJoinTarget's order).
         CROSS JOIN LATERAL (
           SELECT c.link, c.join_retry_at
             FROM ((SELECT t.link, t.join_retry_at, 0 AS rank, t.id
                      FROM targets t
                     WHERE t.join_claimed_by = a.id AND ${inJoinQueueSql('t')}
                     ORDER BY GREATEST(t.join_retry_at, CAST(:now AS timestamp)), t.id
                     LIMIT 1)
                   UNION ALL
                   SELECT f.link, f.join_retry_at, 1, f.id FROM free_group f) c
            ORDER BY GREATEST(c.join_retry_at, CAST(:now AS timestamp)), c.rank, c.id
            LIMIT 1) q
        WHERE CAST(:joinsPerDay AS integer) > 0
     )
     SELECT account_id, session_name, kind, link, at, waiting_for
       FROM (SELECT * FROM posts UNION ALL SELECT * FROM joins) x
      ORDER BY at, kind DESC, session_name
      LIMIT 1`,
    params,
  );
  const r = rows[0];
  if (!r) return null;
  const inMs = Math.max(0, r.at.getTime() - new Date(params.now).getTime());
  return {
    at: r.at.toISOString(),
    now: inMs === 0,
    inMs,
    account: r.session_name,
    accountId: r.account_id,
    kind: r.kind,
    target: r.link,
    waitingFor: inMs === 0 ? [] : r.waiting_for,
  };
}

/**
 * An account's next attempt and what it waits for, as ops ask "why no post": a person (its
 * settings, a login, API credentials), a daemon to drive it, Telegram (a FloodWait, a limit),
 * the posting hours, tomorrow's budgets, or its day's plan.
 */
export function nextAttemptOf(a: AccountStatusView, now: Date, settings: StatusSettings, postingHeld = false): { at: string | null; waitsFor: string } {
  const hours = settings.postingHours ?? DEFAULT_POSTING_HOURS;
  const zone = settings.timeZone ?? DEFAULT_TIME_ZONE;
  /** `instant`, or the opening of the posting hours after it when they are shut then. */
  const inHours = (instant: Date) => (inPostingWindow(instant, hours, zone) ? instant : new Date(postingWindowAt(instant, hours, zone).start));
  if (a.configProblem) return { at: null, waitsFor: 'its settings to be fixed (then lexus import)' };
  if (a.status === 'banned' || !a.hasSession) return { at: null, waitsFor: `a login (lexus login ${a.sessionName})` };
  if (!a.drivenBy) {
    // Where status runs, the daemon's credentials are not known; of an account no process drives, they are said.
    if (!a.ownCredentials && settings.globalCredentials === false) return { at: null, waitsFor: 'API credentials (TG_API_ID and TG_API_HASH) and a daemon' };
    return { at: null, waitsFor: 'a daemon: no process drives it' };
  }
  if (a.lastConnect?.outcome === 'misconfigured') return { at: null, waitsFor: 'its connection settings (the last connect was refused as misconfigured: lexus check)' };
  if (postingHeld) return { at: null, waitsFor: 'lexus repair counters (posting is held after a restore)' };
  if (a.floodWaitUntil) {
    const limited = a.limitedUntil !== null && a.limitedUntil >= a.floodWaitUntil;
    return { at: inHours(new Date(a.floodWaitUntil)).toISOString(), waitsFor: limited ? "Telegram's limit (PEER_FLOOD or a restriction)" : 'a FloodWait' };
  }
  if (!inPostingWindow(now, hours, zone)) return { at: inHours(now).toISOString(), waitsFor: 'the posting hours' };
  if (a.postsToday !== null && a.postsToday >= a.postsLimit && a.joinsToday >= a.joinsLimit) {
    const tomorrow = new Date(new Date(now).setUTCHours(24, 0, 0, 0));
    return { at: new Date(postingWindowAt(tomorrow, hours, zone).start).toISOString(), waitsFor: "tomorrow's budgets (20 posts and its joins are used)" };
  }
  if (a.groups.ready > 0 && (a.nextPostPlannedAt === null || new Date(a.nextPostPlannedAt) <= now)) return { at: now.toISOString(), waitsFor: 'nothing: it may post now' };
  if (a.nextPostPlannedAt) return { at: a.nextPostPlannedAt, waitsFor: 'its plan for the day (posts spread over the posting hours)' };
  return { at: null, waitsFor: 'a group to post in or to join' };
}

/** The next action, moved to the opening of the posting window when it falls outside it. */
export function inPostingHours(next: NextActionView | null, now: Date, hours: PostingHours, timeZone: string): NextActionView | null {
  if (!next || inPostingWindow(new Date(next.at), hours, timeZone)) return next;
  const at = postingWindowAt(new Date(next.at), hours, timeZone).start;
  const inMs = Math.max(0, at - now.getTime());
  return { ...next, at: new Date(at).toISOString(), now: false, inMs, waitingFor: [...next.waitingFor, 'the posting hours'] };
}

/** Rows closed as duplicates of a chat another row stands for, newest first. */
export async function loadDuplicates(db: Runner): Promise<DuplicateView[]> {
  const { rows } = await sql<{ link: string; status_reason: string | null }>(
    db,
    `SELECT link, status_reason FROM targets WHERE status = 'duplicate' ORDER BY updated_at DESC, id DESC LIMIT 20`,
  );
  return rows.map((r) => ({ link: r.link, reason: r.status_reason }));
}

/**
 * The whole status at `now`. `db` is a DataSource (the queries then share one read-only
 * REPEATABLE READ transaction) or a QueryRunner already in the caller's transaction.
 */
/** The queries' parameters for `now` and the daemon's settings. */
function statusParams(now: Date, settings: StatusSettings): Params {
  return {
    now: sqlTime(now),
    niches: settings.niches.length ? [...settings.niches] : [DEFAULT_NICHE],
    minGapMs: Math.max(0, Math.round(settings.groupMinGapMs)),
    joinsPerDay: Math.max(0, Math.floor(settings.joinsPerAccountPerDay)),
    ...paceParams({ rampUp: settings.rampUp ?? NO_RAMP_UP, postSpacingMs: settings.postSpacingMs ?? 0, joinSpacingMs: settings.joinSpacingMs ?? 0 }),
  };
}

/**
 * What the metrics need of the status: today's counted posts against the most the rules allow,
 * and when the next action is (in the posting hours), as lexus status computes them.
 */
export async function loadDayAtGlance(db: Runner, now: Date, settings: StatusSettings): Promise<{ postsToday: number; maxPostsToday: number; nextActionAt: Date | null }> {
  const params = statusParams(now, settings);
  const posts = await loadPostsToday(db, params);
  // A restore holds every post: nothing is in sight until the repair.
  const held = (await restoreHold(db)).held;
  const next = held ? null : inPostingHours(await loadNextAction(db, params), now, settings.postingHours ?? DEFAULT_POSTING_HOURS, settings.timeZone ?? DEFAULT_TIME_ZONE);
  return {
    postsToday: COUNTED_POST_STATUSES.reduce((n, status) => n + (posts.byStatus[status] ?? 0), 0),
    maxPostsToday: posts.maxPostsToday,
    nextActionAt: next ? new Date(next.at) : null,
  };
}

export async function loadStatus(db: Runner, now: Date, settings: StatusSettings): Promise<FleetStatus> {
  const params = statusParams(now, settings);
  const { niches } = params;
  const read = async (runner: Runner): Promise<FleetStatus> => {
    const hold = await restoreHold(runner);
    const accounts = (await loadAccountStatuses(runner, params)).map((a) => ({ ...a, next: nextAttemptOf(a, now, settings, hold.held) }));
    const nicheViews = await loadNicheStatuses(runner, params);
    const posts = await loadPostsToday(runner, params);
    const nextAction = hold.held ? null : inPostingHours(await loadNextAction(runner, params), now, settings.postingHours ?? DEFAULT_POSTING_HOURS, settings.timeZone ?? DEFAULT_TIME_ZONE);
    const duplicates = await loadDuplicates(runner);
    const accountsByStatus: Record<string, number> = {};
    for (const a of accounts) accountsByStatus[a.status] = (accountsByStatus[a.status] ?? 0) + 1;
    const targetsByStatus: Record<string, number> = Object.fromEntries(TARGET_STATUSES.map((s) => [s, 0]));
    for (const n of nicheViews) for (const [s, c] of Object.entries(n.byStatus)) targetsByStatus[s] = (targetsByStatus[s] ?? 0) + c;
    return {
      now: now.toISOString(),
      settings: {
        niches, joinsPerAccountPerDay: params.joinsPerDay, groupMinGapMs: params.minGapMs,
        postingHours: settings.postingHours ?? DEFAULT_POSTING_HOURS, timeZone: settings.timeZone ?? DEFAULT_TIME_ZONE,
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
  if ('release' in db) return read(db);
  const runner = db.createQueryRunner();
  await runner.connect();
  try {
    await runner.startTransaction('REPEATABLE READ');
    try {
      await sql(runner, 'SET TRANSACTION READ ONLY');
      const status = await read(runner);
      await runner.commitTransaction();
      return status;
    } catch (error) {
      await runner.rollbackTransaction();
      throw error;
    }
  } finally {
    await runner.release();
  }
}

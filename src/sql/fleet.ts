/** Fleet views: counts and states of the whole fleet, for the start-up log, lexus status, lexus check and the metrics. */
import type { DataSource } from 'typeorm';
import type { DaemonSettings } from '../config';
import type { GroupHoldKind } from '../db/entities';
import { sqlTime } from '../db/postgresTypes';
import type { StatusSettings } from '../status/loadStatus';
import {
  ACCOUNT_DAILY_POST_LIMIT,
  accountDaysInFleetSql,
  accountDrivableSql,
  accountJoinBudgetSql,
  accountMayPostSql,
  accountNextJoinAtSql,
  accountNextPostAtSql,
  accountPostBudgetSql,
  accountPostsTodaySql,
  accountServedGroupSql,
  DEFAULT_NICHE,
  FIRST_FREE_JOIN_SQL,
  floodWaitOverSql,
  floodWaitUntilSql,
  GROUP_DAILY_POST_LIMIT,
  groupPostsTodaySql,
  joinBudgetSql,
  joinWaitsForSql,
  NO_RAMP_UP,
  nextJoinTargetSql,
  paceParams,
  postingNotHeldSql,
  READY_ORDER_SQL,
  TODAY_UTC_SQL,
  TOMORROW_UTC_SQL,
  targetGapKeptSql,
  targetHoldOverSql,
  targetMayReceivePostFromSql,
  targetNextPostAtSql,
  targetWarmupOverSql,
} from './rules';
import { type Runner, sql } from './sql';

export interface FleetSummary {
  accountCount: number;
  accountsByStatus: Record<string, number>;
  targetsByStatus: Record<string, number>;
}

/**
 * The one count of the fleet by status: accounts by status, targets by niche and status (a NULL
 * status is the column's default). The start-up log, lexus status, the metrics and the import's
 * report all count from it.
 */
export const FLEET_BY_STATUS_SQL = `SELECT 'account' AS kind, COALESCE(status, 'active') AS status, NULL AS niche, count(*)::int AS n FROM accounts GROUP BY 2
     UNION ALL
     SELECT 'target', COALESCE(status, 'new'), niche, count(*)::int FROM targets GROUP BY 2, 3`;

export interface FleetByStatusRow {
  kind: 'account' | 'target';
  status: string;
  niche: string | null;
  n: number;
}

/** FLEET_BY_STATUS_SQL's rows. */
export async function countFleetByStatus(db: Runner): Promise<FleetByStatusRow[]> {
  return (await sql<FleetByStatusRow>(db, FLEET_BY_STATUS_SQL)).rows;
}

/** Accounts and targets by status, for the start-up log line. */
export async function summarizeFleet(dataSource: DataSource): Promise<FleetSummary> {
  const summary: FleetSummary = { accountCount: 0, accountsByStatus: {}, targetsByStatus: {} };
  for (const row of await countFleetByStatus(dataSource)) {
    if (row.kind === 'account') {
      summary.accountsByStatus[row.status] = row.n;
      summary.accountCount += row.n;
    } else {
      summary.targetsByStatus[row.status] = (summary.targetsByStatus[row.status] ?? 0) + row.n;
    }
  }
  return summary;
}

/** The target statuses always shown, in this order; any other status found is shown after them. */
export const TARGET_STATUSES = ['new', 'requested', 'joined', 'error', 'banned'] as const;

/**
 * An account's bound groups, each in exactly one state:
 * - warming: joined, its 24 h warm-up not over (rule 2);
 * - ready: may receive a post from its account now (rules 1-4, no hold, the daemon's gap, a
 *   niche the daemon serves);
 * - waiting: warmed up, not ready, today's 2 posts not made: the gap after its last post, a
 *   hold (slow mode, failures, a refused message), its account's FloodWait, 20 posts, ban or missing session, or a niche the daemon
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
  /**
   * It needs a login (lexus login): its session is dead (status 'banned', the seed's value for it;
   * statusReason says what Telegram answered), or it has none.
   */
  needsLogin: boolean;
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

export interface DuplicateView {
  link: string;
  /** Why: "the same chat as @x (target #n)". */
  reason: string | null;
}

export interface FleetParams extends ReturnType<typeof paceParams> {
  [name: string]: unknown;
  now: string;
  niches: string[];
  minGapMs: number;
  joinsPerDay: number;
}

export const iso = (d: Date | null | undefined): string | null => (d ? d.toISOString() : null);

/** Bound groups by state, posts and joins of today, FloodWait and last action, per account. */
export async function loadAccountStatuses(db: Runner, params: FleetParams): Promise<AccountStatusView[]> {
  const { rows } = await sql<{
    id: number;
    session_name: string;
    status: string;
    status_reason: string | null;
    has_session: boolean;
    config_problem: string | null;
    own_credentials: boolean;
    driven_by: string | null;
    driven_until: Date | null;
    last_connect_at: Date | null;
    last_connect_outcome: string | null;
    posts_today: number | null;
    flood_wait_until: Date | null;
    joins_today: number;
    posts_budget: number;
    joins_budget: number;
    limited_since: Date | null;
    limited_until: Date | null;
    days_in_fleet: number | null;
    seasoned: boolean;
    next_post_planned_at: Date | null;
    warming: number;
    ready: number;
    waiting: number;
    done_for_today: number;
    closed: number;
    last_kind: 'post' | 'join' | null;
    last_outcome: string | null;
    last_link: string | null;
    last_at: Date | null;
  }>(
    db,
    `SELECT a.id, a.session_name, COALESCE(a.status, 'active') AS status, a.status_reason,
            a.session_string IS NOT NULL AS has_session, a.config_problem,
            (a.api_id IS NOT NULL AND a.api_hash IS NOT NULL) AS own_credentials,
            CASE WHEN a.driven_until > CAST(:now AS timestamp) THEN a.driven_by END AS driven_by,
            CASE WHEN a.driven_until > CAST(:now AS timestamp) THEN a.driven_until END AS driven_until,
            a.last_connect_at, a.last_connect_outcome,
            ${accountPostsTodaySql('a')} AS posts_today,
            ${floodWaitUntilSql('a')} AS flood_wait_until,
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
    needsLogin: r.status === 'banned' || !r.has_session,
    configProblem: r.config_problem,
    ownCredentials: r.own_credentials,
    drivenBy: r.driven_by === null ? null : r.driven_by.split(':').slice(0, 2).join(':'),
    drivenUntil: iso(r.driven_until),
    lastConnect:
      r.last_connect_at && r.last_connect_outcome
        ? { outcome: r.last_connect_outcome, at: r.last_connect_at.toISOString() }
        : null,
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
    groups: {
      warming: r.warming,
      ready: r.ready,
      waiting: r.waiting,
      doneForToday: r.done_for_today,
      closed: r.closed,
    },
    lastAction:
      r.last_kind && r.last_at
        ? { kind: r.last_kind, outcome: r.last_outcome ?? '', target: r.last_link, at: r.last_at.toISOString() }
        : null,
  }));
}

/** Targets by niche and status; the served niches are listed even when they have none. */
export async function loadNicheStatuses(db: Runner, params: FleetParams): Promise<NicheStatusView[]> {
  const rows = (await countFleetByStatus(db))
    .filter((r) => r.kind === 'target')
    .map((r) => ({ niche: r.niche ?? '', status: r.status, n: r.n }))
    .sort((x, y) =>
      x.niche < y.niche ? -1 : x.niche > y.niche ? 1 : x.status < y.status ? -1 : x.status > y.status ? 1 : 0,
    );
  const byNiche = new Map<string, NicheStatusView>();
  const view = (niche: string) => {
    let v = byNiche.get(niche);
    if (!v) {
      v = {
        niche,
        served: params.niches.includes(niche),
        byStatus: Object.fromEntries(TARGET_STATUSES.map((s) => [s, 0])),
        total: 0,
      };
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
 * today: per account a daemon can drive, the smaller of its post budget of the day (20, less while
 * it ramps up or recovers from a limit: accountPostBudgetSql) and 2 per joined group of a served
 * niche that is warmed up before the next UTC midnight (its warm-up over at the day's last instant
 * :dayEnd).
 */
export async function loadPostsToday(
  db: Runner,
  params: FleetParams,
): Promise<{ byStatus: Record<string, number>; maxPostsToday: number }> {
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
                  WHERE ${accountServedGroupSql('t', 'a')}
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

/** What lexus status calls each kind of group hold (targets.post_hold_kind; NULL: a hold of no known kind). */
export const GROUP_HOLD_LABELS: Record<GroupHoldKind, string> = {
  slow_mode: 'slow mode',
  failing: 'a hold after its posts failed',
  refuses_message: 'a hold after it refused our message',
  restriction: "a hold after an account's restriction",
};

const groupHoldLabelSql = (kind: string) =>
  `CASE ${kind} ${Object.entries(GROUP_HOLD_LABELS)
    .map(([k, label]) => `WHEN '${k}' THEN '${label.replace(/'/g, "''")}'`)
    .join(' ')} ELSE 'a hold' END`;

/**
 * The earliest action any account may take, and what it is. Per account that may act (not
 * banned, with a session): its next post, at the latest of the rules' next-post instants of its
 * group (targetNextPostAtSql: warm-up, a hold, gap, the group's 2 posts) and of the account
 * (accountNextPostAtSql: FloodWait, its 20 posts); and its next join, as the daemon's join queue
 * sees it (nextChanceAt, claimJoinTarget): a group of a served niche nobody else claimed, after
 * its retry time, the account's FloodWait, its join budget of the day and a "too many chats"
 * answer of the last 24 h. A post wins a tie. The posting hours are inPostingHours'.
 */
export async function loadNextAction(db: Runner, params: FleetParams): Promise<NextActionView | null> {
  const { rows } = await sql<{
    account_id: number;
    session_name: string;
    kind: 'post' | 'join';
    link: string;
    at: Date;
    waiting_for: string[];
  }>(
    db,
    `WITH drivable AS MATERIALIZED (
       SELECT a.* FROM accounts a
        WHERE ${accountDrivableSql('a')}
     ), free_group AS MATERIALIZED ${FIRST_FREE_JOIN_SQL}
     , posts AS (
       SELECT a.id AS account_id, a.session_name, 'post' AS kind, g.link,
              GREATEST(g.at, ${accountNextPostAtSql('a')}, CAST(:now AS timestamp)) AS at,
              array_remove(ARRAY[
                CASE WHEN g.warming THEN 'warm-up' END,
                CASE WHEN g.held THEN ${groupHoldLabelSql('g.hold_kind')} END,
                CASE WHEN g.gap THEN 'gap since its last post' END,
                CASE WHEN g.group_full THEN 'its 2 posts of today made' END,
                CASE WHEN NOT ${floodWaitOverSql('a')} THEN 'FloodWait' END,
                CASE WHEN COALESCE(${accountPostsTodaySql('a')}, ${ACCOUNT_DAILY_POST_LIMIT}) >= ${accountPostBudgetSql('a')}
                     THEN 'the account''s ' || ${accountPostBudgetSql('a')} || ' posts of today made' END], NULL) AS waiting_for
         FROM drivable a
         CROSS JOIN LATERAL (
           SELECT t.link, ${targetNextPostAtSql('t')} AS at,
                  NOT COALESCE(${targetWarmupOverSql('t')}, false) AS warming,
                  NOT ${targetHoldOverSql('t')} AS held, t.post_hold_kind AS hold_kind,
                  NOT ${targetGapKeptSql('t')} AS gap,
                  COALESCE(${groupPostsTodaySql('t')}, ${GROUP_DAILY_POST_LIMIT}) >= ${GROUP_DAILY_POST_LIMIT} AS group_full
             FROM targets t
            WHERE ${accountServedGroupSql('t', 'a')}
              AND ${targetNextPostAtSql('t')} IS NOT NULL
            ORDER BY 2, ${READY_ORDER_SQL('t')}
            LIMIT 1) g
     ), joins AS (
       -- The join policy (rules.ts): the account's next group, and when it may join it.
       SELECT a.id AS account_id, a.session_name, 'join' AS kind, q.link,
              ${accountNextJoinAtSql('a', 'jb', 'q.join_retry_at')} AS at,
              ${joinWaitsForSql('a', 'jb', 'q.join_retry_at')} AS waiting_for
         FROM drivable a
         CROSS JOIN LATERAL ${joinBudgetSql('a')} jb
         CROSS JOIN LATERAL ${nextJoinTargetSql('a', 'free_group')} q
        -- LEXUS_JOINS_PER_DAY=0: the daemon joins nothing, and status shows no join.
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

/** Rows closed as duplicates of a chat another row stands for, newest first. */
export async function loadDuplicates(db: Runner): Promise<DuplicateView[]> {
  const { rows } = await sql<{ link: string; status_reason: string | null }>(
    db,
    `SELECT link, status_reason FROM targets WHERE status = 'duplicate' ORDER BY updated_at DESC, id DESC LIMIT 20`,
  );
  return rows.map((r) => ({ link: r.link, reason: r.status_reason }));
}

/** The queries' parameters for `now` and the daemon's settings. */
export function statusParams(now: Date, settings: StatusSettings): FleetParams {
  return {
    now: sqlTime(now),
    niches: settings.niches.length ? [...settings.niches] : [DEFAULT_NICHE],
    minGapMs: Math.max(0, Math.round(settings.groupMinGapMs)),
    joinsPerDay: Math.max(0, Math.floor(settings.joinsPerAccountPerDay)),
    ...paceParams({
      rampUp: settings.rampUp ?? NO_RAMP_UP,
      postSpacingMs: settings.postSpacingMs ?? 0,
      joinSpacingMs: settings.joinSpacingMs ?? 0,
    }),
  };
}

/**
 * Runs `read` in one read-only REPEATABLE READ transaction, so that the numbers of one view agree
 * with each other; a QueryRunner already in the caller's transaction is used as it is.
 */
export async function inFleetSnapshot<T>(db: Runner, read: (runner: Runner) => Promise<T>): Promise<T> {
  if ('release' in db) return read(db);
  const runner = db.createQueryRunner();
  await runner.connect();
  try {
    await runner.startTransaction('REPEATABLE READ');
    try {
      await sql(runner, 'SET TRANSACTION READ ONLY');
      const result = await read(runner);
      await runner.commitTransaction();
      return result;
    } catch (error) {
      await runner.rollbackTransaction();
      throw error;
    }
  } finally {
    await runner.release();
  }
}

export interface FleetRow {
  kind: 'account' | 'target' | 'pending' | 'last_post' | 'driven' | 'drivable' | 'held' | 'overdue';
  status: string | null;
  niche: string | null;
  n: number | null;
  at: Date | null;
}

/**
 * One statement for the counts: accounts by status, targets by niche and status, accounts that
 * can be driven and those driven under a live lease, pending post slots, the last successful post,
 * whether a restore holds posting, and the accounts whose planned post is `overdueMs` late
 * although they may post now to a ready group (driven, no FloodWait, a group that takes a post).
 */
export async function loadFleetCounts(
  ds: DataSource,
  now: Date,
  settings: DaemonSettings,
  overdueMs: number,
): Promise<FleetRow[]> {
  const { rows } = await sql<FleetRow>(
    ds,
    `SELECT f.kind, f.status, f.niche, f.n, NULL::timestamp AS at FROM (${FLEET_BY_STATUS_SQL}) f
     UNION ALL
     SELECT 'drivable', NULL, NULL, count(*)::int, NULL FROM accounts a WHERE ${accountDrivableSql('a')}
     UNION ALL
     SELECT 'driven', NULL, NULL, count(*)::int, NULL FROM accounts a WHERE ${accountDrivableSql('a')} AND a.driven_until > CAST(:now AS timestamp)
     UNION ALL
     SELECT 'pending', NULL, NULL, count(*)::int, NULL FROM post_history WHERE status = 'pending'
     UNION ALL
     SELECT 'last_post', NULL, NULL, NULL, max(created_at) FROM post_history WHERE status = 'success'
     UNION ALL
     SELECT 'held', NULL, NULL, CASE WHEN ${postingNotHeldSql} THEN 0 ELSE 1 END, NULL
     UNION ALL
     SELECT 'overdue', NULL, NULL, count(*)::int, NULL FROM accounts a
      WHERE ${accountDrivableSql('a')} AND a.driven_until > CAST(:now AS timestamp)
        AND a.next_post_planned_at < CAST(:now AS timestamp) - CAST(:overdueMs AS integer) * interval '1 millisecond'
        AND ${accountMayPostSql('a')}
        AND EXISTS (SELECT 1 FROM targets t WHERE ${targetMayReceivePostFromSql('t', 'a')} AND ${targetGapKeptSql('t')} AND t.niche = ANY(CAST(:niches AS text[])))`,
    {
      now: sqlTime(now),
      overdueMs,
      niches: settings.niches,
      minGapMs: Math.round(settings.groupMinGapMs),
      ...paceParams(settings),
    },
  );
  return rows;
}

/** Accounts a daemon can drive, and those of them a process drives now (a live lease). */
export async function countDrivenAccounts(db: Runner, now: Date): Promise<{ drivable: number; driven: number }> {
  const { rows } = await sql<{ drivable: number; driven: number }>(
    db,
    `SELECT count(*)::int AS drivable, count(*) FILTER (WHERE a.driven_until > CAST(:now AS timestamp))::int AS driven
       FROM accounts a WHERE ${accountDrivableSql('a')}`,
    { now: sqlTime(now) },
  );
  return rows[0] ?? { drivable: 0, driven: 0 };
}

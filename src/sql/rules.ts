/**
 * The rules of SPEC.md, in one place. Every query that decides whether an account may act or
 * a group may receive a post is built from the predicates below, and every predicate takes
 * "now" as the named parameter `:now` (a UTC instant from the Clock), never the database's
 * now(). Table aliases are passed in, so the same text serves every query.
 *
 *   Rule 1  strict binding      targetMayReceivePostFrom: t.assigned_account_id = a.id
 *                               (and the migration's trigger forbids rebinding)
 *   Rule 2  warm-up             targetWarmupOver: joined_at + 24 h <= now
 *   Rule 3  limits              GROUP_DAILY_POST_LIMIT, ACCOUNT_DAILY_POST_LIMIT, counted per UTC
 *                               day; a counter last reset before today's UTC midnight counts as 0
 *   Rule 4  FloodWait           accountMayAct: next_allowed_action_time <= now
 */
import { HOUR_MS, MINUTE_MS } from '../clock';

export const DEFAULT_NICHE = 'ukraine_cars';
/** Rule 3: posts per group per UTC day. */
export const GROUP_DAILY_POST_LIMIT = 2;
/** Rule 3: posts per account per UTC day. */
export const ACCOUNT_DAILY_POST_LIMIT = 20;
/** Rule 2: silence after joining a group. */
export const WARMUP_HOURS = 24;
export const WARMUP_MS = WARMUP_HOURS * HOUR_MS;

/**
 * The post_history statuses that count as posts (rule 3, and rule 1's "posted there"): sent, maybe
 * sent, or reserved and about to be.
 */
export const COUNTED_POST_STATUSES = ['success', 'unknown', 'pending'] as const;
export const COUNTED_POST_STATUSES_SQL = `(${COUNTED_POST_STATUSES.map((s) => `'${s}'`).join(', ')})`;

/** The post_history statuses of a post that may have reached its group: sent, or maybe sent (not a reservation). */
export const SENT_POST_STATUSES_SQL = `('success', 'unknown')`;

/**
 * Rule 1: group `t` is held by an account of ours other than `account` (an SQL expression): bound
 * to one, joined (or posted to) by one before, claimed by another, or it refused us. Such a group
 * is never bound to `account`, and when two rows turn out to be one chat, the held one keeps it.
 */
export const targetHeldSql = (t: string, account: string) =>
  `(${t}.assigned_account_id IS NOT NULL OR ${t}.joined_at IS NOT NULL OR ${t}.status IN ('banned', 'joined')
    OR (${t}.join_claimed_by IS NOT NULL AND ${t}.join_claimed_by <> ${account})
    OR EXISTS (SELECT 1 FROM post_history h WHERE h.target_id = ${t}.id AND h.account_id <> ${account} AND h.status IN ${COUNTED_POST_STATUSES_SQL}))`;

/**
 * A join claim that never goes to another account: a join of the claiming account may have
 * happened (its answer was lost), or the group refused it and was reopened as its restriction.
 */
export const claimStaysSql = (t: string) => `(${t}.join_uncertain OR ${t}.reopened_at IS NOT NULL)`;

/** Start of the UTC day that contains :now, and of the day after, as SQL. */
export const TODAY_UTC_SQL = `date_trunc('day', CAST(:now AS timestamp))`;
export const TOMORROW_UTC_SQL = `(${TODAY_UTC_SQL} + interval '1 day')`;

/** The longest one post() call to Telegram may take (the gateway's one deadline for it). */
export const POST_CALL_DEADLINE_MS = MINUTE_MS;

/**
 * Rule 3, at midnight: a delivery is counted on the UTC day it lands. A post is reserved (and
 * counted) for :now's day only when it lands before that day ends even if sending takes as long
 * as it may: two post() calls (the photo, then the text alone in a group that takes no photos),
 * and a minute's margin for what happens between the reservation and the first call.
 */
export const SEND_DEADLINE_MS = 2 * POST_CALL_DEADLINE_MS + MINUTE_MS;
export const postLandsTodaySql = `(CAST(:now AS timestamp) + interval '${SEND_DEADLINE_MS / 1000} seconds' < ${TOMORROW_UTC_SQL})`;

/**
 * After Telegram limited an account (PEER_FLOOD, or an account-wide restriction), its daily
 * budgets grow back instead of returning at full rate into the same limit: half on the UTC day its
 * pause ends (limited_until), three quarters the day after, full from the next. 1 when never limited.
 */
const budgetShareSql = (a: string) =>
  `(CASE WHEN ${a}.limited_until IS NULL THEN 1.0
         ELSE LEAST(1.0, GREATEST(0.5, 0.5 + 0.25 * (CAST(${TODAY_UTC_SQL} AS date) - CAST(${a}.limited_until AS date)))) END)`;

/**
 * An account new to the fleet starts slowly (LEXUS_RAMP_UP_START, LEXUS_RAMP_UP_DAYS): the SQL
 * parameters :rampStartJoins, :rampStartPosts, :rampFlatDays, :rampFullDays (paceParams).
 */
export interface RampUp {
  startJoins: number;
  startPosts: number;
  flatDays: number;
  fullDays: number;
}

/** No ramp-up: full budgets from the first day (the seed's API, and tests that are not about it). */
export const NO_RAMP_UP: RampUp = { startJoins: 0, startPosts: 0, flatDays: 0, fullDays: 0 };

/**
 * The daemon's pace beside the limits: a new account's ramp-up, and the least time between two
 * posts (LEXUS_POST_SPACING_MIN) and between two joins (LEXUS_JOIN_SPACING_MIN) of one account.
 * Kept by the database, like the limits, so that no restart, takeover or plan that failed to read
 * can make an account go faster. The daemon's settings are one.
 */
export interface Pace {
  rampUp: RampUp;
  postSpacingMs: number;
  joinSpacingMs: number;
}

/** No pace: full budgets at once, posts and joins as soon as the limits allow (the seed's API). */
export const NO_PACE: Pace = { rampUp: NO_RAMP_UP, postSpacingMs: 0, joinSpacingMs: 0 };

/** The SQL parameters of a pace: :rampStartJoins, :rampStartPosts, :rampFlatDays, :rampFullDays, :postSpacingMs, :joinSpacingMs. */
export const paceParams = (pace: Pace) => ({
  rampStartJoins: pace.rampUp.startJoins,
  rampStartPosts: pace.rampUp.startPosts,
  rampFlatDays: pace.rampUp.flatDays,
  rampFullDays: pace.rampUp.fullDays,
  postSpacingMs: Math.max(0, Math.round(pace.postSpacingMs)),
  joinSpacingMs: Math.max(0, Math.round(pace.joinSpacingMs)),
});

/** Whole UTC days since account `a` was first driven (0 on that day, and for one never driven). */
export const accountDaysInFleetSql = (a: string) =>
  `(CAST(${TODAY_UTC_SQL} AS date) - CAST(COALESCE(${a}.first_driven_at, CAST(:now AS timestamp)) AS date))`;

/**
 * A budget growing from `start` (its first :rampFlatDays days in the fleet) to `full` (from day
 * :rampFullDays on), linearly in between; a seasoned account has `full` from the start.
 */
const rampedSql = (a: string, start: string, full: string) =>
  `(CASE WHEN ${a}.seasoned OR ${accountDaysInFleetSql(a)} >= CAST(:rampFullDays AS integer) THEN ${full}
         WHEN ${accountDaysInFleetSql(a)} < CAST(:rampFlatDays AS integer) THEN LEAST(CAST(${start} AS integer), ${full})
         ELSE LEAST(${full}, CAST(${start} AS integer) + (${full} - CAST(${start} AS integer)) * (${accountDaysInFleetSql(a)} - CAST(:rampFlatDays AS integer) + 1)
                                                        / (CAST(:rampFullDays AS integer) - CAST(:rampFlatDays AS integer) + 1)) END)`;

/** Rule 3, the recovery after a limit and the ramp-up: the posts account `a` may make today (at most 20). */
export const accountPostBudgetSql = (a: string) =>
  `LEAST(CAST(floor(${ACCOUNT_DAILY_POST_LIMIT} * ${budgetShareSql(a)}) AS integer), ${rampedSql(a, ':rampStartPosts', String(ACCOUNT_DAILY_POST_LIMIT))})`;

/** The joins account `a` may try today: LEXUS_JOINS_PER_DAY (:joinsPerDay), with the recovery and the ramp-up. */
export const accountJoinBudgetSql = (a: string) =>
  `LEAST(CAST(floor(CAST(:joinsPerDay AS integer) * ${budgetShareSql(a)}) AS integer), ${rampedSql(a, ':rampStartJoins', 'CAST(:joinsPerDay AS integer)')})`;

/**
 * Rule 3's counters are the seed's (count, last reset) pairs, read lazily: a counter last reset
 * before today's UTC midnight counts as 0, so nothing depends on the midnight job having run.
 * A counter reset on a *later* day than :now (another worker's clock is already past
 * midnight, or this one waited on a lock across it) says nothing about :now's day: it reads as
 * NULL, which no limit check passes.
 */
const postsTodaySql = (count: string, lastReset: string) =>
  `(CASE WHEN ${lastReset} >= ${TOMORROW_UTC_SQL} THEN NULL WHEN ${lastReset} >= ${TODAY_UTC_SQL} THEN COALESCE(${count}, 0) ELSE 0 END)`;

/** SET clause counting one more post on a counter, starting the day afresh if it is stale. */
const countOnePostSql = (count: string, lastReset: string) =>
  `${count} = CASE WHEN ${lastReset} >= ${TODAY_UTC_SQL} THEN COALESCE(${count}, 0) + 1 ELSE 1 END, ` +
  `${lastReset} = CASE WHEN ${lastReset} >= ${TODAY_UTC_SQL} THEN ${lastReset} ELSE CAST(:now AS timestamp) END`;

/** Rule 3: posts the account made today (NULL: unknown, see above). */
export const accountPostsTodaySql = (a: string) => postsTodaySql(`${a}.daily_posts_count`, `${a}.last_stats_reset`);

/** Rule 3: posts the group received today (NULL: unknown, see above). */
export const groupPostsTodaySql = (t: string) =>
  postsTodaySql(`${t}.daily_posts_in_group`, `${t}.last_group_stats_reset`);

/** SET clause for `UPDATE accounts`: one more post today. */
export const ACCOUNT_COUNT_ONE_POST_SQL = countOnePostSql('daily_posts_count', 'last_stats_reset');

/** SET clause for `UPDATE targets`: one more post today. */
export const GROUP_COUNT_ONE_POST_SQL = countOnePostSql('daily_posts_in_group', 'last_group_stats_reset');

/**
 * Account `a` is not banned: 'active', or in a FloodWait (which is not a ban). A NULL status is
 * the column's default, 'active'. 'banned' is a dead session (or an account Telegram deleted):
 * it needs a login (accounts.status_reason says why).
 */
export const accountNotBannedSql = (a: string) => `(COALESCE(${a}.status, 'active') IN ('active', 'flood_wait'))`;

/**
 * Rule 4, the FloodWait test: account `a`'s wait (a FloodWait, or a pause after Telegram limited
 * it) has run out at :now. A wait that has passed counts as over even before anyone clears the
 * 'flood_wait' status. `a` may be a table name (`accounts`) in a statement without aliases.
 */
export const floodWaitOverSql = (a: string) =>
  `(${a}.next_allowed_action_time IS NULL OR ${a}.next_allowed_action_time <= CAST(:now AS timestamp))`;

/** Rule 4: when account `a`'s wait ends, while it runs at :now; NULL when it has none. */
export const floodWaitUntilSql = (a: string) =>
  `(CASE WHEN NOT ${floodWaitOverSql(a)} THEN ${a}.next_allowed_action_time END)`;

/** Rule 4: the account may talk to Telegram now: not banned, and any FloodWait has run out. */
export const accountMayActSql = (a: string) => `(${accountNotBannedSql(a)} AND ${floodWaitOverSql(a)})`;

/**
 * The pace: account `a`'s last post (accounts.last_post_at, set by the reservation, and moved to
 * when it was sent by the settlement) was at least :postSpacingMs ago. Sends land at least the
 * spacing apart, so the default 20 min makes at most 3 in any clock hour.
 */
export const accountPostSpacedSql = (a: string) =>
  `(${a}.last_post_at IS NULL OR ${a}.last_post_at <= CAST(:now AS timestamp) - CAST(:postSpacingMs AS integer) * interval '1 millisecond')`;

/**
 * Rule 3 after a restore: the tables are not the ones this database knew (a dump was restored:
 * new tables, and rows that forget what Telegram received since the dump), so no post is
 * reserved until `lexus repair counters` takes them as known (the OpsState migration). It holds
 * when the guard's row is missing too: what cannot be vouched for is held.
 */
export const postingNotHeldSql = `EXISTS (SELECT 1 FROM lexus_restore_guard g WHERE g.restored_at IS NULL AND g.tables_oid = 'accounts'::regclass)`;

/** Rules 3 and 4 and the pace: the account may post now, and the post lands today (and no restore holds posting). */
export const accountMayPostSql = (a: string) =>
  `(${accountMayActSql(a)} AND ${accountPostsTodaySql(a)} < ${accountPostBudgetSql(a)} AND ${postLandsTodaySql} AND ${accountPostSpacedSql(a)} AND ${postingNotHeldSql})`;

/** Rule 2: when a warm-up that started at `joinedAt` (an SQL expression) ends: 24 h later. */
export const warmupEndSql = (joinedAt: string) => `(${joinedAt} + interval '${WARMUP_HOURS} hours')`;

/**
 * Rule 2: when group `t`'s warm-up ends: warmup_ends_at and joined_at + 24 h, the later of the
 * two, so that a row written by hand (or by the old system) with a short warm-up still waits the
 * full 24 hours. GREATEST ignores NULLs; a group with neither time has no end (NULL).
 */
export const targetWarmupEndsSql = (t: string) => `GREATEST(${t}.warmup_ends_at, ${warmupEndSql(`${t}.joined_at`)})`;

/** Rule 2: the warm-up is over (at :now, or at the instant parameter named `at`); a group with no warm-up end is never ready. */
export const targetWarmupOverSql = (t: string, at = 'now') =>
  `(${targetWarmupEndsSql(t)} <= CAST(:${at} AS timestamp))`;

/**
 * The group's hold has run out: Telegram's slow mode (SLOWMODE_WAIT), or a hold of the daemon's
 * after its posts failed or it refused our message (targets.post_hold_kind says which).
 */
export const targetHoldOverSql = (t: string) =>
  `(${t}.next_post_allowed_at IS NULL OR ${t}.next_post_allowed_at <= CAST(:now AS timestamp))`;

/** Rule 1: group `t` is joined and bound to account `a` (for good: the migration's trigger forbids rebinding). */
export const targetBoundToSql = (t: string, a: string) =>
  `(${t}.status = 'joined' AND ${t}.assigned_account_id = ${a}.id)`;

/** Group `t` is one account `a` posts in: bound to it, of a niche the daemon serves (:niches). */
export const accountServedGroupSql = (t: string, a: string) =>
  `(${targetBoundToSql(t, a)} AND ${t}.niche = ANY(CAST(:niches AS text[])))`;

/**
 * Rules 1-3 for the group: joined, bound to account `a`, warmed up, under its daily limit, and
 * out of any hold (a slow mode, failures, a refused message).
 */
export const targetMayReceivePostFromSql = (t: string, a: string) =>
  `(${targetBoundToSql(t, a)} AND ${targetWarmupOverSql(t)} AND ${groupPostsTodaySql(t)} < ${GROUP_DAILY_POST_LIMIT} AND ${targetHoldOverSql(t)})`;

/** The daemon's spacing (LEXUS_GROUP_MIN_GAP_HOURS): the group's last post is :minGapMs old. */
export const targetGapKeptSql = (t: string) =>
  `(${t}.last_post_at IS NULL OR ${t}.last_post_at <= CAST(:now AS timestamp) - CAST(:minGapMs AS integer) * interval '1 millisecond')`;

/**
 * When the group may next receive a post, whatever the account (rules 2 and 3, a hold and the
 * daemon's spacing): the latest of its warm-up's end, its hold's end, its last post plus
 * :minGapMs, and tomorrow's UTC midnight when today's posts are used up. NULL: never (no
 * warm-up start). For the daemon's idle sleep only; the reservation decides.
 */
export const targetNextPostAtSql = (t: string) =>
  `(CASE WHEN GREATEST(${t}.warmup_ends_at, ${t}.joined_at) IS NULL THEN NULL ELSE GREATEST(
      ${targetWarmupEndsSql(t)}, ${t}.next_post_allowed_at,
      ${t}.last_post_at + CAST(:minGapMs AS integer) * interval '1 millisecond',
      CASE WHEN COALESCE(${groupPostsTodaySql(t)}, ${GROUP_DAILY_POST_LIMIT}) >= ${GROUP_DAILY_POST_LIMIT} THEN ${TOMORROW_UTC_SQL} END) END)`;

/** When the account may next post, whatever the group (rules 3 and 4, the pace). NULL: no limit on it now. */
export const accountNextPostAtSql = (a: string) =>
  `GREATEST(${a}.next_allowed_action_time, ${a}.last_post_at + CAST(:postSpacingMs AS integer) * interval '1 millisecond',
      CASE WHEN COALESCE(${accountPostsTodaySql(a)}, ${ACCOUNT_DAILY_POST_LIMIT}) >= ${accountPostBudgetSql(a)} OR NOT ${postLandsTodaySql}
           THEN ${TOMORROW_UTC_SQL} END)`;

/** The order in which ready groups are served: never posted first, then the longest waiting. */
export const READY_ORDER_SQL = (t: string) => `${t}.last_post_at ASC NULLS FIRST, ${t}.id ASC`;

/** Account `a` is one a daemon drives: not banned (a FloodWait passes), with a session, its own settings usable. */
export const accountDrivableSql = (a: string) =>
  `(${accountNotBannedSql(a)} AND ${a}.session_string IS NOT NULL AND ${a}.config_problem IS NULL)`;

/** After Telegram says an account is in too many chats (CHANNELS_TOO_MUCH), it joins nothing for this long. */
export const TOO_MANY_CHATS_PAUSE_HOURS = 24;

/**
 * Account `a`'s join budget, as a subquery to join LATERAL: `today`, the joins it tried since
 * today's UTC midnight; `too_many_until`, 24 h after Telegram last said it is in too many chats
 * (it joins nothing before); `spaced_until`, :joinSpacingMs after its last join (or lookup) was
 * answered: the pace (rules.ts), kept across restarts and processes. The
 * daemon's claim, its idle sleep and `lexus status` read it.
 */
export const joinBudgetSql = (a: string) =>
  `(SELECT count(*) FILTER (WHERE h.created_at >= ${TODAY_UTC_SQL})::int AS today,
           max(h.created_at) FILTER (WHERE h.outcome = 'too_many_channels') + interval '${TOO_MANY_CHATS_PAUSE_HOURS} hours' AS too_many_until,
           max(h.created_at) + CAST(:joinSpacingMs AS integer) * interval '1 millisecond' AS spaced_until,
           max(h.created_at) AS last_at
      FROM join_history h WHERE h.account_id = ${a}.id)`;

/**
 * Group `t` waits to be joined: new, or a join request waits for an admin; bound to no account
 * and never joined by one. Only such a group is claimed for a join (the queue, inJoinQueueSql).
 */
export const targetAwaitsJoinSql = (t: string) => `(${targetOpenUnboundSql(t)} AND ${t}.joined_at IS NULL)`;

/**
 * Group `t` is open and bound to no account: new, or a join request waits for an admin. A join
 * claim on such a group is still only a claim: a banned account's claims go back to the queue,
 * a process taking an account over finds its last claim here.
 */
export const targetOpenUnboundSql = (t: string) =>
  `(${t}.status IN ('new', 'requested') AND ${t}.assigned_account_id IS NULL)`;

/**
 * Rule 1 at the bind: group `t` may be bound to `account` (an SQL expression for its id): it is
 * not closed (banned us, or a second row of a chat), and it is bound to that account already or
 * held by no other account of ours (targetHeldSql).
 */
export const targetFreeToBindSql = (t: string, account: string) =>
  `(${t}.status IS DISTINCT FROM 'banned' AND ${t}.status IS DISTINCT FROM 'duplicate'
    AND (${t}.assigned_account_id = ${account} OR NOT ${targetHeldSql(t, account)}))`;

/*
 * The join policy: who may join what next, and when. The daemon's claim (joining.ts
 * claimJoinTarget), its idle sleep (posting.ts nextChances) and `lexus status` (fleet.ts
 * loadNextAction) read these definitions, and only these.
 *
 *   the queue      inJoinQueueSql: a group of the served niches (:niches) that awaits a join
 *   due            joinDueSql: its retry time (a request to ask again, a failure) has come
 *   what next      nextJoinTargetSql: the account's own claim (a lost answer, a request to ask
 *                  again) first, else the queue's first group nobody claimed; the earliest due
 *                  wins, the own claim on a tie, then the lower id (the claim's order)
 *   the account    joinBudgetSql / accountJoinAllowedSql: under its joins of the day, no "too many
 *                  chats" in the last 24 h, the spacing since its last join kept; and rule 4
 *   how many       accountJoinsLeftTodaySql: what the day's plan spreads
 *   when           accountNextJoinAtSql: the latest of all of these
 */

/** The join queue: group `t` is of the niches :niches and awaits a join. */
export const inJoinQueueSql = (t: string) =>
  `(${targetAwaitsJoinSql(t)} AND ${t}.niche = ANY(CAST(:niches AS text[])))`;

/** The join policy: group `t`'s retry time has come (or it has none). */
export const joinDueSql = (t: string) =>
  `(${t}.join_retry_at IS NULL OR ${t}.join_retry_at <= CAST(:now AS timestamp))`;

/**
 * The join policy, what next: the queue's first group nobody claimed, as a subquery (id, link,
 * join_retry_at): the first due (by id), else the first to be due. The same for every account,
 * so a view of the whole fleet computes it once (a MATERIALIZED CTE) and passes its name to
 * nextJoinTargetSql.
 */
export const FIRST_FREE_JOIN_SQL = `(SELECT f.id, f.link, f.join_retry_at FROM (
         (SELECT t.id, t.link, t.join_retry_at FROM targets t
           WHERE t.join_claimed_by IS NULL AND ${inJoinQueueSql('t')} AND ${joinDueSql('t')}
           ORDER BY t.id LIMIT 1)
         UNION ALL
         (SELECT t.id, t.link, t.join_retry_at FROM targets t
           WHERE t.join_claimed_by IS NULL AND ${inJoinQueueSql('t')} AND t.join_retry_at > CAST(:now AS timestamp)
           ORDER BY t.join_retry_at, t.id LIMIT 1)) f
        ORDER BY GREATEST(f.join_retry_at, CAST(:now AS timestamp)), f.id
        LIMIT 1)`;

/**
 * The join policy, what next for account `a`, as a subquery to join LATERAL (link,
 * join_retry_at): its own claim due first, or `firstFree` (FIRST_FREE_JOIN_SQL, or the name of
 * a CTE holding it), whichever is due first; its own claim wins a tie (claimJoinTarget's order).
 */
export const nextJoinTargetSql = (a: string, firstFree: string = FIRST_FREE_JOIN_SQL) =>
  `(SELECT c.link, c.join_retry_at
      FROM ((SELECT t.link, t.join_retry_at, 0 AS rank, t.id
               FROM targets t
              WHERE t.join_claimed_by = ${a}.id AND ${inJoinQueueSql('t')}
              ORDER BY GREATEST(t.join_retry_at, CAST(:now AS timestamp)), t.id
              LIMIT 1)
            UNION ALL
            SELECT ff.link, ff.join_retry_at, 1, ff.id FROM ${firstFree} ff) c
     ORDER BY GREATEST(c.join_retry_at, CAST(:now AS timestamp)), c.rank, c.id
     LIMIT 1)`;

/**
 * The join policy, the account's side: account `a` (with `jb`, its joinBudgetSql joined LATERAL)
 * may try a join now as far as its budget goes: under its joins of the day, not told "too many
 * chats" in the last 24 h, its last join the spacing ago.
 */
export const accountJoinAllowedSql = (a: string, jb: string) =>
  `(${jb}.today < ${accountJoinBudgetSql(a)} AND COALESCE(${jb}.too_many_until <= CAST(:now AS timestamp), true)
    AND COALESCE(${jb}.spaced_until <= CAST(:now AS timestamp), true))`;

/**
 * The join policy, how many: the joins account `a` (with `jb`, its joinBudgetSql) may still try
 * today: what is left of its budget, none while it is in too many chats.
 */
export const accountJoinsLeftTodaySql = (a: string, jb: string) =>
  `(CASE WHEN ${jb}.too_many_until > CAST(:now AS timestamp) THEN 0 ELSE GREATEST(0, ${accountJoinBudgetSql(a)} - ${jb}.today) END)`;

/**
 * The join policy, when: the earliest instant account `a` (with `jb`, its joinBudgetSql) may try
 * a join of a group due at `dueAt` (an SQL expression; NULL: due now): the latest of now, its
 * FloodWait's end, `dueAt`, the end of a "too many chats" day, the spacing, and tomorrow's UTC
 * midnight when its joins of today are made.
 */
export const accountNextJoinAtSql = (a: string, jb: string, dueAt: string) =>
  `GREATEST(CAST(:now AS timestamp), ${a}.next_allowed_action_time, ${dueAt}, ${jb}.too_many_until, ${jb}.spaced_until,
            CASE WHEN ${jb}.today >= ${accountJoinBudgetSql(a)} THEN ${TOMORROW_UTC_SQL} END)`;

/**
 * The join policy, what waits, for `lexus status`: the reasons account `a` (with `jb`) cannot
 * join a group due at `dueAt` now, as an SQL text array (empty: nothing waits).
 */
export const joinWaitsForSql = (a: string, jb: string, dueAt: string) =>
  `array_remove(ARRAY[
      CASE WHEN ${dueAt} > CAST(:now AS timestamp) THEN 'its join retry time' END,
      CASE WHEN NOT ${floodWaitOverSql(a)} THEN 'FloodWait' END,
      CASE WHEN ${jb}.today >= ${accountJoinBudgetSql(a)} THEN 'the account''s joins of today made' END,
      CASE WHEN ${jb}.too_many_until > CAST(:now AS timestamp) THEN 'too many chats' END,
      CASE WHEN ${jb}.spaced_until > CAST(:now AS timestamp) THEN 'the spacing between two joins' END], NULL)`;

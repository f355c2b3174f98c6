/**
 * The daemon's Prometheus metrics (prom-client), served at GET /metrics.
 *
 * Counters are this process's own (what its actions met since it started): posts, joins and
 * connects by outcome, FloodWaits; every known outcome is there from the start, at 0, so that
 * `increase()` and `== 0` alerts see a series before the first event. Gauges are read from the
 * database at each scrape, so every replica shows the fleet as it is (use max() across
 * replicas): accounts and targets by status (every known status at 0 too), accounts driven,
 * reserved-but-unsettled post slots, the last successful post, today's posts against the most the
 * rules allow, the next action. A scrape while the database is away still answers, with
 * lexus_database_up 0 and the last values read. This process's own state: its loop's lag, its
 * oldest action, whether the posting window is open, its version.
 */
import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import type { DataSource } from 'typeorm';
import type { Clock } from '../clock';
import type { DaemonSettings } from '../config';
import { inPostingWindow } from '../daemon/postingWindow';
import { withDeadline } from '../deadline';
import { type FleetRow, loadFleetCounts, TARGET_STATUSES } from '../sql/fleet';
import { loadDayAtGlance } from '../status/loadStatus';
import { CONNECT_OUTCOME_KINDS, JOIN_OUTCOME_KINDS, POST_OUTCOME_KINDS } from '../telegram/outcomes';
import { VERSION } from '../version';
import type { Progress } from './liveness';

/** What the daemon reports as it acts (DaemonDeps.observer). */
export interface DaemonObserver {
  /** Telegram's answer to a connect (its getMe): 'connected', 'session_dead', 'account_flood_wait', ... */
  connectOutcome(kind: string): void;
  /** Telegram's answer to a post (the outcome kinds of outcomes.ts: 'sent', 'account_flood_wait', ...). */
  postOutcome(kind: string): void;
  joinOutcome(kind: string): void;
  /** A FloodWait was stored for an account. */
  floodWait(): void;
}

/** How the scrape and the health checks see the daemon (before it exists: no round yet, nothing running). */
export interface LoopView {
  /** When the last scheduling round ran; undefined before the first. */
  lastTickAt: Date | undefined;
  /** How long its oldest action and its round in progress have been running. */
  progress(): Progress;
}

/** Since when the loop has not run: its last round, else the process's start. */
export function loopLagMs(loop: Pick<LoopView, 'lastTickAt'>, startedAt: Date, now: Date): number {
  return Math.max(0, now.getTime() - (loop.lastTickAt ?? startedAt).getTime());
}

/** The account statuses always shown (the seed's). */
export const ACCOUNT_STATUSES = ['active', 'flood_wait', 'banned'] as const;
/** The target statuses always shown, per niche served: lexus status's, and rows closed as duplicates. */
const METRIC_TARGET_STATUSES = [...TARGET_STATUSES, 'duplicate'] as const;

interface Day {
  postsToday: number;
  maxPostsToday: number;
  nextActionAt: Date | null;
}

/** A planned post this late, while the account could make it, is one the daemon is not making. */
export const POST_OVERDUE_MS = 30 * 60_000;

/** How long a scrape or a health check waits for the database before calling it down. */
export const DATABASE_DEADLINE_MS = 3000;
/** The day's figures are read again at most this often. */
const DAY_FIGURES_EVERY_MS = 60_000;

export { withDeadline } from '../deadline';

export interface Metrics {
  registry: Registry;
  observer: DaemonObserver;
}

export interface MetricsOptions {
  /** One of its own (a connection or two, with a statement timeout): a slow scrape must never take the daemon's connections. */
  dataSource: DataSource;
  loop: LoopView;
  clock: Clock;
  startedAt: Date;
  settings: DaemonSettings;
}

export function createMetrics(options: MetricsOptions): Metrics {
  const { settings, clock } = options;
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const counter = (name: string, help: string, outcomes: readonly string[]) => {
    const c = new Counter({ name, help, labelNames: ['outcome'], registers: [registry] });
    for (const outcome of outcomes) c.inc({ outcome }, 0);
    return c;
  };
  const posts = counter(
    'lexus_posts_total',
    "Telegram's answers to this process's posts, by outcome (sent, account_flood_wait, group_refuses, ...)",
    POST_OUTCOME_KINDS,
  );
  const joins = counter(
    'lexus_joins_total',
    "Telegram's answers to this process's joins, by outcome (joined, join_request_pending, link_dead, ...)",
    JOIN_OUTCOME_KINDS,
  );
  const connects = counter(
    'lexus_connects_total',
    "Telegram's answers to this process's connects (getMe), by outcome (connected, session_dead, account_flood_wait, ...)",
    CONNECT_OUTCOME_KINDS,
  );
  const floodWaits = new Counter({
    name: 'lexus_flood_waits_total',
    help: "FloodWaits Telegram gave this process's accounts",
    registers: [registry],
  });

  // The database gauges are filled by one read per scrape, shared by all of them; the day's
  // figures (today's posts, the allowance, the next action: heavier) at most once a minute, and
  // a slow read of them leaves their last values without calling the database down.
  let scrape: Promise<FleetRow[] | undefined> | undefined;
  const fleet = () =>
    (scrape ??= withDeadline(
      loadFleetCounts(options.dataSource, clock.now(), settings, POST_OVERDUE_MS),
      DATABASE_DEADLINE_MS,
    )
      .catch(() => undefined)
      .finally(() => setTimeout(() => (scrape = undefined), 0)));
  let day: Day | undefined;
  let dayReadAt = -Infinity;
  let dayRead: Promise<void> | undefined;
  const dayFigures = async (): Promise<Day | undefined> => {
    const now = clock.now().getTime();
    if (now - dayReadAt >= DAY_FIGURES_EVERY_MS) {
      dayRead ??= withDeadline(loadDayAtGlance(options.dataSource, clock.now(), settings), DATABASE_DEADLINE_MS)
        .then(
          (figures) => {
            day = figures;
            dayReadAt = now;
          },
          () => undefined,
        )
        .finally(() => (dayRead = undefined));
      await dayRead;
    }
    return day;
  };
  const fromDatabase = (
    name: string,
    help: string,
    labelNames: string[],
    fill: (gauge: Gauge<string>, rows: FleetRow[]) => void,
  ) =>
    new Gauge({
      name,
      help,
      labelNames,
      registers: [registry],
      async collect() {
        // Without the database the last values stay (lexus_database_up says it is away): a
        // blip must not look like "no post ever" or "no account".
        const rows = await fleet();
        if (!rows) return;
        fill(this, rows);
      },
    });
  const fromDay = (name: string, help: string, fill: (gauge: Gauge<string>, d: Day) => void) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      async collect() {
        const d = await dayFigures();
        if (d) fill(this, d);
      },
    });
  const count = (rows: FleetRow[], kind: FleetRow['kind']) => rows.find((r) => r.kind === kind)?.n ?? 0;

  new Gauge({
    name: 'lexus_database_up',
    help: '1 when the last scrape could read the database, else 0',
    registers: [registry],
    async collect() {
      this.set((await fleet()) ? 1 : 0);
    },
  });
  fromDatabase('lexus_accounts', 'Accounts by status (active, flood_wait, banned)', ['status'], (g, rows) => {
    const found = rows.filter((r) => r.kind === 'account');
    g.reset();
    for (const status of new Set<string>([...ACCOUNT_STATUSES, ...found.map((r) => r.status!)]))
      g.set({ status }, found.find((r) => r.status === status)?.n ?? 0);
  });
  fromDatabase(
    'lexus_targets',
    'Groups by niche and status (new, requested, joined, error, banned, duplicate)',
    ['niche', 'status'],
    (g, rows) => {
      const found = rows.filter((r) => r.kind === 'target');
      g.reset();
      for (const niche of settings.niches) for (const status of METRIC_TARGET_STATUSES) g.set({ niche, status }, 0);
      for (const r of found) g.set({ niche: r.niche!, status: r.status! }, r.n!);
    },
  );
  fromDatabase(
    'lexus_accounts_drivable',
    'Accounts a daemon can drive (not banned, with a session, usable settings)',
    [],
    (g, rows) => g.set(count(rows, 'drivable')),
  );
  fromDatabase(
    'lexus_accounts_driven',
    'Accounts some process drives now (a live lease), of those that can be driven',
    [],
    (g, rows) => g.set(count(rows, 'driven')),
  );
  fromDatabase(
    'lexus_post_slots_unsettled',
    "Posts reserved and not settled yet (post_history 'pending')",
    [],
    (g, rows) => g.set(count(rows, 'pending')),
  );
  fromDatabase(
    'lexus_last_post_success_timestamp_seconds',
    'When the last post Telegram accepted was recorded (Unix time; 0 before the first)',
    [],
    (g, rows) => {
      const at = rows.find((r) => r.kind === 'last_post')?.at;
      g.set(at ? at.getTime() / 1000 : 0);
    },
  );
  fromDatabase(
    'lexus_posting_held',
    '1 while no post is reserved after a restore from a dump, until lexus repair counters',
    [],
    (g, rows) => g.set(count(rows, 'held') > 0 ? 1 : 0),
  );
  fromDatabase(
    'lexus_accounts_post_overdue',
    `Accounts driven that may post now to a ready group and whose planned post is over ${POST_OVERDUE_MS / 60_000} min late: posts allowed, none made`,
    [],
    (g, rows) => g.set(count(rows, 'overdue')),
  );
  fromDay(
    'lexus_posts_today',
    'Posts counted today (since 00:00 UTC): sent, maybe sent, or reserved (read at most once a minute)',
    (g, d) => g.set(d.postsToday),
  );
  fromDay(
    'lexus_posts_allowed_today',
    'The most posts the rules allow today for the groups bound, as lexus status counts it (read at most once a minute)',
    (g, d) => g.set(d.maxPostsToday),
  );
  fromDay(
    'lexus_next_action_timestamp_seconds',
    'When the next post or join is due, in the posting hours (Unix time; 0: none in sight; read at most once a minute)',
    (g, d) => g.set(d.nextActionAt ? d.nextActionAt.getTime() / 1000 : 0),
  );
  new Gauge({
    name: 'lexus_loop_lag_seconds',
    help: "Seconds since the daemon's last scheduling round (it runs every second), or since the start before the first",
    registers: [registry],
    collect() {
      this.set(loopLagMs(options.loop, options.startedAt, clock.now()) / 1000);
    },
  });
  new Gauge({
    name: 'lexus_action_oldest_age_seconds',
    help: 'How long the oldest action in flight of this process has been running (0: none)',
    registers: [registry],
    collect() {
      this.set(options.loop.progress().oldestActionMs / 1000);
    },
  });
  new Gauge({
    name: 'lexus_posting_window_open',
    help: '1 while the posting hours are open (LEXUS_POSTING_HOURS in LEXUS_TIMEZONE), else 0 (the quiet hours)',
    registers: [registry],
    collect() {
      this.set(inPostingWindow(clock.now(), settings.postingHours, settings.timeZone) ? 1 : 0);
    },
  });
  new Gauge({
    name: 'lexus_build_info',
    help: 'Always 1; its labels say which lexus runs',
    labelNames: ['version', 'node'],
    registers: [registry],
  }).set({ version: VERSION, node: process.versions.node }, 1);

  return {
    registry,
    observer: {
      connectOutcome: (kind) => connects.inc({ outcome: kind }),
      postOutcome: (kind) => posts.inc({ outcome: kind }),
      joinOutcome: (kind) => joins.inc({ outcome: kind }),
      floodWait: () => floodWaits.inc(),
    },
  };
}

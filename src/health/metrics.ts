/**
 * The daemon's Prometheus metrics (prom-client), served at GET /metrics.
 *
 * Counters are this process's own (what its actions met since it started): posts and joins by
 * outcome, FloodWaits. Gauges are read from the database at each scrape, so every replica shows
 * the fleet as it is: accounts and targets by status, reserved-but-unsettled post slots, the last
 * successful post. A scrape while the database is away still answers, with lexus_database_up 0.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { DataSource } from 'typeorm';
import type { Clock } from '../clock';
import { withDeadline } from '../deadline';
import { sql } from '../db/sql';

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

/** How the scrape sees the daemon's loop. */
export interface LoopView {
  /** When the last scheduling round ran; undefined before the first. */
  lastTickAt: Date | undefined;
}

/** Since when the loop has not run: its last round, else the process's start. */
export function loopLagMs(loop: LoopView, startedAt: Date, now: Date): number {
  return Math.max(0, now.getTime() - (loop.lastTickAt ?? startedAt).getTime());
}

interface FleetRow {
  kind: 'account' | 'target' | 'pending' | 'last_post';
  status: string | null;
  niche: string | null;
  n: number | null;
  at: Date | null;
}

/**
 * One statement for every database gauge: accounts by status, targets by niche and status,
 * pending post slots, and the time of the last successful post.
 */
async function readFleet(ds: DataSource): Promise<FleetRow[]> {
  const { rows } = await sql<FleetRow>(
    ds,
    `SELECT 'account' AS kind, COALESCE(status, 'active') AS status, NULL AS niche, count(*)::int AS n, NULL::timestamp AS at
       FROM accounts GROUP BY 2
     UNION ALL
     SELECT 'target', COALESCE(status, 'new'), niche, count(*)::int, NULL FROM targets GROUP BY 2, 3
     UNION ALL
     SELECT 'pending', NULL, NULL, count(*)::int, NULL FROM post_history WHERE status = 'pending'
     UNION ALL
     SELECT 'last_post', NULL, NULL, NULL, max(created_at) FROM post_history WHERE status = 'success'`,
  );
  return rows;
}

/** How long a scrape or a health check waits for the database before calling it down. */
export const DATABASE_DEADLINE_MS = 3000;

export { withDeadline } from '../deadline';

export interface Metrics {
  registry: Registry;
  observer: DaemonObserver;
}

/**
 * `dataSource` should be one of its own (a connection or two, with a statement timeout): a slow
 * scrape must never take the daemon's connections.
 */
export function createMetrics(options: { dataSource: DataSource; loop: LoopView; clock: Clock; startedAt: Date }): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const posts = new Counter({ name: 'lexus_posts_total', help: "Telegram's answers to this process's posts, by outcome (sent, account_flood_wait, group_refuses, ...)", labelNames: ['outcome'], registers: [registry] });
  const joins = new Counter({ name: 'lexus_joins_total', help: "Telegram's answers to this process's joins, by outcome (joined, join_request_pending, link_dead, ...)", labelNames: ['outcome'], registers: [registry] });
  const connects = new Counter({ name: 'lexus_connects_total', help: "Telegram's answers to this process's connects (getMe), by outcome (connected, session_dead, account_flood_wait, ...)", labelNames: ['outcome'], registers: [registry] });
  const floodWaits = new Counter({ name: 'lexus_flood_waits_total', help: 'FloodWaits Telegram gave this process\'s accounts', registers: [registry] });

  // The database gauges are filled by one query per scrape, shared by all of them.
  let scrape: Promise<FleetRow[] | undefined> | undefined;
  const fleet = () =>
    (scrape ??= withDeadline(readFleet(options.dataSource), DATABASE_DEADLINE_MS)
      .catch(() => undefined)
      .finally(() => setTimeout(() => (scrape = undefined), 0)));
  const fromDatabase = (name: string, help: string, labelNames: string[], fill: (gauge: Gauge<string>, rows: FleetRow[]) => void) =>
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
        this.reset();
        fill(this, rows);
      },
    });

  new Gauge({
    name: 'lexus_database_up',
    help: '1 when the last scrape could read the database, else 0',
    registers: [registry],
    async collect() {
      this.set((await fleet()) ? 1 : 0);
    },
  });
  fromDatabase('lexus_accounts', 'Accounts by status (active, flood_wait, banned)', ['status'], (g, rows) => {
    for (const r of rows) if (r.kind === 'account') g.set({ status: r.status! }, r.n!);
  });
  fromDatabase('lexus_targets', 'Groups by niche and status (new, requested, joined, error, banned)', ['niche', 'status'], (g, rows) => {
    for (const r of rows) if (r.kind === 'target') g.set({ niche: r.niche!, status: r.status! }, r.n!);
  });
  fromDatabase('lexus_post_slots_unsettled', "Posts reserved and not settled yet (post_history 'pending')", [], (g, rows) => {
    g.set(rows.find((r) => r.kind === 'pending')?.n ?? 0);
  });
  fromDatabase('lexus_last_post_success_timestamp_seconds', 'When the last post Telegram accepted was recorded (Unix time; 0 before the first)', [], (g, rows) => {
    const at = rows.find((r) => r.kind === 'last_post')?.at;
    g.set(at ? at.getTime() / 1000 : 0);
  });
  new Gauge({
    name: 'lexus_loop_lag_seconds',
    help: "Seconds since the daemon's last scheduling round (it runs every second), or since the start before the first",
    registers: [registry],
    collect() {
      this.set(loopLagMs(options.loop, options.startedAt, options.clock.now()) / 1000);
    },
  });

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

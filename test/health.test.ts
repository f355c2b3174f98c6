/**
 * The health and metrics listener over real HTTP: /livez (and /healthz) say whether the process
 * makes progress, /readyz whether the database answers and accounts are driven, /metrics counts
 * what the daemon met and reads the fleet from the database, including while the database is
 * stopped; and a real `lexus start` serves them on HEALTH_PORT.
 */
import path from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../src/clock';
import { createDataSource, runMigrations } from '../src/db/database';
import { ACTION_STUCK_MS, ROUND_STUCK_MS } from '../src/health/liveness';
import { createMetrics, DATABASE_DEADLINE_MS, type LoopView } from '../src/health/metrics';
import { type HealthServer, startHealthServer } from '../src/health/server';
import { createLogger } from '../src/logger';
import { VERSION } from '../src/version';
import { startLexus } from './helpers/cli';
import { AS_SOON_AS_ALLOWED_ENV, TEST_SETTINGS } from './helpers/daemon';
import { createTestDatabase, stoppablePostgres, useTestDatabase } from './helpers/database';
import { insertAccount, insertBoundTarget, insertTarget } from './helpers/fixtures';
import { capturedLogger } from './helpers/logs';
import { databaseUrl, freePort } from './helpers/net';

const t = useTestDatabase();
const quiet = createLogger({ level: 'silent' });

async function get(port: number, path: string): Promise<{ status: number; type: string; body: string }> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: response.status, type: response.headers.get('content-type') ?? '', body: await response.text() };
}

/** A metric's value in Prometheus text, e.g. value(text, 'lexus_posts_total{outcome="sent"}'). */
function value(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** A loop view whose round and oldest action run as long as the test says. */
function loopView(at: Date | undefined): LoopView & { running: { oldestActionMs: number; roundMs: number } } {
  const running = { oldestActionMs: 0, roundMs: 0 };
  return { lastTickAt: at, running, progress: () => running };
}

async function serve(
  dataSource = t.dataSource,
  clock: ManualClock = t.clock,
  loop: LoopView = loopView(clock.now()),
  log = quiet,
) {
  const metrics = createMetrics({ dataSource, loop, clock, startedAt: clock.now(), settings: TEST_SETTINGS });
  const server = await startHealthServer(
    { dataSource, loop, clock, registry: metrics.registry, log, startedAt: clock.now() },
    { host: '127.0.0.1', port: 0 },
  );
  return { server, metrics, loop };
}

describe('GET /livez (and /healthz, the same)', () => {
  it('is 200 while rounds and actions end, 503 naming a round or an action stuck past its bound, and logs only the changes', async () => {
    const loop = loopView(t.clock.now());
    const { lines, log } = capturedLogger();
    const { server } = await serve(t.dataSource, t.clock, loop, log);
    try {
      for (const path of ['/livez', '/healthz']) {
        const ok = await get(server.port, path);
        expect(ok.status).toBe(200);
        expect(ok.type).toBe('application/json');
        expect(JSON.parse(ok.body)).toEqual({ status: 'ok', problems: [], loop_lag_s: 0, oldest_action_s: 0 });
      }
      // An outage the loop rides out: its rounds end (they just do nothing), it is alive.
      t.clock.advance(90_000);
      expect((await get(server.port, '/livez')).status).toBe(200);
      loop.running.roundMs = ROUND_STUCK_MS + 1000;
      for (let i = 0; i < 3; i++) {
        const stuck = await get(server.port, '/livez');
        expect(stuck.status).toBe(503);
        expect(JSON.parse(stuck.body).problems).toEqual([
          `loop: a scheduling round has been running for ${(ROUND_STUCK_MS + 1000) / 1000} s`,
        ]);
      }
      loop.running.roundMs = 0;
      loop.running.oldestActionMs = ACTION_STUCK_MS + 5000;
      const action = await get(server.port, '/healthz');
      expect(action.status).toBe(503);
      expect(JSON.parse(action.body)).toMatchObject({
        problems: [`action: one has been running for ${(ACTION_STUCK_MS + 5000) / 1000} s`],
        oldest_action_s: (ACTION_STUCK_MS + 5000) / 1000,
      });
      loop.running.oldestActionMs = 1000;
      expect((await get(server.port, '/livez')).status).toBe(200);
      // Three probes of one stuck round, one line; then the action; then ok again.
      expect(lines.filter((l) => String(l.event).startsWith('health.liveness')).map((l) => l.event)).toEqual([
        'health.liveness_failed',
        'health.liveness_failed',
        'health.liveness_ok',
      ]);
    } finally {
      await server.close();
    }
  });

  it('answers 404 elsewhere and 405 to anything but GET', async () => {
    const { server } = await serve();
    try {
      expect((await get(server.port, '/')).status).toBe(404);
      expect((await fetch(`http://127.0.0.1:${server.port}/livez`, { method: 'POST' })).status).toBe(405);
    } finally {
      await server.close();
    }
  });
});

describe('GET /readyz', () => {
  it('is 200 when the database answers and an account is driven (or none can be), 503 when none of those that can be is', async () => {
    const { server } = await serve();
    try {
      expect(JSON.parse((await get(server.port, '/readyz')).body)).toEqual({
        status: 'ok',
        problems: [],
        database: 'up',
        database_answered_s_ago: 0,
        accounts: { drivable: 0, driven: 0 },
      });
      const a = await insertAccount(t, 'acc_a', { session_string: '1session' });
      const notDriven = await get(server.port, '/readyz');
      expect(notDriven.status).toBe(503);
      expect(JSON.parse(notDriven.body).problems).toEqual([
        'accounts: none of the 1 that can be driven is driven by any process',
      ]);
      await t.query(`UPDATE accounts SET driven_by = 'host:1:ab', driven_until = $2 WHERE id = $1`, [
        a,
        new Date(t.clock.now().getTime() + 20_000),
      ]);
      expect((await get(server.port, '/readyz')).status).toBe(200);
    } finally {
      await server.close();
    }
  });
});

describe('GET /metrics', () => {
  it('has every known outcome and status from the start, at 0, and the version', async () => {
    const { server } = await serve();
    try {
      const { body } = await get(server.port, '/metrics');
      for (const outcome of ['sent', 'account_flood_wait', 'session_dead', 'group_refuses'])
        expect(value(body, `lexus_posts_total{outcome="${outcome}"}`)).toBe(0);
      for (const outcome of ['joined', 'join_request_pending', 'link_dead'])
        expect(value(body, `lexus_joins_total{outcome="${outcome}"}`)).toBe(0);
      expect(value(body, 'lexus_connects_total{outcome="session_dead"}')).toBe(0);
      for (const status of ['active', 'flood_wait', 'banned'])
        expect(value(body, `lexus_accounts{status="${status}"}`)).toBe(0);
      for (const status of ['new', 'requested', 'joined', 'error', 'banned', 'duplicate'])
        expect(value(body, `lexus_targets{niche="ukraine_cars",status="${status}"}`)).toBe(0);
      expect(value(body, 'lexus_accounts_driven')).toBe(0);
      expect(value(body, 'lexus_posts_today')).toBe(0);
      expect(value(body, 'lexus_posts_allowed_today')).toBe(0);
      expect(value(body, 'lexus_next_action_timestamp_seconds')).toBe(0);
      expect(value(body, 'lexus_action_oldest_age_seconds')).toBe(0);
      expect(value(body, 'lexus_posting_window_open')).toBe(1);
      expect(value(body, 'lexus_posting_held')).toBe(0);
      expect(value(body, `lexus_build_info{version="${VERSION}",node="${process.versions.node}"}`)).toBe(1);
    } finally {
      await server.close();
    }
  });

  it('counts the answers the daemon met and reads the fleet from the database', async () => {
    const a = await insertAccount(t, 'acc_a', {
      session_string: '1session',
      driven_by: 'host:1:ab',
      driven_until: '2026-03-10 09:00:20',
    });
    await insertAccount(t, 'acc_b', { status: 'flood_wait', next_allowed_action_time: '2026-03-10T10:00:00Z' });
    await insertAccount(t, 'acc_c', { status: 'banned' });
    const g = await insertBoundTarget(t, '@g_joined', a);
    await insertBoundTarget(t, '@g_joined_too', a);
    await insertTarget(t, '@g_new');
    await insertTarget(t, '@g_kyiv', { niche: 'kyiv_cars' });
    await insertTarget(t, '@g_banned', { status: 'banned' });
    await t.query(
      `INSERT INTO post_history (account_id, target_id, status, created_at) VALUES ($1, $2, 'success', '2026-03-10T08:30:00'), ($1, $2, 'pending', '2026-03-10T08:59:00')`,
      [a, g],
    );
    t.clock.advance(2_500);

    const loop = loopView(new Date(t.clock.now().getTime() - 2_500));
    loop.running.oldestActionMs = 4_000;
    const { server, metrics } = await serve(t.dataSource, t.clock, loop);
    try {
      metrics.observer.postOutcome('sent');
      metrics.observer.postOutcome('sent');
      metrics.observer.postOutcome('account_flood_wait');
      metrics.observer.joinOutcome('joined');
      metrics.observer.connectOutcome('session_dead');
      metrics.observer.floodWait();
      const { status, type, body } = await get(server.port, '/metrics');
      expect(status).toBe(200);
      expect(type).toMatch(/^text\/plain; version=0\.0\.4/);
      expect(value(body, 'lexus_posts_total{outcome="sent"}')).toBe(2);
      expect(value(body, 'lexus_posts_total{outcome="account_flood_wait"}')).toBe(1);
      expect(value(body, 'lexus_joins_total{outcome="joined"}')).toBe(1);
      expect(value(body, 'lexus_flood_waits_total')).toBe(1);
      expect(value(body, 'lexus_connects_total{outcome="session_dead"}')).toBe(1);
      expect(value(body, 'lexus_database_up')).toBe(1);
      expect(value(body, 'lexus_accounts{status="active"}')).toBe(1);
      expect(value(body, 'lexus_accounts{status="flood_wait"}')).toBe(1);
      expect(value(body, 'lexus_accounts{status="banned"}')).toBe(1);
      expect(value(body, 'lexus_accounts_driven')).toBe(1);
      expect(value(body, 'lexus_accounts_drivable')).toBe(1);
      expect(value(body, 'lexus_accounts_post_overdue')).toBe(0);
      expect(value(body, 'lexus_targets{niche="ukraine_cars",status="joined"}')).toBe(2);
      expect(value(body, 'lexus_targets{niche="ukraine_cars",status="new"}')).toBe(1);
      expect(value(body, 'lexus_targets{niche="kyiv_cars",status="new"}')).toBe(1);
      expect(value(body, 'lexus_targets{niche="ukraine_cars",status="banned"}')).toBe(1);
      expect(value(body, 'lexus_post_slots_unsettled')).toBe(1);
      expect(value(body, 'lexus_last_post_success_timestamp_seconds')).toBe(Date.parse('2026-03-10T08:30:00Z') / 1000);
      // Today: 2 counted (the success, the pending slot) of the most the rules allow (2 groups x 2).
      expect(value(body, 'lexus_posts_today')).toBe(2);
      expect(value(body, 'lexus_posts_allowed_today')).toBe(4);
      expect(value(body, 'lexus_next_action_timestamp_seconds')).toBeGreaterThan(
        Date.parse('2026-03-10T09:00:00Z') / 1000,
      );
      expect(value(body, 'lexus_loop_lag_seconds')).toBe(2.5);
      expect(value(body, 'lexus_action_oldest_age_seconds')).toBe(4);
      expect(body).toContain('nodejs_eventloop_lag_seconds');

      // Gauges follow the database from one scrape to the next.
      await t.query(`UPDATE post_history SET status = 'success' WHERE status = 'pending'`);
      expect(value((await get(server.port, '/metrics')).body, 'lexus_post_slots_unsettled')).toBe(0);
      // Its planned post over 30 min late while @g_joined_too would take one now: overdue. Planned
      // for later, or late with no group ready (each in its gap), it is not.
      await t.query(`UPDATE accounts SET next_post_planned_at = '2026-03-10 08:25:00' WHERE id = $1`, [a]);
      expect(value((await get(server.port, '/metrics')).body, 'lexus_accounts_post_overdue')).toBe(1);
      await t.query(`UPDATE accounts SET next_post_planned_at = '2026-03-10 09:20:00' WHERE id = $1`, [a]);
      expect(value((await get(server.port, '/metrics')).body, 'lexus_accounts_post_overdue')).toBe(0);
      await t.query(`UPDATE accounts SET next_post_planned_at = '2026-03-10 08:25:00' WHERE id = $1`, [a]);
      await t.query(`UPDATE targets SET last_post_at = '2026-03-10 08:45:00' WHERE status = 'joined'`);
      expect(value((await get(server.port, '/metrics')).body, 'lexus_accounts_post_overdue')).toBe(0);
    } finally {
      await server.close();
    }
  });
});

describe('while the database hangs', () => {
  it('a scrape gives up after 3 s and the server cancels its query; /healthz stays 200 while the server answers', async () => {
    // As lexus start does: connections of their own, with a statement timeout.
    const probe = createDataSource(t.connection, {
      poolSize: 2,
      applicationName: 'lexus health test',
      timeoutMs: DATABASE_DEADLINE_MS,
    });
    await probe.initialize();
    const { server } = await serve(probe);
    const locker = new pg.Client({ ...t.connection, ssl: false });
    await locker.connect();
    try {
      expect(value((await get(server.port, '/metrics')).body, 'lexus_database_up')).toBe(1);
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE');
      const started = Date.now();
      const metrics = await get(server.port, '/metrics');
      expect(Date.now() - started).toBeLessThan(DATABASE_DEADLINE_MS + 2000);
      expect(value(metrics.body, 'lexus_database_up')).toBe(0);
      await expect
        .poll(
          async () =>
            (
              await t.query<{ n: number }>(
                `SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'lexus health test' AND state = 'active'`,
              )
            )[0]!.n,
          { timeout: 5_000 },
        )
        .toBe(0);
      expect((await get(server.port, '/livez')).status).toBe(200);
      await locker.query('COMMIT');
      expect(value((await get(server.port, '/metrics')).body, 'lexus_database_up')).toBe(1);
    } finally {
      await locker.end();
      await server.close();
      await probe.destroy();
    }
  });
});

describe('while the database is stopped', () => {
  it('/readyz holds through a blip, then is 503 naming the database; /livez stays 200; /metrics answers with lexus_database_up 0; all recover', async () => {
    const pgServer = await stoppablePostgres();
    const dataSource = createDataSource(pgServer.connection, { poolSize: 2 });
    await dataSource.initialize();
    await runMigrations(dataSource);
    const clock = new ManualClock('2026-03-10T09:00:00Z');
    let health: HealthServer | undefined;
    try {
      ({ server: health } = await serve(dataSource, clock));
      expect((await get(health.port, '/readyz')).status).toBe(200);
      await dataSource.query(`INSERT INTO accounts (session_name) VALUES ('acc')`);
      await dataSource.query(
        `INSERT INTO targets (link, niche, status, assigned_account_id, joined_at) VALUES ('@g', 'ukraine_cars', 'joined', 1, '2026-03-08T00:00:00')`,
      );
      await dataSource.query(
        `INSERT INTO post_history (account_id, target_id, status, created_at) VALUES (1, 1, 'success', '2026-03-10T08:00:00')`,
      );
      const up = (await get(health.port, '/metrics')).body;
      expect(value(up, 'lexus_database_up')).toBe(1);
      expect(value(up, 'lexus_last_post_success_timestamp_seconds')).toBe(Date.parse('2026-03-10T08:00:00Z') / 1000);

      await pgServer.stop();
      // A blip shorter than 30 s: still ready.
      clock.advance(20_000);
      expect((await get(health.port, '/readyz')).status).toBe(200);
      clock.advance(11_000);
      const down = await get(health.port, '/readyz');
      expect(down.status).toBe(503);
      const report = JSON.parse(down.body);
      expect(report).toMatchObject({ status: 'unhealthy', database: 'down', database_answered_s_ago: 31 });
      expect(report.problems).toHaveLength(1);
      expect(report.problems[0]).toMatch(/^database: no answer for 31 s \(/);
      expect((await get(health.port, '/livez')).status).toBe(200);
      const metrics = await get(health.port, '/metrics');
      expect(metrics.status).toBe(200);
      expect(value(metrics.body, 'lexus_database_up')).toBe(0);
      // What the database said last stays: an outage is not "no post ever" or "no account".
      expect(value(metrics.body, 'lexus_last_post_success_timestamp_seconds')).toBe(
        Date.parse('2026-03-10T08:00:00Z') / 1000,
      );
      expect(value(metrics.body, 'lexus_accounts{status="active"}')).toBe(1);

      await pgServer.start();
      await expect
        .poll(async () => (await get(health!.port, '/readyz')).status, { timeout: 15_000, interval: 250 })
        .toBe(200);
      expect(value((await get(health.port, '/metrics')).body, 'lexus_database_up')).toBe(1);
    } finally {
      await health?.close();
      await dataSource.destroy().catch(() => undefined);
      await pgServer.remove();
    }
  });
});

describe('lexus start', () => {
  it('serves /healthz and /metrics on HEALTH_PORT while it runs, counting its posts, and stops cleanly', async () => {
    const db = await createTestDatabase();
    const port = await freePort();
    try {
      const id = await insertAccount(db, 'acc_1', { session_string: '1fake' });
      await insertBoundTarget(db, '@ready_group', id, {
        joined_at: new Date(Date.now() - 48 * 3_600_000).toISOString(),
      });
      const daemon = startLexus(['start'], {
        env: {
          DATABASE_URL: databaseUrl(db.connection),
          LEXUS_FAKE_TELEGRAM: '1',
          ...AS_SOON_AS_ALLOWED_ENV,
          HEALTH_PORT: String(port),
          LEXUS_BASE_DIR: path.resolve(__dirname, '..'),
          LEXUS_ACTION_DELAY_S: '0-0',
        },
      });
      try {
        await expect
          .poll(async () => (await get(port, '/livez').catch(() => ({ status: 0 }))).status, {
            timeout: 30_000,
            interval: 250,
          })
          .toBe(200);
        await expect
          .poll(async () => (await get(port, '/readyz')).status, { timeout: 30_000, interval: 250 })
          .toBe(200);
        await expect
          .poll(async () => value((await get(port, '/metrics')).body, 'lexus_posts_total{outcome="sent"}'), {
            timeout: 30_000,
            interval: 250,
          })
          .toBe(1);
        const metrics = await get(port, '/metrics');
        expect(value(metrics.body, 'lexus_database_up')).toBe(1);
        expect(value(metrics.body, 'lexus_accounts{status="active"}')).toBe(1);
        expect(value(metrics.body, 'lexus_accounts_driven')).toBe(1);
        expect(value(metrics.body, 'lexus_last_post_success_timestamp_seconds')).toBeGreaterThan(
          Date.now() / 1000 - 60,
        );
        expect(metrics.body).not.toContain('1fake');
        expect(daemon.output).toContain('"event":"health.listening"');
      } finally {
        daemon.kill('SIGTERM');
      }
      expect((await daemon.exited).code).toBe(0);
      await expect(get(port, '/livez')).rejects.toThrow();
      // Telegram's answer to its connect is kept for lexus status.
      expect(await db.query(`SELECT last_connect_outcome, last_connect_at IS NOT NULL AS at FROM accounts`)).toEqual([
        { last_connect_outcome: 'connected', at: true },
      ]);
    } finally {
      await db.close();
    }
  });
});

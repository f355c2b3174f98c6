/**
 * The health and metrics listener over real HTTP: /healthz says 200 or 503 and why, /metrics
 * counts what the daemon met and reads the fleet from the database, including while the
 * database is stopped; and a real `lexus start` serves both on HEALTH_PORT.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import pg from 'pg';
import { AS_SOON_AS_ALLOWED_ENV } from './helpers/daemon';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../src/clock';
import { createDataSource, runMigrations } from '../src/db/database';
import { DATABASE_DEADLINE_MS, createMetrics, type LoopView } from '../src/health/metrics';
import { startHealthServer, type HealthServer } from '../src/health/server';
import { createLogger } from '../src/logger';
import { createTestDatabase, stoppablePostgres, useTestDatabase } from './helpers/database';
import { insertAccount, insertBoundTarget, insertTarget } from './helpers/fixtures';
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

async function serve(dataSource = t.dataSource, clock: ManualClock = t.clock, loop: LoopView = { lastTickAt: clock.now() }) {
  const metrics = createMetrics({ dataSource, loop, clock, startedAt: clock.now() });
  const server = await startHealthServer({ dataSource, loop, clock, registry: metrics.registry, log: quiet, startedAt: clock.now() }, { host: '127.0.0.1', port: 0 });
  return { server, metrics, loop };
}

describe('GET /healthz', () => {
  it('is 200 while the database answers and the loop runs, 503 naming the loop once it stalls a minute', async () => {
    const { server, loop } = await serve();
    try {
      const ok = await get(server.port, '/healthz');
      expect(ok.status).toBe(200);
      expect(ok.type).toBe('application/json');
      expect(JSON.parse(ok.body)).toEqual({ status: 'ok', database: 'up', loop_lag_s: 0, problems: [] });

      t.clock.advance(60_000);
      expect((await get(server.port, '/healthz')).status).toBe(200);
      t.clock.advance(1_000);
      const stalled = await get(server.port, '/healthz');
      expect(stalled.status).toBe(503);
      expect(JSON.parse(stalled.body)).toMatchObject({ status: 'unhealthy', database: 'up', loop_lag_s: 61, problems: ['loop: no scheduling round for 61 s'] });

      loop.lastTickAt = t.clock.now();
      expect((await get(server.port, '/healthz')).status).toBe(200);
    } finally {
      await server.close();
    }
  });

  it('is 503 when the loop never ran a minute after the start', async () => {
    const loop: LoopView = { lastTickAt: undefined };
    const { server } = await serve(t.dataSource, t.clock, loop);
    try {
      expect((await get(server.port, '/healthz')).status).toBe(200);
      t.clock.advance(61_000);
      const response = await get(server.port, '/healthz');
      expect(response.status).toBe(503);
      expect(JSON.parse(response.body)).toMatchObject({ loop_lag_s: 61, problems: ['loop: no scheduling round since the start, 61 s ago'] });
      // The metric says the same: a loop stuck from the start is not a lag of 0.
      expect(value((await get(server.port, '/metrics')).body, 'lexus_loop_lag_seconds')).toBe(61);
    } finally {
      await server.close();
    }
  });

  it('answers 404 elsewhere and 405 to anything but GET', async () => {
    const { server } = await serve();
    try {
      expect((await get(server.port, '/')).status).toBe(404);
      expect((await fetch(`http://127.0.0.1:${server.port}/healthz`, { method: 'POST' })).status).toBe(405);
    } finally {
      await server.close();
    }
  });
});

describe('GET /metrics', () => {
  it('counts the answers the daemon met and reads the fleet from the database', async () => {
    const a = await insertAccount(t, 'acc_a');
    await insertAccount(t, 'acc_b', { status: 'flood_wait', next_allowed_action_time: '2026-03-10T10:00:00Z' });
    await insertAccount(t, 'acc_c', { status: 'banned' });
    const g = await insertBoundTarget(t, '@g_joined', a);
    await insertTarget(t, '@g_new');
    await insertTarget(t, '@g_kyiv', { niche: 'kyiv_cars' });
    await insertTarget(t, '@g_banned', { status: 'banned' });
    await t.query(`INSERT INTO post_history (account_id, target_id, status, created_at) VALUES ($1, $2, 'success', '2026-03-10T08:30:00'), ($1, $2, 'pending', '2026-03-10T08:59:00')`, [a, g]);
    t.clock.advance(2_500);

    const { server, metrics } = await serve(t.dataSource, t.clock, { lastTickAt: new Date(t.clock.now().getTime() - 2_500) });
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
      expect(value(body, 'lexus_targets{niche="ukraine_cars",status="joined"}')).toBe(1);
      expect(value(body, 'lexus_targets{niche="ukraine_cars",status="new"}')).toBe(1);
      expect(value(body, 'lexus_targets{niche="kyiv_cars",status="new"}')).toBe(1);
      expect(value(body, 'lexus_targets{niche="ukraine_cars",status="banned"}')).toBe(1);
      expect(value(body, 'lexus_post_slots_unsettled')).toBe(1);
      expect(value(body, 'lexus_last_post_success_timestamp_seconds')).toBe(Date.parse('2026-03-10T08:30:00Z') / 1000);
      expect(value(body, 'lexus_loop_lag_seconds')).toBe(2.5);
      expect(body).toContain('nodejs_eventloop_lag_seconds');

      // Gauges follow the database from one scrape to the next.
      await t.query(`UPDATE post_history SET status = 'success' WHERE status = 'pending'`);
      expect(value((await get(server.port, '/metrics')).body, 'lexus_post_slots_unsettled')).toBe(0);
    } finally {
      await server.close();
    }
  });
});

describe('while the database hangs', () => {
  it('a scrape gives up after 3 s and the server cancels its query; /healthz stays 200 while the server answers', async () => {
    // As lexus start does: connections of their own, with a statement timeout.
    const probe = createDataSource(t.connection, { poolSize: 2, applicationName: 'lexus health test', timeoutMs: DATABASE_DEADLINE_MS });
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
        .poll(async () => (await t.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'lexus health test' AND state = 'active'`))[0]!.n, { timeout: 5_000 })
        .toBe(0);
      expect((await get(server.port, '/healthz')).status).toBe(200);
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
  it('/healthz is 503 naming the database, /metrics still answers with lexus_database_up 0, and both recover', async () => {
    const pgServer = await stoppablePostgres();
    const dataSource = createDataSource(pgServer.connection, { poolSize: 2 });
    await dataSource.initialize();
    await runMigrations(dataSource);
    const clock = new ManualClock('2026-03-10T09:00:00Z');
    let health: HealthServer | undefined;
    try {
      ({ server: health } = await serve(dataSource, clock));
      expect((await get(health.port, '/healthz')).status).toBe(200);
      await dataSource.query(`INSERT INTO accounts (session_name) VALUES ('acc')`);
      await dataSource.query(`INSERT INTO targets (link, niche, status, assigned_account_id, joined_at) VALUES ('@g', 'ukraine_cars', 'joined', 1, '2026-03-08T00:00:00')`);
      await dataSource.query(`INSERT INTO post_history (account_id, target_id, status, created_at) VALUES (1, 1, 'success', '2026-03-10T08:00:00')`);
      const up = (await get(health.port, '/metrics')).body;
      expect(value(up, 'lexus_database_up')).toBe(1);
      expect(value(up, 'lexus_last_post_success_timestamp_seconds')).toBe(Date.parse('2026-03-10T08:00:00Z') / 1000);

      await pgServer.stop();
      const down = await get(health.port, '/healthz');
      expect(down.status).toBe(503);
      const report = JSON.parse(down.body);
      expect(report).toMatchObject({ status: 'unhealthy', database: 'down' });
      expect(report.problems).toHaveLength(1);
      expect(report.problems[0]).toMatch(/^database: /);
      const metrics = await get(health.port, '/metrics');
      expect(metrics.status).toBe(200);
      expect(value(metrics.body, 'lexus_database_up')).toBe(0);
      // What the database said last stays: an outage is not "no post ever" or "no account".
      expect(value(metrics.body, 'lexus_last_post_success_timestamp_seconds')).toBe(Date.parse('2026-03-10T08:00:00Z') / 1000);
      expect(value(metrics.body, 'lexus_accounts{status="active"}')).toBe(1);

      await pgServer.start();
      await expect.poll(async () => (await get(health!.port, '/healthz')).status, { timeout: 15_000, interval: 250 }).toBe(200);
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
      const id = await insertAccount(db, 'acc_1');
      await db.query(`UPDATE accounts SET session_string = '1fake' WHERE id = $1`, [id]);
      await insertBoundTarget(db, '@ready_group', id, { joined_at: new Date(Date.now() - 48 * 3_600_000).toISOString() });
      const child = spawn(process.execPath, [path.resolve(__dirname, '../bin/lexus.js'), 'start'], {
        env: {
          PATH: process.env.PATH ?? '', LOG_PRETTY: '0', DATABASE_URL: databaseUrl(db.connection), LEXUS_FAKE_TELEGRAM: '1',
          ...AS_SOON_AS_ALLOWED_ENV, HEALTH_PORT: String(port), LEXUS_BASE_DIR: path.resolve(__dirname, '..'), LEXUS_ACTION_DELAY_S: '0-0',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      child.stdout.on('data', (chunk) => (output += String(chunk)));
      child.stderr.on('data', (chunk) => (output += String(chunk)));
      const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
      try {
        await expect
          .poll(async () => (await get(port, '/healthz').catch(() => ({ status: 0 }))).status, { timeout: 30_000, interval: 250 })
          .toBe(200);
        await expect
          .poll(async () => value((await get(port, '/metrics')).body, 'lexus_posts_total{outcome="sent"}'), { timeout: 30_000, interval: 250 })
          .toBe(1);
        const metrics = await get(port, '/metrics');
        expect(value(metrics.body, 'lexus_database_up')).toBe(1);
        expect(value(metrics.body, 'lexus_accounts{status="active"}')).toBe(1);
        expect(value(metrics.body, 'lexus_last_post_success_timestamp_seconds')).toBeGreaterThan(Date.now() / 1000 - 60);
        expect(metrics.body).not.toContain('1fake');
        expect(output).toContain('"event":"health.listening"');
      } finally {
        child.kill('SIGTERM');
      }
      expect(await exited).toBe(0);
      await expect(get(port, '/healthz')).rejects.toThrow();
    } finally {
      await db.close();
    }
  });
});

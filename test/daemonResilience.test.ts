/**
 * The daemon when the world around it fails: its PostgreSQL restarts under it, and ops stop it
 * with SIGTERM in the middle of its work.
 */
import path from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../src/clock';
import { createDataSource, runMigrations } from '../src/db/database';
import { logged, startLexus } from './helpers/cli';
import { AS_SOON_AS_ALLOWED_ENV, makeDaemon } from './helpers/daemon';
import type { TestDatabase } from './helpers/database';
import { createTestDatabase, stoppablePostgres } from './helpers/database';
import { insertAccount, insertBoundTarget } from './helpers/fixtures';
import { databaseUrl } from './helpers/net';

describe('the daemon and its database', () => {
  it('rides out a PostgreSQL restart: logs it once, waits, carries on, loses no history', async () => {
    const server = await stoppablePostgres();
    const dataSource = createDataSource(server.connection, { poolSize: 5 });
    await dataSource.initialize();
    await runMigrations(dataSource);
    const raw = new pg.Pool({ ...server.connection, ssl: false, max: 2 });
    const t = {
      connection: server.connection,
      dataSource,
      clock: new ManualClock('2026-03-10T06:00:00.000Z'),
      query: async (text: string, values?: unknown[]) => (await raw.query(text, values)).rows,
    } as unknown as TestDatabase;
    raw.on('error', () => undefined);
    try {
      const h = makeDaemon(t);
      const id = await insertAccount(t, 'acc_1', { session_string: '1fake' });
      for (const link of ['@g_one', '@g_two', '@g_three']) {
        await insertBoundTarget(t, link, id, { joined_at: '2026-03-08T06:00:00Z' });
        h.fake.addMember(link, 'acc_1');
      }
      await h.runFor(5 * 60_000);
      const before = h.fake.sent().length;
      expect(before).toBeGreaterThan(0);

      await server.stop();
      await h.runFor(30 * 60_000);
      expect(h.logs.filter((l) => l.event === 'db.down')).toHaveLength(1);
      expect(h.fake.sent().length).toBe(before);

      await server.start();
      await h.runFor(6 * 3_600_000);
      expect(h.logs.filter((l) => l.event === 'db.back')).toHaveLength(1);
      expect(h.fake.sent().length).toBeGreaterThan(before);
      const history = await t.query(`SELECT status, count(*)::int AS n FROM post_history GROUP BY status`);
      expect(history).toEqual([{ status: 'success', n: h.fake.sent().length }]);
      await h.daemon.stop(1000);
    } finally {
      await raw.end().catch(() => undefined);
      await dataSource.destroy().catch(() => undefined);
      await server.remove();
    }
  });
});

describe('lexus start under SIGTERM', () => {
  it('finishes the action in flight within the grace period, exits 0 and leaves no pending slot', async () => {
    const t = await createTestDatabase();
    try {
      const id = await insertAccount(t, 'acc_1', { session_string: '1fake' });
      const now = Date.now();
      for (let i = 1; i <= 5; i++)
        await insertBoundTarget(t, `@g_${i}_ready`, id, { joined_at: new Date(now - 48 * 3_600_000).toISOString() });
      const c = t.connection;
      const url = databaseUrl(c);
      const daemon = startLexus(['start'], {
        env: {
          DATABASE_URL: url,
          LEXUS_FAKE_TELEGRAM: '1',
          HEALTH_PORT: '0',
          ...AS_SOON_AS_ALLOWED_ENV,
          LEXUS_ACTION_DELAY_S: '0-0',
          LEXUS_GROUP_MIN_GAP_HOURS: '0',
          LEXUS_SHUTDOWN_GRACE_S: '10',
          LEXUS_BASE_DIR: path.resolve(__dirname, '..'),
        },
      });
      // Stop it as soon as it has connected: its first post (200 ms on the fake) is in flight.
      const exit = await daemon.stopWhen(logged('account.connected'), 'post');
      const result = { code: exit.code, stdout: daemon.stdout, stopMs: exit.at - daemon.signalledAt };
      expect(result.code).toBe(0);
      expect(result.stopMs).toBeLessThan(12_000);
      const lines = result.stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l));
      const events = lines.map((l) => l.event);
      expect(events).toEqual(expect.arrayContaining(['daemon.signal', 'daemon.stopping', 'daemon.stopped']));
      // The post in flight at the signal was finished and recorded, then the daemon stopped.
      expect(events.indexOf('post.sent')).toBeGreaterThan(events.indexOf('daemon.signal'));
      expect(events.indexOf('daemon.stopped')).toBeGreaterThan(events.indexOf('post.sent'));
      expect(lines.find((l) => l.event === 'daemon.stopped')).toMatchObject({ clean: true });
      expect(await t.query(`SELECT count(*)::int AS n FROM post_history WHERE status = 'pending'`)).toEqual([{ n: 0 }]);
      const sent = result.stdout.split('\n').filter((l) => l.includes('"event":"post.sent"')).length;
      expect(await t.query(`SELECT count(*)::int AS n FROM post_history WHERE status = 'success'`)).toEqual([
        { n: sent },
      ]);
    } finally {
      await t.close();
    }
  });
});

/**
 * What on-call can rely on (issue 15): every wait of the daemon bounded (its statements, row
 * locks, another process's migrations, a database that is still starting, its own stop), a
 * watchdog for a process stuck for good, a version, a refusal of a schema newer than the code,
 * and a warning for a variable that is not one, all through the real `lexus` command against a
 * real PostgreSQL.
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Daemon, STOP_AFTER_GRACE_MS } from '../src/daemon/daemon';
import { loadMessages } from '../src/daemon/messages';
import { AccountLocks } from '../src/db/accountLocks';
import { createLogger } from '../src/logger';
import { FakeTelegram } from '../src/telegram/fakeGateway';
import type { TelegramGateway } from '../src/telegram/gateway';
import { VERSION } from '../src/version';
import { ROOT, runLexus, runNode, startLexus, tempDir } from './helpers/cli';
import { AS_SOON_AS_ALLOWED_ENV, TEST_SETTINGS } from './helpers/daemon';
import { stoppablePostgres, useTestDatabase } from './helpers/database';
import { insertBoundTarget, insertDrivableAccount } from './helpers/fixtures';
import { databaseUrl, freePort } from './helpers/net';

const t = useTestDatabase();

let cwd: string;
beforeAll(async () => {
  cwd = await tempDir('lexus-ops-');
});
afterAll(async () => {
  await rm(cwd, { recursive: true, force: true });
});

const BASE_ENV = {
  ...AS_SOON_AS_ALLOWED_ENV,
  LOG_PRETTY: '0',
  HEALTH_PORT: '0',
  LEXUS_FAKE_TELEGRAM: '1',
  LEXUS_BASE_DIR: ROOT,
  LEXUS_MESSAGES_FILE: path.join(ROOT, 'config/messages/cars/messages.json'),
};

interface Run {
  code: number | null;
  lines: Record<string, unknown>[];
  stderr: string;
  ms: number;
}

/** Runs `lexus ARGS` until it ends, or until `until` sees what it waits for (then SIGTERM). */
async function lexus(
  args: string[],
  env: Record<string, string>,
  until?: (line: Record<string, unknown>) => boolean,
  timeoutMs = 90_000,
): Promise<Run> {
  const child = startLexus(args, { cwd, env: { ...BASE_ENV, ...env }, timeout: timeoutMs });
  if (until && (await child.waitFor((p) => p.lines.some(until), timeoutMs))) child.kill('SIGTERM');
  const exit = await child.exited;
  return { code: exit.code, lines: child.lines, stderr: child.stderr, ms: exit.at - child.startedAt };
}

const eventOf = (name: string) => (l: Record<string, unknown>) => l.event === name;

describe('lexus --version', () => {
  it('prints the version and exits 0; the start-up log says it too', async () => {
    const r = runLexus(['--version']);
    expect(r.stdout.trim()).toBe(VERSION);
    expect(r.status).toBe(0);
  });
});

describe('the database at start', () => {
  it('is tried again for LEXUS_DB_START_WAIT_S when it does not answer, said once, then a clear exit', async () => {
    const port = await freePort();
    const r = await lexus(['start'], {
      DATABASE_URL: `postgresql://lexus:pw-secret@127.0.0.1:${port}/lexus`,
      LEXUS_DB_START_WAIT_S: '3',
    });
    expect(r.lines.filter(eventOf('db.start_wait'))).toHaveLength(1);
    const fatal = r.lines.find(eventOf('fatal'));
    expect(fatal?.msg).toMatch(
      new RegExp(
        `^cannot connect to postgresql://lexus@127\\.0\\.0\\.1:${port}/lexus \\(from DATABASE_URL\\) \\(tried for [2-4] s\\): `,
      ),
    );
    expect(JSON.stringify(r.lines) + r.stderr).not.toContain('pw-secret');
    expect(r.code).toBe(70);
  });

  it('that comes up while it waits is used: the daemon starts', async () => {
    const server = await stoppablePostgres();
    try {
      await server.stop();
      const child = startLexus(['start'], {
        cwd,
        env: { ...BASE_ENV, DATABASE_URL: databaseUrl(server.connection), LEXUS_DB_START_WAIT_S: '60' },
        timeout: 90_000,
      });
      // The server comes up once lexus has said it waits for it (however long a busy machine
      // takes to start a process), a second later.
      expect(await child.waitFor((p) => p.lines.some(eventOf('db.start_wait')), 60_000)).toBe(true);
      await new Promise((resolve) => setTimeout(resolve, 1000));
      await server.start();
      if (await child.waitFor((p) => p.lines.some(eventOf('daemon.started')), 60_000)) child.kill('SIGTERM');
      const exit = await child.exited;
      expect(child.lines.filter(eventOf('db.start_wait'))).toHaveLength(1);
      expect(child.lines.some(eventOf('daemon.started'))).toBe(true);
      expect(exit.code).toBe(0);
    } finally {
      await server.remove();
    }
  });
});

describe('migrations', () => {
  it("waiting for another process's, says within 5 s who holds them, and gives up after LEXUS_MIGRATION_WAIT_S", async () => {
    const holder = new pg.Client({ ...t.connection, ssl: false, application_name: 'the other lexus' });
    await holder.connect();
    try {
      await holder.query('SELECT pg_advisory_lock($1)', [0x6c65787573]);
      const r = await lexus(['migrate'], { DATABASE_URL: databaseUrl(t.connection), LEXUS_MIGRATION_WAIT_S: '8' });
      const wait = r.lines.find(eventOf('db.migration_wait'));
      expect(wait?.holder).toMatch(/^"the other lexus" from \S+, backend pid \d+, connected \d+ s ago$/);
      expect(Date.parse(String(wait?.time)) - Date.parse(String(r.lines[0]?.time))).toBeLessThan(7000);
      expect(r.lines.find(eventOf('fatal'))?.msg).toMatch(
        /^waited 8 s for the migrations of another process \("the other lexus"/,
      );
      expect(r.code).toBe(70);
    } finally {
      await holder.end();
    }
  });

  it('lexus start, waiting for them, stops at once on SIGTERM, saying so, with 0', async () => {
    const holder = new pg.Client({ ...t.connection, ssl: false, application_name: 'the other lexus' });
    await holder.connect();
    try {
      await holder.query('SELECT pg_advisory_lock($1)', [0x6c65787573]);
      const r = await lexus(['start'], { DATABASE_URL: databaseUrl(t.connection) }, eventOf('db.migration_wait'));
      expect(r.lines.at(-1)).toMatchObject({
        event: 'daemon.stopped',
        clean: true,
        before_start: true,
        signal: 'SIGTERM',
      });
      expect(r.code).toBe(0);
    } finally {
      await holder.end();
    }
  });

  it('lexus start refuses a schema a newer version migrated, unless LEXUS_ALLOW_NEWER_SCHEMA=1', async () => {
    await t.query(
      `INSERT INTO lexus_migrations ("timestamp", name) VALUES (1999999999999, 'FromTheFuture1999999999999')`,
    );
    try {
      const refused = await lexus(['start'], { DATABASE_URL: databaseUrl(t.connection) });
      expect(refused.stderr).toContain(
        `lexus: the database was migrated by a newer version of lexus than this one (${VERSION}): it has FromTheFuture1999999999999; run that version, or set LEXUS_ALLOW_NEWER_SCHEMA=1`,
      );
      expect(refused.code).toBe(78);
      const allowed = await lexus(
        ['start'],
        { DATABASE_URL: databaseUrl(t.connection), LEXUS_ALLOW_NEWER_SCHEMA: '1' },
        eventOf('daemon.started'),
      );
      expect(allowed.lines.find(eventOf('db.schema_newer'))?.level).toBe('warn');
      expect(allowed.code).toBe(0);
    } finally {
      await t.query(`DELETE FROM lexus_migrations WHERE name = 'FromTheFuture1999999999999'`);
    }
  });
});

describe('lexus start, at start and at its stop', () => {
  it('states the version and the settings in effect, warns of a variable that is not one and of a grace longer than the container gives', async () => {
    const r = await lexus(
      ['start'],
      {
        DATABASE_URL: databaseUrl(t.connection),
        LEXUS_ACTION_DELAY: '5-10',
        LEXUS_SHUTDOWN_GRACE_S: '60',
        LEXUS_CONTAINER_STOP_GRACE_S: '45',
      },
      eventOf('daemon.started'),
    );
    expect(r.lines.find(eventOf('config.unknown_variable'))).toMatchObject({
      level: 'warn',
      variable: 'LEXUS_ACTION_DELAY',
      closest: 'LEXUS_ACTION_DELAY_S',
    });
    expect(r.lines.find(eventOf('startup.grace_too_long'))).toMatchObject({
      level: 'warn',
      grace_s: 60,
      container_grace_s: 45,
    });
    expect(r.lines.find(eventOf('startup.summary'))).toMatchObject({ version: VERSION });
    expect(r.lines.find(eventOf('startup.settings'))?.settings).toMatchObject({
      LEXUS_SHUTDOWN_GRACE_S: 60,
      LEXUS_STATEMENT_TIMEOUT_S: 30,
      LEXUS_LOCK_TIMEOUT_S: 10,
    });
    // Every line says which process: host and pid.
    expect(r.lines.every((l) => typeof l.host === 'string' && typeof l.pid === 'number')).toBe(true);
    // And a clean stop ends with "stopped", nothing after it.
    expect(r.lines.at(-1)).toMatchObject({ event: 'daemon.stopped', clean: true, level: 'info' });
    expect(r.code).toBe(0);
  });

  it('waits on a row lock no longer than LEXUS_LOCK_TIMEOUT_S, and leaves no reserved post behind when the lock goes', async () => {
    const a = await insertDrivableAccount(t, 'acc_1');
    await insertBoundTarget(t, '@locked_group', a, { joined_at: new Date(Date.now() - 48 * 3_600_000).toISOString() });
    const locker = new pg.Client({ ...t.connection, ssl: false });
    await locker.connect();
    try {
      await locker.query('BEGIN');
      await locker.query('SELECT * FROM accounts FOR UPDATE');
      const r = await lexus(
        ['start'],
        { DATABASE_URL: databaseUrl(t.connection), LEXUS_LOCK_TIMEOUT_S: '2', LEXUS_ACTION_DELAY_S: '0-0' },
        (l) => JSON.stringify(l).includes('lock timeout'),
      );
      // The statements gave up on the lock (55P03) instead of waiting behind it; the stop was prompt.
      expect(r.lines.some((l) => JSON.stringify(l).includes('canceling statement due to lock timeout'))).toBe(true);
      expect(r.code).toBe(0);
      await locker.query('COMMIT');
      expect(await t.query(`SELECT status FROM post_history`)).toEqual([]);
    } finally {
      await locker.end();
    }
  });
});

describe('a stop', () => {
  it('takes at most the grace and a few seconds more, even with sessions that never close', async () => {
    const a = await insertDrivableAccount(t, 'acc_1');
    await insertBoundTarget(t, '@g', a);
    const fake = new FakeTelegram({ clock: t.clock });
    fake.addMember('@g', 'acc_1');
    // Every session connects, and never finishes disconnecting.
    const gateway: TelegramGateway = {
      session: (account) => {
        const session = fake.session(account);
        return {
          ...session,
          sessionName: session.sessionName,
          connect: () => session.connect(),
          lookup: (g) => session.lookup(g),
          join: (g) => session.join(g),
          post: (g, m) => session.post(g, m),
          disconnect: () => new Promise<void>(() => undefined),
        };
      },
    };
    const daemon = new Daemon({
      dataSource: t.dataSource,
      locks: new AccountLocks(t.connection),
      gateway,
      clock: t.clock,
      log: createLogger({ level: 'silent' }),
      settings: TEST_SETTINGS,
      messages: loadMessages(TEST_SETTINGS.messagesFile, TEST_SETTINGS.baseDir),
    });
    for (let i = 0; i < 5; i++) {
      await daemon.tick();
      await daemon.idle();
      t.clock.advance(60_000);
    }
    expect(fake.sent()).toHaveLength(1);
    const began = Date.now();
    const clean = await daemon.stop(1000);
    expect(Date.now() - began).toBeLessThan(1000 + STOP_AFTER_GRACE_MS + 1000);
    expect(clean).toBe(false);
  });
});

describe('the watchdog', () => {
  it('exits 70 when a round or an action has been running for LEXUS_WATCHDOG_S, saying what', () => {
    // runDaemon with a daemon whose round never ends (its progress says so).
    const script = `
      const { runDaemon } = require(${JSON.stringify(path.join(ROOT, 'dist/daemon/run.js'))});
      const { createLogger } = require(${JSON.stringify(path.join(ROOT, 'dist/logger.js'))});
      const stuck = {
        keepLease: async () => undefined, tick: () => new Promise(() => undefined), stop: async () => true,
        progress: () => ({ oldestActionMs: 0, roundMs: 61_000 }),
      };
      runDaemon({ daemon: stuck, clock: { now: () => new Date() }, log: createLogger({ level: 'info', pretty: false }), graceMs: 1000, onExit: () => undefined, watchdogMs: 60_000 });`;
    const r = runNode(['-e', script], { timeout: 30_000 });
    const fatal = r.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.event === 'watchdog.exit');
    expect(fatal).toMatchObject({
      level: 'fatal',
      stuck_s: 61,
      problems: ['loop: a scheduling round has been running for 61 s'],
    });
    expect(r.status).toBe(70);
  });
});

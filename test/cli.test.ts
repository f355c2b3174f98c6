/**
 * The `lexus` command as a user runs it: a child process, its exit code and its output.
 * (The test setup builds dist/ first.)
 */

import { readFileSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MIGRATION_NAMES } from '../src/db/migrations';
import { logged, type RunResult, runLexus, startLexus, tempDir } from './helpers/cli';
import { AS_SOON_AS_ALLOWED_ENV } from './helpers/daemon';
import { adminQuery, createEmptyDatabase, createTestDatabase } from './helpers/database';
import { databaseUrl, freePort } from './helpers/net';

let cwd: string;
/** `lexus ARGS` in the test's folder, in a clean environment: nothing from the developer's shell or .env leaks in. */
function lexus(args: string[], env: Record<string, string> = {}): RunResult {
  return runLexus(args, { cwd, env: { ...AS_SOON_AS_ALLOWED_ENV, ...env } });
}

let database: Awaited<ReturnType<typeof createEmptyDatabase>>;
let url: string;
beforeAll(async () => {
  cwd = await tempDir('lexus-cli-');
  database = await createEmptyDatabase();
  const c = database.connection;
  url = databaseUrl(c);
});
afterAll(async () => {
  await database?.drop();
  await rm(cwd, { recursive: true, force: true });
});

/** The daemon never talks to the real Telegram from a test. */
const DAEMON_ENV = {
  ...AS_SOON_AS_ALLOWED_ENV,
  LEXUS_FAKE_TELEGRAM: '1',
  // Test files run in parallel: no two daemons on the default health port.
  HEALTH_PORT: '0',
  LEXUS_BASE_DIR: path.resolve(__dirname, '..'),
  LEXUS_MESSAGES_FILE: path.resolve(__dirname, '../config/messages/cars/messages.json'),
};

/** Runs `lexus start` until `event` is logged, then sends SIGTERM; resolves when it exits. */
async function startUntil(env: Record<string, string>, event: string): Promise<RunResult & { stopMs: number }> {
  const daemon = startLexus(['start'], { cwd, env: { ...DAEMON_ENV, ...env } });
  const exit = await daemon.stopWhen(logged(event), event);
  return {
    status: exit.code,
    signal: exit.signal,
    stdout: daemon.stdout,
    stderr: daemon.stderr,
    error: undefined,
    stopMs: exit.at - daemon.signalledAt,
  };
}

const events = (run: RunResult) =>
  run.stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { event: string; level: string; msg: string });

describe('lexus', () => {
  it('--help lists the commands and exits 0', async () => {
    const run = lexus(['--help']);
    expect(run.status).toBe(0);
    expect(run.stdout).toContain('migrate');
    expect(run.stdout).toContain('start');
    for (const command of ['import', 'login', 'logout']) expect(run.stdout).toContain(command);
  });

  it('login without Telegram API credentials says which variables to set, and stores nothing', async () => {
    const run = lexus(['login', 'lexus_new', '--phone', '+380501112233'], { DATABASE_URL: url });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain(
      'lexus login: no API credentials: set TG_API_ID and TG_API_HASH, or import the account with its own api_id and api_hash (from https://my.telegram.org)',
    );
  });

  it('TG_API_ID without TG_API_HASH is a configuration error', async () => {
    const run = lexus(['login', 'x'], { DATABASE_URL: url, TG_API_ID: '12345' });
    expect(run.status).toBe(78);
    expect(run.stderr).toContain('TG_API_HASH: TG_API_ID and TG_API_HASH go together');
  });

  it('an unknown command is a usage error', async () => {
    const run = lexus(['frobnicate']);
    expect(run.status).toBe(64);
    expect(run.stderr).toContain("unknown command 'frobnicate'");
  });

  it('a bad variable exits 78 naming it', async () => {
    const run = lexus(['migrate'], { POSTGRES_PORT: 'abc' });
    expect(run.status).toBe(78);
    expect(run.stderr).toContain('POSTGRES_PORT: must be a whole number (got "abc")');
  });

  it('a bad DATABASE_URL exits 78 without printing it', async () => {
    const run = lexus(['start'], { DATABASE_URL: 'postgresql://lexus:s3cr3t-pw@db:notaport/lexus' });
    expect(run.status).toBe(78);
    expect(run.stderr).toContain('DATABASE_URL: ');
    expect(run.stderr + run.stdout).not.toContain('s3cr3t-pw');
  });

  it('reads .env from the working folder', async () => {
    await writeFile(path.join(cwd, '.env'), 'LOG_LEVEL=chatty\n');
    try {
      const run = lexus(['migrate']);
      expect(run.status).toBe(78);
      expect(run.stderr).toContain('LOG_LEVEL');
    } finally {
      await rm(path.join(cwd, '.env'));
    }
  });

  it('migrate creates the schema, then finds it up to date, never logging the password', async () => {
    const fresh = await createEmptyDatabase();
    const c = fresh.connection;
    const freshUrl = databaseUrl(c);
    try {
      const first = lexus(['migrate'], { DATABASE_URL: freshUrl });
      expect(first.status).toBe(0);
      expect(events(first).find((e) => e.event === 'db.migrated')?.msg).toBe(
        `migrations run: ${MIGRATION_NAMES.join(', ')}`,
      );
      const second = lexus(['migrate'], { DATABASE_URL: freshUrl });
      expect(second.status).toBe(0);
      expect(events(second).find((e) => e.event === 'db.migrated')?.msg).toBe('schema up to date');
      expect(first.stdout + first.stderr + second.stdout).not.toContain(c.password!);
    } finally {
      await fresh.drop();
    }
  });

  it('an unreachable database exits 70 with a message naming where it tried', async () => {
    const run = lexus(['migrate'], {
      POSTGRES_HOST: '127.0.0.1',
      POSTGRES_PORT: String(await freePort()),
      POSTGRES_PASSWORD: 'pw-not-shown',
    });
    expect(run.status).toBe(70);
    const fatal = events(run).find((e) => e.event === 'fatal');
    expect(fatal?.msg).toMatch(
      /^cannot connect to postgresql:\/\/postgres@127\.0\.0\.1:\d+\/lexus_promotion \(from POSTGRES_\*\)/,
    );
    expect(run.stdout + run.stderr).not.toContain('pw-not-shown');
  });

  it('start on an empty fleet migrates, says what to do next, keeps running, and stops cleanly on SIGTERM', async () => {
    const run = await startUntil({ DATABASE_URL: url }, 'startup.no_accounts');
    expect(run.status).toBe(0);
    const names = events(run).map((e) => e.event);
    expect(names).toEqual(
      expect.arrayContaining(['db.ready', 'db.migrated', 'startup.summary', 'startup.no_accounts', 'daemon.stopped']),
    );
    expect(events(run).find((e) => e.event === 'startup.no_accounts')?.msg).toContain('lexus import');
  });

  it('start refuses messages it cannot send, naming the variant', async () => {
    const file = path.join(cwd, 'messages.json');
    await writeFile(
      file,
      JSON.stringify({ uk: [{ variant: 0, photo: 'lexus_assets/lexus_variant_1.jpg', text: 'x'.repeat(1025) }] }),
    );
    const run = lexus(['start'], { DATABASE_URL: url, ...DAEMON_ENV, LEXUS_MESSAGES_FILE: file });
    expect(run.status).toBe(78);
    expect(run.stderr).toContain(
      'uk[0] (variant 0): the caption has 1025 characters; a photo caption holds at most 1024',
    );
  });

  it('import --json writes the examples and prints a report without a secret', async () => {
    const run = lexus(['import', '--dir', path.resolve(__dirname, '../examples'), '--json'], { DATABASE_URL: url });
    expect(run.status, run.stderr).toBe(0);
    const report = JSON.parse(run.stdout);
    expect(report).toMatchObject({ ok: true, dryRun: false, bindings: { created: 3 } });
    expect(run.stdout + run.stderr).not.toMatch(/example-proxy-password|0123456789abcdef0123456789abcdef|1ApWapz/);
    // Logs went to stderr, so stdout is the report alone.
    expect(run.stderr).toContain('"event":"import.done"');
  });

  it('import --dry-run writes nothing, not even migrations, to a database the old system made', async () => {
    const seed = readFileSync(path.resolve(__dirname, 'fixtures/seed-schema.sql'), 'utf8');
    const legacy = await createTestDatabase({
      migrate: false,
      before: `${seed}INSERT INTO targets (link, niche) VALUES ('t.me/AutoBazar_UA', 'ukraine_cars');`,
    });
    try {
      const snapshot = async () => ({
        tables: await legacy.query(
          `SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2`,
        ),
        indexes: await legacy.query(`SELECT indexname FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1`),
        targets: await legacy.query('SELECT CAST(t AS text) AS row FROM targets t ORDER BY id'),
        accounts: await legacy.query('SELECT CAST(a AS text) AS row FROM accounts a ORDER BY id'),
      });
      const before = await snapshot();
      const c = legacy.connection;
      const legacyUrl = databaseUrl(c);
      const run = lexus(['import', '--dir', path.resolve(__dirname, '../examples'), '--dry-run', '--json'], {
        DATABASE_URL: legacyUrl,
      });
      expect(run.status, run.stderr).toBe(0);
      expect(JSON.parse(run.stdout)).toMatchObject({
        ok: true,
        dryRun: true,
        accounts: { created: ['lexus_kyiv_1', 'lexus_kyiv_2', 'lexus_odesa_3', 'lexus_lviv_4'] },
        targets: { created: 8, linksNormalized: [], unchanged: 1 },
      });
      expect(await snapshot()).toEqual(before);
    } finally {
      await legacy.close();
    }
  });

  it('import on a database holding one group under two links refuses, exit 65, also with --json', async () => {
    const seed = readFileSync(path.resolve(__dirname, 'fixtures/seed-schema.sql'), 'utf8');
    const legacy = await createTestDatabase({
      migrate: false,
      before:
        seed +
        `INSERT INTO targets (link, niche) VALUES ('t.me/kharkiv_auto', 'ukraine_cars'), ('@kharkiv_auto', 'ukraine_cars');`,
    });
    try {
      const c = legacy.connection;
      const legacyUrl = databaseUrl(c);
      const run = lexus(['import', '--dir', path.resolve(__dirname, '../examples'), '--json'], {
        DATABASE_URL: legacyUrl,
      });
      expect(run.status).toBe(65);
      expect(JSON.parse(run.stdout)).toMatchObject({
        ok: false,
        errors: [
          expect.stringContaining(
            'database: the database holds one group under two links: targets rows "t.me/kharkiv_auto" (id 1) and "@kharkiv_auto" (id 2)',
          ),
        ],
      });
      expect(await legacy.query('SELECT count(*)::int AS n FROM accounts')).toEqual([{ n: 0 }]);
    } finally {
      await legacy.close();
    }
  });

  it('start with no database configured brings up the embedded PostgreSQL, and reuses its data next time', async () => {
    const env = { LEXUS_EMBEDDED_PG_DIR: path.join(cwd, 'pgdata'), LEXUS_EMBEDDED_PG_PORT: String(await freePort()) };
    const first = await startUntil(env, 'startup.no_accounts');
    expect(first.status, first.stdout + first.stderr).toBe(0);
    expect(events(first).map((e) => e.event)).toEqual(
      expect.arrayContaining(['db.embedded', 'db.ready', 'startup.no_accounts']),
    );
    expect(events(first).find((e) => e.event === 'db.migrated')?.msg).toBe(
      `migrations run: ${MIGRATION_NAMES.join(', ')}`,
    );
    const second = lexus(['migrate'], env);
    expect(second.status).toBe(0);
    expect(events(second).find((e) => e.event === 'db.migrated')?.msg).toBe('schema up to date');
  });

  it('simulate runs in a scratch database, prints a day line each day and the report, writes the page, and drops the database', async () => {
    const html = path.join(cwd, 'simulation.html');
    const run = lexus(
      ['simulate', '--accounts', '2', '--groups', '8', '--days', '2', '--chaos', 'none', '--json', '--html', html],
      { DATABASE_URL: url, ...DAEMON_ENV },
    );
    expect(run.stderr).toMatch(/day 1\/2 2026-03-02: 8 joins, 0 posts/);
    expect(run.status).toBe(0);
    const report = JSON.parse(run.stdout) as { violations: number; totals: { posts: number }; days: unknown[] };
    expect(report.violations).toBe(0);
    expect(report.days).toHaveLength(2);
    expect(report.totals.posts).toBe(16);
    expect(readFileSync(html, 'utf8')).toContain('<svg');
    const scratch = /\(database (lexus_simulation_[0-9a-f]{8})\)/.exec(run.stderr)?.[1];
    expect(scratch).toBeDefined();
    const t = await createTestDatabase({ migrate: false });
    try {
      // The configured database got no simulated account: the run's own database is gone.
      expect(await t.query(`SELECT datname FROM pg_database WHERE datname = $1`, [scratch])).toEqual([]);
      const configured = new pg.Client({ ...database.connection, ssl: false });
      await configured.connect();
      const tables = await configured.query(`SELECT to_regclass('accounts') IS NOT NULL AS has`);
      const accounts = tables.rows[0].has
        ? (await configured.query(`SELECT session_name FROM accounts WHERE session_name LIKE 'sim_%'`)).rows
        : [];
      await configured.end();
      expect(accounts).toEqual([]);
    } finally {
      await t.close();
    }
  });

  it('simulate drops what an interrupted run left, and on Ctrl-C drops its own database and exits 130', async () => {
    await adminQuery('CREATE DATABASE lexus_simulation_deadbeef');
    const simulation = startLexus(
      ['simulate', '--accounts', '50', '--groups', '2000', '--days', '60', '--chaos', 'none'],
      {
        cwd,
        env: { DATABASE_URL: url, ...DAEMON_ENV },
      },
    );
    await simulation.waitFor((p) => p.stdout.includes('Simulating 60 days'), 60_000);
    expect(simulation.stdout).toContain(
      'Dropped 1 scratch database an interrupted run left: lexus_simulation_deadbeef',
    );
    expect((await simulation.stop('SIGINT')).code).toBe(130);
    const t = await createTestDatabase({ migrate: false });
    try {
      expect(await t.query(`SELECT datname FROM pg_database WHERE datname LIKE 'lexus_simulation_%'`)).toEqual([]);
    } finally {
      await t.close();
    }
  });

  it('simulate refuses a bad option with exit 64, naming it', async () => {
    const run = lexus(['simulate', '--chaos', 'wild'], { DATABASE_URL: url, ...DAEMON_ENV });
    expect(run.status).toBe(64);
    expect(run.stderr).toContain('--chaos must be one of none, some, heavy, not "wild"');
    const days = lexus(['simulate', '--days', '0'], { DATABASE_URL: url, ...DAEMON_ENV });
    expect(days.status).toBe(64);
    expect(days.stderr).toContain('--days must be a whole number from 1 to 90, not "0"');
  });
});

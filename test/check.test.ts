/**
 * `lexus check`: each check on its own (messages, schema, accounts offline and online through
 * the fake Telegram), and the command as ops run it, with its exit codes and without a secret.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkAccounts, checkMessages, checkSchema, formatCheckLines } from '../src/check/checks';
import { loadConfig } from '../src/config';
import { AccountLocks } from '../src/db/accountLocks';
import { createDataSource } from '../src/db/database';
import { MIGRATION_NAMES } from '../src/db/migrations';
import { encodeTelethonStringSession } from '../src/import/telethonSession';
import { FakeTelegram } from '../src/telegram/fakeGateway';
import { ROOT, runLexus, tempDir } from './helpers/cli';
import { createEmptyDatabase, createTestDatabase, useTestDatabase } from './helpers/database';
import { insertAccount } from './helpers/fixtures';
import { databaseUrl } from './helpers/net';

const t = useTestDatabase();
const SESSION = encodeTelethonStringSession({
  dcId: 2,
  serverAddress: '149.154.167.51',
  port: 443,
  authKey: Buffer.alloc(256, 7),
});
const API_HASH = '0123456789abcdef0123456789abcdef';
const PROXY_PASSWORD = 'proxy-pass-secret';

/** An account as `lexus login` or the import leaves it. */
async function account(
  name: string,
  fields: {
    session?: string | null;
    apiId?: number;
    apiHash?: string;
    proxy?: string;
    status?: string;
    reason?: string;
    waitUntil?: string;
  } = {},
) {
  return insertAccount(t, name, {
    status: fields.status ?? 'active',
    next_allowed_action_time: fields.waitUntil ?? null,
    session_string: fields.session === undefined ? SESSION : fields.session,
    api_id: fields.apiId ?? null,
    api_hash: fields.apiHash ?? null,
    proxy: fields.proxy ?? null,
    status_reason: fields.reason ?? null,
  });
}

const withDefaults = { apiId: 12345, apiHash: API_HASH };

describe('checkAccounts offline', () => {
  it('passes an account that can connect, and names what stops each other one', async () => {
    await account('a_ok');
    await account('b_own_credentials_socks', {
      apiId: 777,
      apiHash: API_HASH,
      proxy: `socks5://user:${PROXY_PASSWORD}@10.0.0.1:1080`,
    });
    await account('c_no_session', { session: null });
    await account('d_garbage_session', { session: 'not-a-session' });
    await account('e_http_proxy', { proxy: `http://user:${PROXY_PASSWORD}@10.0.0.1:3128` });
    await account('f_dead', { status: 'banned', reason: 'session dead: AUTH_KEY_UNREGISTERED' });
    const lines = await checkAccounts({ dataSource: t.dataSource, clock: t.clock, telegram: withDefaults });
    expect(formatCheckLines(lines)).toBe(
      [
        'ok       account a_ok: session decodes, API id from TG_API_ID, no proxy',
        'ok       account b_own_credentials_socks: session decodes, API id of its own, a SOCKS5 proxy',
        'PROBLEM  account c_no_session: no session: log it in with lexus login c_no_session',
        'PROBLEM  account d_garbage_session: the stored session string cannot be decoded: log it in again with lexus login d_garbage_session',
        'PROBLEM  account e_http_proxy: GramJS cannot use a HTTP proxy; use socks5://user:pass@host:port, socks4://host:port or mtproxy://<secret>@host:port',
        'PROBLEM  account f_dead: stopped (session dead: AUTH_KEY_UNREGISTERED); after a new login it goes on: lexus login f_dead',
        '4 problems in 6 checks',
        '',
      ].join('\n'),
    );
    const text = JSON.stringify(lines);
    for (const secret of [SESSION, API_HASH, PROXY_PASSWORD]) expect(text).not.toContain(secret);
  });

  it("needs API credentials: the account's own, or TG_API_ID and TG_API_HASH", async () => {
    await account('a_ok');
    const [line] = await checkAccounts({
      dataSource: t.dataSource,
      clock: t.clock,
      telegram: { apiId: null, apiHash: null },
    });
    expect(line).toEqual({
      ok: false,
      subject: 'account a_ok',
      detail: expect.stringMatching(/^no API credentials: set TG_API_ID and TG_API_HASH/),
    });
  });

  it('an empty fleet is a problem that says what to do', async () => {
    expect(await checkAccounts({ dataSource: t.dataSource, clock: t.clock, telegram: withDefaults })).toEqual([
      {
        ok: false,
        subject: 'accounts',
        detail:
          "none yet: import the old system's files (lexus import --dir PATH) or log an account in (lexus login NAME)",
      },
    ]);
  });
});

describe('checkAccounts --online', () => {
  it('asks Telegram who each account is, never during a FloodWait or behind a running daemon, and stores a FloodWait it is given', async () => {
    await account('a_ok');
    await account('b_dead');
    const waiting = await account('c_flood');
    await account('d_in_flood_wait', { status: 'flood_wait', waitUntil: '2026-03-10T10:00:00Z' });
    const driven = await account('e_driven');
    const fake = new FakeTelegram({ clock: t.clock });
    fake.on({ op: 'connect', account: 'b_dead', outcome: { kind: 'session_dead', error: 'AUTH_KEY_UNREGISTERED' } });
    fake.on({
      op: 'connect',
      account: 'c_flood',
      outcome: { kind: 'account_flood_wait', seconds: 120, error: 'FLOOD_WAIT_120' },
    });
    // A running daemon drives e_driven: it holds the account's lock.
    const daemonLocks = new AccountLocks(t.connection);
    const checkLocks = new AccountLocks(t.connection);
    try {
      expect(await daemonLocks.acquire([driven])).toEqual([driven]);
      const lines = await checkAccounts({
        dataSource: t.dataSource,
        clock: t.clock,
        telegram: withDefaults,
        online: { gateway: fake, locks: checkLocks },
      });
      expect(lines.map((l) => `${l.ok ? 'ok' : 'PROBLEM'} ${l.subject}: ${l.detail}`)).toEqual([
        expect.stringMatching(
          /^ok account a_ok: session decodes, API id from TG_API_ID, no proxy; Telegram knows it as a user without a username \(id \d+\)$/,
        ),
        'PROBLEM account b_dead: the session is dead (AUTH_KEY_UNREGISTERED): log it in again with lexus login b_dead',
        'PROBLEM account c_flood: Telegram says wait 120 s (FloodWait, stored: the daemon waits too)',
        'ok account d_in_flood_wait: session decodes, API id from TG_API_ID, no proxy; not connected: in a FloodWait until 2026-03-10T10:00:00.000Z',
        'ok account e_driven: session decodes, API id from TG_API_ID, no proxy; not connected: a running lexus start drives it (its session must not be used twice)',
      ]);
      expect(fake.calls.filter((c) => c.op === 'connect').map((c) => c.account)).toEqual(['a_ok', 'b_dead', 'c_flood']);
      expect(fake.violations()).toEqual([]);
      expect(
        await t.query(
          `SELECT status, to_char(next_allowed_action_time, 'YYYY-MM-DD"T"HH24:MI:SS') AS until FROM accounts WHERE id = $1`,
          [waiting],
        ),
      ).toEqual([{ status: 'flood_wait', until: '2026-03-10T09:02:00' }]);
      // The session that connected was closed, and each lock given back.
      expect(checkLocks.heldAccounts()).toEqual([]);
      expect(fake.calls.filter((c) => c.op === 'disconnect').map((c) => c.account)).toEqual(['a_ok']);
    } finally {
      await daemonLocks.close();
      await checkLocks.close();
    }
  });
});

describe('checkSchema', () => {
  it('up to date, to be migrated, and migrated by a newer version', async () => {
    expect(await checkSchema(t.dataSource)).toEqual({
      ok: true,
      subject: 'schema',
      detail: `up to date (${MIGRATION_NAMES.length} migrations)`,
      pending: 0,
    });

    const empty = await createEmptyDatabase();
    const ds = createDataSource(empty.connection, { poolSize: 1 });
    await ds.initialize();
    try {
      expect(await checkSchema(ds)).toEqual({
        ok: true,
        subject: 'schema',
        detail: `${MIGRATION_NAMES.length} of ${MIGRATION_NAMES.length} migrations to run (${MIGRATION_NAMES.join(', ')}); lexus start or lexus migrate runs them`,
        pending: MIGRATION_NAMES.length,
      });
      // Checking wrote nothing: not even the migrations table.
      expect(await ds.query(`SELECT to_regclass('lexus_migrations') AS t`)).toEqual([{ t: null }]);
    } finally {
      await ds.destroy();
      await empty.drop();
    }

    await t.query(
      `INSERT INTO lexus_migrations (timestamp, name) VALUES (1799999999999, 'FromTheFuture1799999999999')`,
    );
    try {
      expect(await checkSchema(t.dataSource)).toMatchObject({
        ok: false,
        detail: expect.stringContaining('FromTheFuture1799999999999'),
      });
    } finally {
      await t.query(`DELETE FROM lexus_migrations WHERE name = 'FromTheFuture1799999999999'`);
    }
  });
});

describe('checkMessages', () => {
  it('passes the shipped ad and lists each problem of a broken one', async () => {
    const shipped = loadConfig({}, { cwd: ROOT, inDocker: false });
    expect(checkMessages(shipped)).toEqual([
      {
        ok: true,
        subject: 'messages',
        detail: expect.stringMatching(/^3 variants in .*messages\.json, 2 with a photo, every photo found$/),
      },
    ]);

    const dir = await tempDir('lexus-check-');
    await writeFile(
      path.join(dir, 'messages.json'),
      JSON.stringify({ uk: [{ variant: 0, photo: 'lexus_assets/missing.jpg', text: 'Продається Lexus IS 250' }] }),
    );
    const broken = loadConfig(
      { LEXUS_MESSAGES_FILE: path.join(dir, 'messages.json'), LEXUS_BASE_DIR: dir },
      { cwd: ROOT, inDocker: false },
    );
    const lines = checkMessages(broken);
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.every((l) => !l.ok && l.subject === 'messages')).toBe(true);
    expect(lines.map((l) => l.detail).join('\n')).toContain('missing.jpg');
  });
});

describe('lexus check', () => {
  const run = (env: Record<string, string>, args: string[] = []) => runLexus(['check', ...args], { cwd: ROOT, env });

  it('exits 0 when all is well, 1 naming the problem otherwise, and never prints a secret', async () => {
    const db = await createTestDatabase();
    try {
      await db.query(`INSERT INTO accounts (session_name, session_string, status) VALUES ('acc_1', $1, 'active')`, [
        SESSION,
      ]);
      const env = { DATABASE_URL: databaseUrl(db.connection), TG_API_ID: '12345', TG_API_HASH: API_HASH };
      const good = run(env);
      expect(good.stdout).toMatch(/^ok +configuration: valid; database: postgresql:\/\/.*\n/);
      expect(good.stdout).toContain('ok       account acc_1: session decodes');
      expect(good.stdout.trimEnd().split('\n').at(-1)).toBe('all 5 checks passed');
      expect(good.status).toBe(0);

      await db.query(`INSERT INTO accounts (session_name, status) VALUES ('acc_2', 'active')`);
      const bad = run(env);
      expect(bad.stdout).toContain('PROBLEM  account acc_2: no session: log it in with lexus login acc_2');
      expect(bad.status).toBe(1);
      for (const out of [good.stdout + good.stderr, bad.stdout + bad.stderr]) {
        for (const secret of [SESSION, API_HASH, db.connection.password ?? 'none']) expect(out).not.toContain(secret);
      }
    } finally {
      await db.close();
    }
  });

  it('--online asks Telegram (here the fake) who each account is', async () => {
    const db = await createTestDatabase();
    try {
      await db.query(`INSERT INTO accounts (session_name, session_string, status) VALUES ('acc_1', $1, 'active')`, [
        SESSION,
      ]);
      const result = run(
        {
          DATABASE_URL: databaseUrl(db.connection),
          TG_API_ID: '12345',
          TG_API_HASH: API_HASH,
          LEXUS_FAKE_TELEGRAM: '1',
        },
        ['--online'],
      );
      expect(result.stdout).toMatch(
        /ok {7}account acc_1: session decodes, API id from TG_API_ID, no proxy; Telegram knows it as a user without a username \(id \d+\)\n/,
      );
      expect(result.status).toBe(0);
    } finally {
      await db.close();
    }
  });

  it('on a database not migrated yet, says how many migrations will run and leaves the accounts unchecked', async () => {
    const empty = await createEmptyDatabase();
    try {
      const result = run({ DATABASE_URL: databaseUrl(empty.connection), TG_API_ID: '12345', TG_API_HASH: API_HASH });
      expect(result.stdout).toContain(
        `ok       schema: ${MIGRATION_NAMES.length} of ${MIGRATION_NAMES.length} migrations to run`,
      );
      expect(result.stdout).toContain(
        "PROBLEM  accounts: not checked: the schema is not this version's yet (lexus migrate, then lexus check again)",
      );
      expect(result.status).toBe(1);
    } finally {
      await empty.drop();
    }
  });

  it('exits 1 when the database cannot be reached, saying where it looked', () => {
    const result = run({ DATABASE_URL: 'postgresql://lexus:pw-secret@127.0.0.1:1/lexus' });
    expect(result.stdout).toMatch(
      /^PROBLEM  database: postgresql:\/\/lexus@127\.0\.0\.1:1\/lexus \(from DATABASE_URL\): /m,
    );
    expect(result.stdout + result.stderr).not.toContain('pw-secret');
    expect(result.status).toBe(1);
  });

  it('says a variable that looks like ours but is not has no effect, naming the closest known one, and exits 1', () => {
    const result = run({ DATABASE_URL: 'postgresql://lexus:pw-secret@127.0.0.1:1/lexus', LEXUS_ACTION_DELAY: '5-10' });
    expect(result.stdout).toContain(
      'PROBLEM  configuration: LEXUS_ACTION_DELAY is not a variable lexus knows, so it has no effect (did you mean LEXUS_ACTION_DELAY_S?)',
    );
    expect(result.stderr).toContain('"event":"config.unknown_variable"');
    expect(result.status).toBe(1);
  });

  it('exits 78 naming a bad variable', () => {
    const result = run({ HEALTH_PORT: 'ninety' });
    expect(result.status).toBe(78);
    expect(result.stderr).toContain('HEALTH_PORT: must be a whole number');
  });
});

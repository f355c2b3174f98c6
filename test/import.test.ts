import { readFileSync } from 'node:fs';
import path from 'node:path';
import { StringSession } from 'telegram/sessions';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runMigrations } from '../src/db/database';
import { encodeTelethonStringSession } from '../src/import/telethonSession';
import { loadDrivableAccounts } from '../src/sql/accounts';
import { formatStatus } from '../src/status/formatStatus';
import { loadStatus } from '../src/status/loadStatus';
import { clientSettingsOf } from '../src/telegram/gramjsGateway';
import { TEST_SETTINGS } from './helpers/daemon';
import { createTestDatabase, useTestDatabase } from './helpers/database';
import { dumpDatabase, insertAccount, insertBoundTarget, insertTarget, storedText } from './helpers/fixtures';
import { copyExamples, type OldSystemCopy, runImport } from './helpers/oldSystem';

const NOW = '2026-11-24T12:00:00.000Z';
const t = useTestDatabase({ start: NOW });
let old: OldSystemCopy;
beforeEach(async () => {
  old = await copyExamples();
});
afterEach(async () => {
  await old.cleanup();
});

const importNow = (dryRun = false) => runImport(t.dataSource, old.dir, t.clock, dryRun);

describe('lexus import on the examples', () => {
  it('creates the whitelisted accounts with their settings and sessions', async () => {
    const report = await importNow();
    expect(report.accounts).toEqual({
      inFile: 5,
      imported: 4,
      created: ['lexus_kyiv_1', 'lexus_kyiv_2', 'lexus_odesa_3', 'lexus_lviv_4'],
      updated: [],
      unchanged: 0,
      needsLogin: ['lexus_lviv_4'],
      notDriven: [],
    });
    const accounts = await t.query<Record<string, unknown>>(
      `SELECT session_name, phone, status, api_id, api_hash, proxy, session_string IS NOT NULL AS has_session FROM accounts ORDER BY id`,
    );
    expect(accounts).toEqual([
      {
        session_name: 'lexus_kyiv_1',
        phone: '+380501112233',
        status: 'active',
        api_id: 1234567,
        api_hash: '0123456789abcdef0123456789abcdef',
        proxy: null,
        has_session: true,
      },
      {
        session_name: 'lexus_kyiv_2',
        phone: '+380671112244',
        status: 'active',
        api_id: 1234567,
        api_hash: '0123456789abcdef0123456789abcdef',
        proxy: 'socks5://lexus:example-proxy-password@203.0.113.10:1080',
        has_session: true,
      },
      {
        session_name: 'lexus_odesa_3',
        phone: '+380931112255',
        status: 'active',
        api_id: null,
        api_hash: null,
        proxy: null,
        has_session: true,
      },
      {
        session_name: 'lexus_lviv_4',
        phone: '+380991112266',
        status: 'active',
        api_id: null,
        api_hash: null,
        proxy: null,
        has_session: false,
      },
    ]);
    const config = await old.json('accounts_config.json');
    const [kyiv1] = await t.query<{ s: string }>(
      `SELECT session_string AS s FROM accounts WHERE session_name = 'lexus_kyiv_1'`,
    );
    expect(kyiv1!.s).toBe(config[0].string_session);
    // The .session files became string sessions GramJS can load.
    const [odesa] = await t.query<{ s: string }>(
      `SELECT session_string AS s FROM accounts WHERE session_name = 'lexus_odesa_3'`,
    );
    const session = new StringSession(odesa!.s);
    await session.load();
    expect([session.dcId, session.serverAddress, session.port, session.getAuthKey()?.getKey()?.length]).toEqual([
      4,
      '149.154.167.91',
      443,
      256,
    ]);
  });

  it('--seasoned marks the accounts the old system ran as seasoned, for good: a later import without it changes nothing', async () => {
    const fresh = await importNow();
    expect(fresh.accounts.seasoned).toBeUndefined();
    expect(await t.query(`SELECT count(*)::int AS n FROM accounts WHERE seasoned`)).toEqual([{ n: 0 }]);
    const marked = await runImport(t.dataSource, old.dir, t.clock, false, { seasoned: true });
    expect(marked.accounts.seasoned).toEqual(['lexus_kyiv_1', 'lexus_kyiv_2', 'lexus_lviv_4', 'lexus_odesa_3']);
    // Their ramp-up clock is a daemon's to start: the import never sets it.
    expect(await t.query(`SELECT session_name, seasoned, first_driven_at FROM accounts ORDER BY id`)).toEqual([
      { session_name: 'lexus_kyiv_1', seasoned: true, first_driven_at: null },
      { session_name: 'lexus_kyiv_2', seasoned: true, first_driven_at: null },
      { session_name: 'lexus_odesa_3', seasoned: true, first_driven_at: null },
      { session_name: 'lexus_lviv_4', seasoned: true, first_driven_at: null },
    ]);
    expect((await runImport(t.dataSource, old.dir, t.clock, false, { seasoned: true })).accounts.seasoned).toEqual([]);
    await importNow();
    expect(await t.query(`SELECT count(*)::int AS n FROM accounts WHERE seasoned`)).toEqual([{ n: 4 }]);
    // A dry run marks nothing.
    await t.query(`UPDATE accounts SET seasoned = false`);
    expect((await runImport(t.dataSource, old.dir, t.clock, true, { seasoned: true })).accounts.seasoned).toHaveLength(
      4,
    );
    expect(await t.query(`SELECT count(*)::int AS n FROM accounts WHERE seasoned`)).toEqual([{ n: 0 }]);
  });

  it('imports an account whose own settings cannot be used, says where and what to use instead, and keeps it from being driven until they are fixed', async () => {
    const accounts = await old.json('accounts_config.json');
    accounts[1].proxy = 'http://lexus:example-proxy-password@203.0.113.10:3128';
    delete accounts[0].api_hash;
    await old.writeJson('accounts_config.json', accounts);
    const report = await importNow();
    expect(report.accounts.created).toHaveLength(4);
    expect(report.warnings).toEqual(
      expect.arrayContaining([
        'accounts_config.json:2: [0].api_hash: api_id and api_hash go together: give both or neither (then TG_API_ID and TG_API_HASH are used); "lexus_kyiv_1" is imported but not driven until this is fixed',
        'accounts_config.json:15: [1].proxy: GramJS cannot use a HTTP proxy; use socks5://user:pass@host:port, socks4://host:port or mtproxy://<secret>@host:port; "lexus_kyiv_2" is imported but not driven until this is fixed',
      ]),
    );
    expect(report.accounts.notDriven.map((n) => n.sessionName)).toEqual(['lexus_kyiv_1', 'lexus_kyiv_2']);
    expect(JSON.stringify(report)).not.toContain('example-proxy-password');
    expect((await loadDrivableAccounts(t.dataSource)).map((a) => a.sessionName)).toEqual(['lexus_odesa_3']);
    const status = await loadStatus(t.dataSource, t.clock.now(), TEST_SETTINGS);
    expect(formatStatus(status)).toContain(
      'Not driven, its settings cannot be used: lexus_kyiv_2: GramJS cannot use a HTTP proxy; use socks5://',
    );
    // The same rule as the gateway's: the gateway refuses that account's settings too.
    const [stored] = await t.query<{ proxy: string }>(`SELECT proxy FROM accounts WHERE session_name = 'lexus_kyiv_2'`);
    expect(
      clientSettingsOf(
        { sessionName: 'lexus_kyiv_2', sessionString: '', apiId: 1, apiHash: 'a'.repeat(32), proxy: stored!.proxy },
        {},
      ),
    ).toMatchObject({ kind: 'misconfigured', error: expect.stringContaining('cannot use a HTTP proxy') });
    // Fixed in the files, imported again: driven.
    accounts[1].proxy = 'socks5://lexus:example-proxy-password@203.0.113.10:1080';
    accounts[0].api_hash = '0123456789abcdef0123456789abcdef';
    await old.writeJson('accounts_config.json', accounts);
    expect((await importNow()).accounts.notDriven).toEqual([]);
    expect(await t.query(`SELECT count(*)::int AS n FROM accounts WHERE config_problem IS NOT NULL`)).toEqual([
      { n: 0 },
    ]);
    expect((await loadDrivableAccounts(t.dataSource)).map((a) => a.sessionName).sort()).toEqual([
      'lexus_kyiv_1',
      'lexus_kyiv_2',
      'lexus_odesa_3',
    ]);
  });

  it('creates every group once, normalized, with its niche', async () => {
    const report = await importNow();
    expect(report.targets).toMatchObject({
      groups: 9,
      duplicatesMerged: 1,
      created: 9,
      nicheChanged: 0,
      unchanged: 0,
      byNiche: {
        ukraine_cars: { groups: 7, created: 7, nicheChanged: 0 },
        kyiv_cars: { groups: 2, created: 2, nicheChanged: 0 },
      },
    });
    expect(await t.query('SELECT link, niche, status FROM targets ORDER BY link')).toEqual([
      { link: '@autobazar_ua', niche: 'ukraine_cars', status: 'joined' },
      { link: '@avto_kyiv_rynok', niche: 'kyiv_cars', status: 'joined' },
      { link: '@cars_odesa_sale', niche: 'ukraine_cars', status: 'new' },
      { link: '@dnipro_cars_ua', niche: 'ukraine_cars', status: 'new' },
      { link: '@kharkiv_auto', niche: 'ukraine_cars', status: 'new' },
      { link: '@kyiv_premium_auto', niche: 'kyiv_cars', status: 'new' },
      { link: '@lviv_avto_prodazh', niche: 'ukraine_cars', status: 'new' },
      { link: 'https://t.me/+Hj5dKs8PqW1vTy4U', niche: 'ukraine_cars', status: 'new' },
      { link: 'https://t.me/+Xk3bQp9LmN2wZr7T', niche: 'ukraine_cars', status: 'joined' },
    ]);
    expect(report.warnings).toEqual(['targets.txt:4: lines 4 and 17 name one group, @autobazar_ua: merged']);
  });

  it('binds the assigned groups with their join times; none given means 24 h before the import', async () => {
    const report = await importNow();
    expect(report.bindings).toEqual({ created: 3, alreadyBound: 0 });
    const rows = await t.query<{ id: number; link: string; account: string }>(
      `SELECT t.id, t.link, a.session_name AS account FROM targets t JOIN accounts a ON a.id = t.assigned_account_id ORDER BY t.link`,
    );
    expect(rows.map((r) => [r.link, r.account])).toEqual([
      ['@autobazar_ua', 'lexus_kyiv_1'],
      ['@avto_kyiv_rynok', 'lexus_kyiv_2'],
      ['https://t.me/+Xk3bQp9LmN2wZr7T', 'lexus_odesa_3'],
    ]);
    const times = async (id: number) => [
      await storedText(t, 'targets', 'joined_at', id),
      await storedText(t, 'targets', 'warmup_ends_at', id),
    ];
    // A time without a zone is UTC (the old system wrote utcnow()); +02:00 is converted.
    expect(await times(rows[0]!.id)).toEqual(['2026-11-20T10:15:30.123', '2026-11-21T10:15:30.123']);
    expect(await times(rows[1]!.id)).toEqual(['2026-11-21T06:00:00.000', '2026-11-22T06:00:00.000']);
    expect(await times(rows[2]!.id)).toEqual(['2026-11-23T12:00:00.000', '2026-11-24T12:00:00.000']);
    // So all three may post right away.
    expect((await t.db.getGroupsReadyForPosting('ukraine_cars')).map((g) => g.link)).toEqual([
      '@autobazar_ua',
      'https://t.me/+Xk3bQp9LmN2wZr7T',
    ]);
    expect((await t.db.getGroupsReadyForPosting('kyiv_cars')).map((g) => g.link)).toEqual(['@avto_kyiv_rynok']);
  });

  it("reports what the seed's verification queries would show, and no secret", async () => {
    const report = await importNow();
    const config = await old.json('accounts_config.json');
    const text = JSON.stringify(report);
    for (const secret of ['example-proxy-password', config[0].string_session, config[0].api_hash, '1ApWapz'])
      expect(text).not.toContain(secret);
    expect(report.database).toEqual({
      accounts: 4,
      targetsByNiche: { ukraine_cars: 7, kyiv_cars: 2 },
      boundTargets: 3,
    });
  });

  it('a dry run writes nothing and reports exactly what a real run then does', async () => {
    const before = await dumpDatabase(t);
    const dry = await importNow(true);
    expect(await dumpDatabase(t)).toEqual(before);
    const real = await importNow();
    expect({ ...dry, dryRun: false }).toEqual(real);
  });

  it('is idempotent: a second run creates and changes nothing, not even a timestamp', async () => {
    await importNow();
    const afterFirst = await dumpDatabase(t);
    t.clock.advance(3600_000);
    const second = await importNow();
    expect(second.accounts).toMatchObject({ created: [], updated: [], unchanged: 4 });
    expect(second.targets).toMatchObject({ created: 0, nicheChanged: 0, unchanged: 9 });
    expect(second.bindings).toEqual({ created: 0, alreadyBound: 3 });
    expect(second.conflicts).toEqual([]);
    expect(await dumpDatabase(t)).toEqual(afterFirst);
  });
});

describe('lexus import, run again on changed files', () => {
  it('keeps a session made by lexus login since, while the files still hold the old one', async () => {
    await importNow();
    await t.query(`UPDATE accounts SET session_string = '1FRESH-FROM-LOGIN' WHERE session_name = 'lexus_kyiv_1'`);
    const again = await importNow();
    expect(again.accounts).toMatchObject({ updated: [], unchanged: 4 });
    expect(await t.query(`SELECT session_string FROM accounts WHERE session_name = 'lexus_kyiv_1'`)).toEqual([
      { session_string: '1FRESH-FROM-LOGIN' },
    ]);
    // A session that really changed in the files does replace it, with a warning.
    const accounts = await old.json('accounts_config.json');
    accounts[0].string_session = encodeTelethonStringSession({
      dcId: 2,
      serverAddress: '149.154.167.50',
      port: 443,
      authKey: Buffer.alloc(256, 9),
    });
    await old.writeJson('accounts_config.json', accounts);
    const third = await importNow();
    expect(third.accounts.updated).toEqual([{ sessionName: 'lexus_kyiv_1', fields: ['session_string'] }]);
    expect(third.warnings).toContain(
      'accounts_config.json: "lexus_kyiv_1": the files\' new session replaces the one in the database (made since the last import)',
    );
  });

  it("updates a changed phone and session; a value the files leave out keeps the database's", async () => {
    await importNow();
    const accounts = await old.json('accounts_config.json');
    accounts[0].phone = '+380500000000';
    accounts[1].proxy = null;
    await old.writeJson('accounts_config.json', accounts);
    await old.remove('sessions/lexus_odesa_3.session');
    await t.query(`UPDATE accounts SET session_string = $1 WHERE session_name = 'lexus_lviv_4'`, [
      accounts[0].string_session,
    ]);
    const report = await importNow();
    expect(report.accounts.updated).toEqual([{ sessionName: 'lexus_kyiv_1', fields: ['phone'] }]);
    expect(report.accounts.needsLogin).toEqual([]);
    expect(
      await t.query(
        `SELECT session_name, phone, proxy IS NOT NULL AS proxy, session_string IS NOT NULL AS session FROM accounts ORDER BY id`,
      ),
    ).toEqual([
      { session_name: 'lexus_kyiv_1', phone: '+380500000000', proxy: false, session: true },
      { session_name: 'lexus_kyiv_2', phone: '+380671112244', proxy: true, session: true },
      { session_name: 'lexus_odesa_3', phone: '+380931112255', proxy: false, session: true },
      { session_name: 'lexus_lviv_4', phone: '+380991112266', proxy: false, session: true },
    ]);
  });

  it('changes a niche the files give, and keeps one they do not', async () => {
    await importNow();
    await t.query(`UPDATE targets SET niche = 'kharkiv_cars' WHERE link = '@kharkiv_auto'`);
    await old.writeJson('group_niches.json', { '@kyiv_premium_auto': 'premium', 't.me/avto_kyiv_rynok': 'kyiv_cars' });
    const report = await importNow();
    expect(report.targets).toMatchObject({ created: 0, nicheChanged: 1, unchanged: 8 });
    expect(report.targets.byNiche.premium).toEqual({ groups: 1, created: 0, nicheChanged: 1 });
    expect(
      await t.query(
        `SELECT link, niche FROM targets WHERE link IN ('@kyiv_premium_auto', '@kharkiv_auto') ORDER BY link`,
      ),
    ).toEqual([
      { link: '@kharkiv_auto', niche: 'kharkiv_cars' },
      { link: '@kyiv_premium_auto', niche: 'premium' },
    ]);
  });

  it('checks only the name of an account it does not import', async () => {
    const accounts = await old.json('accounts_config.json');
    accounts[4].phone = 'ask Wayan';
    accounts[4].api_id = 'n/a';
    await old.writeJson('accounts_config.json', accounts);
    expect((await importNow()).accounts).toMatchObject({ inFile: 5, imported: 4 });
  });

  it('stores phones in international format, and an empty phone as none', async () => {
    const accounts = await old.json('accounts_config.json');
    accounts[0].phone = 380501112233;
    accounts[1].phone = '';
    await old.writeJson('accounts_config.json', accounts);
    await importNow();
    expect(
      await t.query(
        `SELECT session_name, phone FROM accounts WHERE session_name IN ('lexus_kyiv_1', 'lexus_kyiv_2') ORDER BY id`,
      ),
    ).toEqual([
      { session_name: 'lexus_kyiv_1', phone: '+380501112233' },
      { session_name: 'lexus_kyiv_2', phone: null },
    ]);
  });

  it('imports every account, loudly, without a whitelist', async () => {
    await old.remove('lexus_accounts_config.json');
    const report = await importNow();
    expect(report.accounts.created).toEqual([
      'lexus_kyiv_1',
      'lexus_kyiv_2',
      'lexus_odesa_3',
      'lexus_lviv_4',
      'bali_villa_1',
    ]);
    expect(report.warnings).toContain(
      'lexus_accounts_config.json: missing: EVERY account of accounts_config.json is imported as a Lexus account',
    );
    await old.writeJson('lexus_accounts_config.json', { allowed_accounts: [] });
    expect((await importNow()).warnings).toContain(
      'lexus_accounts_config.json: allowed_accounts is missing or empty: EVERY account of accounts_config.json is imported as a Lexus account',
    );
  });
});

describe('lexus import never moves a binding', () => {
  it('leaves a group bound to another account as it is, and says so', async () => {
    const other = await insertAccount(t, 'lexus_kyiv_2');
    const g = await insertBoundTarget(t, '@autobazar_ua', other, { joined_at: '2026-11-01T00:00:00Z' });
    const report = await importNow();
    expect(report.conflicts).toEqual([
      'group_account_assignments.json:2: @autobazar_ua is bound to account "lexus_kyiv_2" in the database, the files say "lexus_kyiv_1": left as it is',
    ]);
    expect(report.bindings).toEqual({ created: 2, alreadyBound: 0 });
    expect(await t.query('SELECT assigned_account_id FROM targets WHERE id = $1', [g])).toEqual([
      { assigned_account_id: other },
    ]);
    expect(await storedText(t, 'targets', 'joined_at', g)).toBe('2026-11-01T00:00:00.000');
  });

  it('never restarts the warm-up of a group already bound to the same account', async () => {
    const same = await insertAccount(t, 'lexus_kyiv_1');
    const g = await insertBoundTarget(t, '@autobazar_ua', same, { joined_at: '2026-11-24T11:00:00Z' });
    const report = await importNow();
    expect(report.bindings).toEqual({ created: 2, alreadyBound: 1 });
    expect(report.conflicts).toEqual([]);
    expect(await storedText(t, 'targets', 'joined_at', g)).toBe('2026-11-24T11:00:00.000');
    expect(await storedText(t, 'targets', 'warmup_ends_at', g)).toBe('2026-11-25T11:00:00.000');
  });

  it('does not bind a group that banned us', async () => {
    await insertTarget(t, 'https://t.me/+Xk3bQp9LmN2wZr7T', { status: 'banned' });
    const report = await importNow();
    expect(report.conflicts).toEqual([
      'group_account_assignments.json:4: https://t.me/+Xk3bQp9LmN2wZr7T banned our account (status banned in the database), the files say "lexus_odesa_3": left as it is',
    ]);
    expect(
      await t.query(`SELECT status, assigned_account_id FROM targets WHERE link = 'https://t.me/+Xk3bQp9LmN2wZr7T'`),
    ).toEqual([{ status: 'banned', assigned_account_id: null }]);
  });
});

describe('lexus import into a database the old system filled', () => {
  it("works on a database made by the seed's DDL, keeping its rows and bindings", async () => {
    const legacy = await createTestDatabase({
      migrate: false,
      start: NOW,
      before:
        readFileSync(path.resolve(__dirname, 'fixtures/seed-schema.sql'), 'utf8') +
        `INSERT INTO accounts (session_name, phone, session_string, status, daily_posts_count, last_stats_reset)
         VALUES ('lexus_kyiv_1', '+380501112233', NULL, 'active', 4, '2026-11-24 09:00:00');
         INSERT INTO targets (link, niche, status, assigned_account_id, joined_at, warmup_ends_at, daily_posts_in_group, last_group_stats_reset)
         VALUES ('t.me/AutoBazar_UA', 'ukraine_cars', 'joined', 1, '2026-11-01 08:00:00', '2026-11-02 08:00:00', 1, '2026-11-24 09:00:00');
         INSERT INTO post_history (account_id, target_id, message_content, status, created_at)
         VALUES (1, 1, 'Продається Lexus IS 250', 'success', '2026-11-24 09:00:00');`,
    });
    try {
      await runMigrations(legacy.dataSource);
      const report = await runImport(legacy.dataSource, old.dir, legacy.clock);
      expect(report.accounts).toMatchObject({
        created: ['lexus_kyiv_2', 'lexus_odesa_3', 'lexus_lviv_4'],
        updated: [{ sessionName: 'lexus_kyiv_1', fields: ['session_string', 'api_id', 'api_hash'] }],
      });
      expect(report.bindings).toEqual({ created: 2, alreadyBound: 1 });
      expect(report.targets).toMatchObject({ created: 8, unchanged: 1, linksNormalized: [] });
      expect(
        await legacy.query(
          `SELECT id, link, assigned_account_id, daily_posts_in_group FROM targets WHERE link = '@autobazar_ua'`,
        ),
      ).toEqual([{ id: 1, link: '@autobazar_ua', assigned_account_id: 1, daily_posts_in_group: 1 }]);
      expect(await storedText(legacy, 'targets', 'joined_at', 1)).toBe('2026-11-01T08:00:00.000');
      expect(await legacy.query(`SELECT daily_posts_count FROM accounts WHERE id = 1`)).toEqual([
        { daily_posts_count: 4 },
      ]);
      expect(await legacy.query(`SELECT status, message_content FROM post_history`)).toEqual([
        { status: 'success', message_content: 'Продається Lexus IS 250' },
      ]);
    } finally {
      await legacy.close();
    }
  });

  it('normalizes its links, so that a group never gets a second row', async () => {
    const legacy = await insertAccount(t, 'lexus_kyiv_1', {
      daily_posts_count: 1,
      last_stats_reset: '2026-11-24T08:00:00Z',
    });
    const bound = await insertBoundTarget(t, 't.me/autobazar_ua', legacy, { joined_at: '2026-11-10T09:00:00Z' });
    await insertTarget(t, 'https://t.me/Kharkiv_Auto');
    const report = await importNow();
    expect(report.targets.linksNormalized).toEqual([
      { from: 't.me/autobazar_ua', to: '@autobazar_ua' },
      { from: 'https://t.me/Kharkiv_Auto', to: '@kharkiv_auto' },
    ]);
    expect(report.targets).toMatchObject({ created: 7, unchanged: 2 });
    expect(report.accounts).toMatchObject({ created: ['lexus_kyiv_2', 'lexus_odesa_3', 'lexus_lviv_4'], unchanged: 0 });
    expect(
      await t.query(`SELECT id, assigned_account_id, daily_posts_in_group FROM targets WHERE link = '@autobazar_ua'`),
    ).toEqual([{ id: bound, assigned_account_id: legacy, daily_posts_in_group: 0 }]);
    expect(await storedText(t, 'targets', 'joined_at', bound)).toBe('2026-11-10T09:00:00.000');
    expect(await t.query<{ n: number }>('SELECT count(*)::int AS n FROM targets')).toEqual([{ n: 9 }]);
  });

  it('refuses to write while one group has two rows, even when only one of them is bound', async () => {
    const other = await insertAccount(t, 'lexus_kyiv_2');
    await insertBoundTarget(t, 't.me/Kharkiv_Auto', other);
    await insertTarget(t, '@kharkiv_auto');
    const assignments = await old.json('group_account_assignments.json');
    assignments['@kharkiv_auto'] = { account_name: 'lexus_kyiv_1' };
    await old.writeJson('group_account_assignments.json', assignments);
    const before = await dumpDatabase(t);
    await expect(importNow()).rejects.toThrow(
      'the database holds one group under two links: targets rows "t.me/Kharkiv_Auto" (id 1) and "@kharkiv_auto" (id 2) are one group',
    );
    expect(await dumpDatabase(t)).toEqual(before);
  });

  it('refuses an account that is in the database already under another name', async () => {
    const config = await old.json('accounts_config.json');
    await insertAccount(t, 'old_name_for_kyiv_1', { session_string: config[0].string_session });
    const before = await dumpDatabase(t);
    await expect(importNow()).rejects.toThrow(
      'accounts_config.json: "lexus_kyiv_1" has the same session as the account "old_name_for_kyiv_1" in the database: one Telegram account under two names',
    );
    expect(await dumpDatabase(t)).toEqual(before);
  });

  it('writes all or nothing: a failure half-way leaves the database as it was', async () => {
    await insertAccount(t, 'someone_else');
    const before = await dumpDatabase(t);
    // The database refuses one of the groups, after the accounts were already written.
    await t.query(`CREATE FUNCTION refuse_kharkiv() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF NEW.link = '@kharkiv_auto' THEN RAISE EXCEPTION 'disk full (simulated)'; END IF; RETURN NEW; END $$;
      CREATE TRIGGER refuse_kharkiv BEFORE INSERT ON targets FOR EACH ROW EXECUTE FUNCTION refuse_kharkiv()`);
    try {
      await expect(importNow()).rejects.toThrow('disk full (simulated)');
      expect(await dumpDatabase(t)).toEqual(before);
    } finally {
      await t.query('DROP TRIGGER refuse_kharkiv ON targets; DROP FUNCTION refuse_kharkiv()');
    }
  });
});

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createDataSource, runMigrations } from '../src/db/database';
import { MIGRATION_NAMES } from '../src/db/migrations';
import { loadDrivableAccounts } from '../src/sql/accounts';
import { createEmptyDatabase, createTestDatabase, type TestDatabase } from './helpers/database';

const SEED_DDL = readFileSync(path.resolve(__dirname, 'fixtures/seed-schema.sql'), 'utf8');

// What the old Python system could have left behind: accounts, bound and unbound groups, history.
/** Columns the daemon adds to the seed's tables (migration AccountConnectionSettings). */
const ADDED_COLUMNS = [
  'accounts.api_id',
  'accounts.api_hash',
  'accounts.proxy',
  'accounts.imported_session_sha256',
  'accounts.status_reason',
  'targets.status_reason',
  'targets.next_post_allowed_at',
  'targets.join_claimed_by',
  'targets.join_retry_at',
  'accounts.call_started_at',
  'accounts.driven_by',
  'accounts.driven_until',
  'accounts.limited_since',
  'accounts.first_driven_at',
  'accounts.seasoned',
  'accounts.next_post_planned_at',
  'accounts.last_post_at',
  'accounts.limited_until',
  'accounts.config_problem',
  'accounts.last_connect_at',
  'accounts.last_connect_outcome',
  'targets.join_uncertain',
  'targets.peer_access_hash',
  'targets.closed_at',
  'targets.refused_account_id',
  'targets.reopened_at',
  'targets.reopen_count',
  'targets.post_hold_kind',
];

const LEGACY_ROWS = `
  INSERT INTO accounts (phone, session_string, session_name, status, daily_posts_count, last_stats_reset, created_at)
  VALUES ('+380501112233', '1AgAOMTQ5LjE1NC4xNjcuNTAAUB...', 'lexus_acc_1', 'active', 3, '2026-03-09 08:00:00', '2026-01-01 10:00:00'),
         ('+380501112244', NULL, 'lexus_acc_2', 'flood_wait', 0, NULL, '2026-01-02 10:00:00');
  INSERT INTO targets (telegram_id, link, title, niche, status, assigned_account_id, joined_at, warmup_ends_at, daily_posts_in_group)
  VALUES (1001234567890, '@autobazar_ua', 'Авторынок Украина', 'ukraine_cars', 'joined', 1, '2026-03-01 12:00:00', '2026-03-02 12:00:00', 1),
         (NULL, 't.me/kyiv_cars', NULL, 'ukraine_cars', 'new', NULL, NULL, NULL, 0);
  INSERT INTO post_history (account_id, target_id, message_content, photo_path, status, created_at)
  VALUES (1, 1, 'Продається Lexus IS 250', 'lexus_assets/lexus_variant_1.jpg', 'success', '2026-03-09 08:00:00');
`;

interface ColumnInfo {
  table_name: string;
  column_name: string;
  data_type: string;
  character_maximum_length: number | null;
  is_nullable: string;
  column_default: string | null;
}

async function describeSchema(t: TestDatabase) {
  const columns = await t.query<ColumnInfo>(
    `SELECT table_name, column_name, data_type, character_maximum_length, is_nullable, column_default
       FROM information_schema.columns
      WHERE table_schema = 'public' AND table_name IN ('accounts', 'targets', 'post_history')
      ORDER BY table_name, ordinal_position`,
  );
  const constraints = await t.query<{ conname: string; def: string }>(
    `SELECT conrelid::regclass::text || '.' || contype::text AS conname, pg_get_constraintdef(oid) AS def
       FROM pg_constraint
      WHERE conrelid::regclass::text IN ('accounts', 'targets', 'post_history')
      ORDER BY 1, 2`,
  );
  return { columns, constraints };
}

let open: TestDatabase[] = [];
async function database(options: Parameters<typeof createTestDatabase>[0] = {}) {
  const t = await createTestDatabase(options);
  open.push(t);
  return t;
}
afterEach(async () => {
  await Promise.all(open.map((t) => t.close()));
  open = [];
});

const seedColumnsOnly = (schema: Awaited<ReturnType<typeof describeSchema>>) => ({
  columns: schema.columns.filter((c) => !ADDED_COLUMNS.includes(`${c.table_name}.${c.column_name}`)),
  constraints: schema.constraints.filter(
    (c) =>
      !c.def.includes('join_claimed_by') &&
      !c.def.includes('refused_account_id') &&
      c.def !== 'NOT NULL join_uncertain' &&
      c.def !== 'NOT NULL reopen_count' &&
      c.def !== 'NOT NULL seasoned',
  ),
});

describe('the migrations', () => {
  it('on an empty database create exactly the seed schema, plus the columns the daemon adds', async () => {
    const migrated = await database();
    const seeded = await database({ migrate: false, before: SEED_DDL });
    // Same columns, types, lengths, nullability, defaults, keys, uniques and FK actions as the DDL.
    const schema = await describeSchema(migrated);
    expect(seedColumnsOnly(schema)).toEqual(await describeSchema(seeded));
    expect(
      schema.columns
        .filter((c) => ADDED_COLUMNS.includes(`${c.table_name}.${c.column_name}`))
        .map((c) => [c.column_name, c.data_type, c.is_nullable]),
    ).toEqual([
      ['api_id', 'integer', 'YES'],
      ['api_hash', 'character varying', 'YES'],
      ['proxy', 'text', 'YES'],
      ['imported_session_sha256', 'character varying', 'YES'],
      ['status_reason', 'text', 'YES'],
      ['call_started_at', 'timestamp without time zone', 'YES'],
      ['driven_by', 'character varying', 'YES'],
      ['driven_until', 'timestamp without time zone', 'YES'],
      ['limited_since', 'timestamp without time zone', 'YES'],
      ['limited_until', 'timestamp without time zone', 'YES'],
      ['first_driven_at', 'timestamp without time zone', 'YES'],
      ['seasoned', 'boolean', 'NO'],
      ['next_post_planned_at', 'timestamp without time zone', 'YES'],
      ['last_post_at', 'timestamp without time zone', 'YES'],
      ['config_problem', 'text', 'YES'],
      ['last_connect_at', 'timestamp without time zone', 'YES'],
      ['last_connect_outcome', 'character varying', 'YES'],
      ['status_reason', 'text', 'YES'],
      ['next_post_allowed_at', 'timestamp without time zone', 'YES'],
      ['join_claimed_by', 'integer', 'YES'],
      ['join_retry_at', 'timestamp without time zone', 'YES'],
      ['join_uncertain', 'boolean', 'NO'],
      ['peer_access_hash', 'character varying', 'YES'],
      ['closed_at', 'timestamp without time zone', 'YES'],
      ['refused_account_id', 'integer', 'YES'],
      ['reopened_at', 'timestamp without time zone', 'YES'],
      ['reopen_count', 'integer', 'NO'],
      ['post_hold_kind', 'character varying', 'YES'],
    ]);
    const fks = (await describeSchema(migrated)).constraints.filter((c) => c.conname.endsWith('.f')).map((c) => c.def);
    expect(fks.sort()).toEqual([
      'FOREIGN KEY (account_id) REFERENCES accounts(id) ON DELETE CASCADE',
      'FOREIGN KEY (assigned_account_id) REFERENCES accounts(id) ON DELETE SET NULL',
      'FOREIGN KEY (join_claimed_by) REFERENCES accounts(id) ON DELETE SET NULL',
      'FOREIGN KEY (refused_account_id) REFERENCES accounts(id) ON DELETE SET NULL',
      'FOREIGN KEY (target_id) REFERENCES targets(id) ON DELETE CASCADE',
    ]);
  });

  it('on a database the old system created keeps every table and row, and adds its indexes and triggers', async () => {
    const t = await database({ migrate: false, before: SEED_DDL + LEGACY_ROWS });
    const dump = async () => ({
      accounts: await t.query('SELECT * FROM accounts ORDER BY id'),
      targets: await t.query<Record<string, unknown>>('SELECT * FROM targets ORDER BY id'),
      history: await t.query('SELECT * FROM post_history ORDER BY id'),
    });
    const before = await dump();
    const schemaBefore = await describeSchema(t);

    expect(await runMigrations(t.dataSource)).toEqual(MIGRATION_NAMES);
    // Driven before: its ramp-up counts from its first post of the history, its pace from its
    // last (compared in SQL, as stored, whatever the host's zone).
    expect(
      await t.query(`SELECT id, first_driven_at = TIMESTAMP '2026-03-09 08:00:00' AS first, last_post_at = TIMESTAMP '2026-03-09 08:00:00' AS last
                            FROM accounts ORDER BY id`),
    ).toEqual([
      { id: 1, first: true, last: true },
      { id: 2, first: null, last: null },
    ]);

    // Every row and value as it was; accounts gain the added columns, empty; the one link the
    // old system stored un-normalized is normalized.
    expect(await dump()).toEqual({
      ...before,
      accounts: before.accounts.map((a) => ({
        ...a,
        api_id: null,
        api_hash: null,
        proxy: null,
        imported_session_sha256: null,
        status_reason: null,
        call_started_at: null,
        driven_by: null,
        driven_until: null,
        limited_since: null,
        limited_until: null,
        first_driven_at: a.id === 1 ? expect.any(Date) : null,
        last_post_at: a.id === 1 ? expect.any(Date) : null,
        seasoned: false,
        next_post_planned_at: null,
        config_problem: null,
        last_connect_at: null,
        last_connect_outcome: null,
      })),
      targets: (before.targets as Record<string, unknown>[])
        .map(
          (t): Record<string, unknown> => ({
            ...t,
            status_reason: null,
            next_post_allowed_at: null,
            join_claimed_by: null,
            join_retry_at: null,
            join_uncertain: false,
            peer_access_hash: null,
            closed_at: null,
            refused_account_id: null,
            reopened_at: null,
            reopen_count: 0,
            post_hold_kind: null,
          }),
        )
        .map((t) => (t.link === 't.me/kyiv_cars' ? { ...t, link: '@kyiv_cars', updated_at: expect.any(Date) } : t)),
    });
    expect(seedColumnsOnly(await describeSchema(t))).toEqual(schemaBefore);
    const indexes = (
      await t.query<{ indexname: string }>(`SELECT indexname FROM pg_indexes WHERE schemaname = 'public'`)
    ).map((r) => r.indexname);
    expect(indexes).toEqual(
      expect.arrayContaining([
        'targets_ready_by_niche_idx',
        'targets_ready_by_account_idx',
        'post_history_pending_idx',
      ]),
    );
    const triggers = (
      await t.query<{ tgname: string }>(`SELECT tgname FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1`)
    ).map((r) => r.tgname);
    expect(triggers).toEqual([
      'post_history_only_bound_account',
      'targets_binding_is_permanent',
      'targets_uncertain_claim_stays',
    ]);

    // The legacy rows are usable by the new code: the bound group is ready on the legacy account.
    t.clock.set('2026-03-10T09:00:00Z');
    const ready = await t.db.getGroupsReadyForPosting('ukraine_cars');
    expect(ready.map((g) => [g.link, g.assignedAccount?.sessionName])).toEqual([['@autobazar_ua', 'lexus_acc_1']]);
  });

  it('is idempotent: a second run does nothing', async () => {
    const t = await database();
    expect(await runMigrations(t.dataSource)).toEqual([]);
    const migrations = await t.query<{ name: string }>('SELECT name FROM lexus_migrations');
    expect(migrations.map((m) => m.name)).toEqual(MIGRATION_NAMES);
  });

  it('runs once when several processes start at the same moment', async () => {
    const { connection, drop } = await createEmptyDatabase();
    const sources = Array.from({ length: 4 }, () => createDataSource(connection, { poolSize: 2 }));
    try {
      await Promise.all(sources.map((s) => s.initialize()));
      const ran = await Promise.all(sources.map((s) => runMigrations(s)));
      expect(ran.flat()).toEqual(MIGRATION_NAMES);
    } finally {
      await Promise.all(sources.map((s) => s.destroy()));
      await drop();
    }
  });

  it('uses its own migrations table, so it can share a database with another TypeORM app', async () => {
    const t = await database({
      before: `CREATE TABLE migrations (id SERIAL PRIMARY KEY, "timestamp" bigint NOT NULL, name varchar NOT NULL);
      INSERT INTO migrations ("timestamp", name) VALUES (1, 'BaliSchema1');`,
    });
    expect(await t.query('SELECT name FROM migrations')).toEqual([{ name: 'BaliSchema1' }]);
    expect(await t.query('SELECT name FROM lexus_migrations ORDER BY id')).toEqual(
      MIGRATION_NAMES.map((name) => ({ name })),
    );
  });

  it("can be undone without touching the seed's tables or their rows", async () => {
    const t = await database({ before: SEED_DDL + LEGACY_ROWS });
    for (const _ of MIGRATION_NAMES) await t.dataSource.undoLastMigration();
    expect(await t.query<{ n: number }>('SELECT count(*)::int AS n FROM targets')).toEqual([{ n: 2 }]);
    expect(await t.query(`SELECT tgname FROM pg_trigger WHERE NOT tgisinternal`)).toEqual([]);
    expect(seedColumnsOnly(await describeSchema(t)).columns).toEqual((await describeSchema(t)).columns);
    expect(await runMigrations(t.dataSource)).toEqual(MIGRATION_NAMES);
  });
});

describe('accounts whose own settings cannot be used', () => {
  it('are found among the accounts stored before, by the same rule as the import and the gateway, and not driven', async () => {
    const t = await database();
    // Back to before AccountConfigProblem (and what came after it).
    while (
      !(
        await t.query<{ name: string }>(`SELECT name FROM lexus_migrations ORDER BY id DESC LIMIT 1`)
      )[0]!.name.startsWith('PostingPlan')
    )
      await t.dataSource.undoLastMigration();
    await t.query(`INSERT INTO accounts (session_name, session_string, proxy) VALUES
      ('http_proxy', '1session', 'http://user:pw@10.0.0.1:3128'), ('socks_proxy', '1session', 'socks5://user:pw@10.0.0.1:1080')`);
    await t.query(
      `INSERT INTO accounts (session_name, session_string, api_id) VALUES ('half_credentials', '1session', 12345)`,
    );
    expect(await runMigrations(t.dataSource)).toEqual(
      MIGRATION_NAMES.slice(MIGRATION_NAMES.indexOf('AccountConfigProblem1764900000000')),
    );
    expect(await t.query(`SELECT session_name, config_problem FROM accounts ORDER BY id`)).toEqual([
      {
        session_name: 'http_proxy',
        config_problem: expect.stringMatching(/^GramJS cannot use a HTTP proxy; use socks5:/),
      },
      { session_name: 'socks_proxy', config_problem: null },
      { session_name: 'half_credentials', config_problem: expect.stringMatching(/^api_id and api_hash go together/) },
    ]);
    expect((await loadDrivableAccounts(t.dataSource)).map((a) => a.sessionName)).toEqual(['socks_proxy']);
  });
});

describe('one group is one chat', () => {
  it("closes the old system's second rows of a chat as duplicates of the bound (else the oldest) row, then keeps one row per chat", async () => {
    const t = await database({
      migrate: false,
      before:
        SEED_DDL +
        LEGACY_ROWS +
        `
      INSERT INTO targets (telegram_id, link, niche, status) VALUES
        (1001234567890, 'https://t.me/+AutobazarInvite', 'ukraine_cars', 'new'),
        (1009999999999, '@odesa_cars', 'ukraine_cars', 'new'),
        (1009999999999, '@odesa_auto', 'ukraine_cars', 'new');`,
    });
    await runMigrations(t.dataSource);
    expect(
      await t.query('SELECT link, status, status_reason FROM targets WHERE telegram_id IS NOT NULL ORDER BY id'),
    ).toEqual([
      { link: '@autobazar_ua', status: 'joined', status_reason: null },
      {
        link: 'https://t.me/+AutobazarInvite',
        status: 'duplicate',
        status_reason: 'the same chat as @autobazar_ua (target #1)',
      },
      { link: '@odesa_cars', status: 'new', status_reason: null },
      { link: '@odesa_auto', status: 'duplicate', status_reason: 'the same chat as @odesa_cars (target #4)' },
    ]);
    await expect(t.query(`UPDATE targets SET status = 'new' WHERE link = '@odesa_auto'`)).rejects.toThrow(
      /targets_one_row_per_chat_idx/,
    );
  });

  it('never moves a claim whose join may have happened to another account', async () => {
    const t = await database();
    const [a, b] = await t.query<{ id: number }>(
      `INSERT INTO accounts (session_name) VALUES ('a'), ('b') RETURNING id`,
    );
    await t.query(
      `INSERT INTO targets (link, niche, status, join_claimed_by, join_uncertain) VALUES ('@group_one', 'ukraine_cars', 'new', $1, true)`,
      [a!.id],
    );
    await expect(t.query(`UPDATE targets SET join_claimed_by = NULL`)).rejects.toThrow(/may already have account/);
    await expect(t.query(`UPDATE targets SET join_claimed_by = $1`, [b!.id])).rejects.toThrow(
      /may already have account/,
    );
    // Bound to that very account, the claim ends.
    expect(await t.db.assignGroup('@group_one', a!.id)).toBe(true);
    expect(await t.query('SELECT assigned_account_id, join_claimed_by, join_uncertain FROM targets')).toEqual([
      { assigned_account_id: a!.id, join_claimed_by: null, join_uncertain: false },
    ]);
  });
});

describe('the entities', () => {
  it('map the migrated schema exactly: TypeORM finds nothing to change', async () => {
    const t = await database();
    const diff = await t.dataSource.driver.createSchemaBuilder().log();
    expect(diff.upQueries.map((q) => q.query)).toEqual([]);
  });

  it("map the old system's schema exactly too", async () => {
    const t = await database({ before: SEED_DDL + LEGACY_ROWS });
    const diff = await t.dataSource.driver.createSchemaBuilder().log();
    expect(diff.upQueries.map((q) => q.query)).toEqual([]);
  });
});

describe('links the old system stored', () => {
  it('are normalized, so that the daemon finds the group and never gives it to a second account', async () => {
    const t = await database({
      migrate: false,
      before:
        SEED_DDL +
        LEGACY_ROWS +
        `
      INSERT INTO targets (link, niche, status, assigned_account_id, joined_at, warmup_ends_at)
      VALUES ('https://t.me/Lviv_Cars', 'ukraine_cars', 'joined', 1, '2026-03-01 12:00:00', '2026-03-02 12:00:00'),
             ('t.me/c/123/45', 'ukraine_cars', 'new', NULL, NULL, NULL);`,
    });
    await runMigrations(t.dataSource);
    expect(await t.query('SELECT link FROM targets ORDER BY id')).toEqual([
      { link: '@autobazar_ua' },
      { link: '@kyiv_cars' },
      { link: '@lviv_cars' },
      { link: 't.me/c/123/45' },
    ]);
    const [other] = await t.query<{ id: number }>(`INSERT INTO accounts (session_name) VALUES ('other') RETURNING id`);
    expect(await t.db.assignGroup('https://t.me/lviv_cars', other!.id)).toBe(false);
    expect(await t.db.assignGroup('@LVIV_CARS', 1)).toBe(true);
    expect(await t.query<{ n: number }>('SELECT count(*)::int AS n FROM targets')).toEqual([{ n: 4 }]);
  });

  it('stop the migration when one group has two rows, naming them, and change nothing', async () => {
    const t = await database({
      migrate: false,
      before:
        SEED_DDL +
        LEGACY_ROWS +
        `
      INSERT INTO targets (link, niche, status) VALUES ('@kyiv_cars', 'ukraine_cars', 'new');`,
    });
    await expect(runMigrations(t.dataSource)).rejects.toThrow(
      'the database holds one group under two links: targets rows "t.me/kyiv_cars" (id 2) and "@kyiv_cars" (id 3) are one group',
    );
    expect(await t.query('SELECT link FROM targets ORDER BY id')).toEqual([
      { link: '@autobazar_ua' },
      { link: 't.me/kyiv_cars' },
      { link: '@kyiv_cars' },
    ]);
    expect(
      (await t.query<{ name: string }>('SELECT name FROM lexus_migrations ORDER BY id')).map((m) => m.name),
    ).toEqual(MIGRATION_NAMES.slice(0, 2));
  });
});

/**
 * Rows written straight with SQL, so that tests set up state without going through the code
 * they test. Times are UTC ISO strings.
 */
import type { TestDatabase } from './database';

/** Columns of an accounts row a test may set; times as UTC ISO strings (stored without the zone). */
export interface AccountFields {
  status?: string;
  status_reason?: string | null;
  daily_posts_count?: number;
  last_stats_reset?: string | null;
  next_allowed_action_time?: string | null;
  session_string?: string | null;
  api_id?: number | null;
  api_hash?: string | null;
  proxy?: string | null;
  phone?: string | null;
  seasoned?: boolean;
  limited_since?: string | null;
  limited_until?: string | null;
  first_driven_at?: string | null;
  next_post_planned_at?: string | null;
  call_started_at?: string | null;
  driven_by?: string | null;
  driven_until?: string | Date | null;
  last_connect_at?: string | null;
  last_connect_outcome?: string | null;
}

/** Set on every row (as the old system's INSERT did); the other columns only when given. */
const ALWAYS_SET = [
  'status',
  'daily_posts_count',
  'last_stats_reset',
  'next_allowed_action_time',
  'session_string',
] as const;
const OPTIONAL: readonly (keyof AccountFields)[] = [
  'status_reason',
  'api_id',
  'api_hash',
  'proxy',
  'phone',
  'seasoned',
  'limited_since',
  'limited_until',
  'first_driven_at',
  'next_post_planned_at',
  'call_started_at',
  'driven_by',
  'driven_until',
  'last_connect_at',
  'last_connect_outcome',
];

export async function insertAccount(t: TestDatabase, name: string, fields: AccountFields = {}): Promise<number> {
  const defaults: Pick<AccountFields, (typeof ALWAYS_SET)[number]> = {
    status: 'active',
    daily_posts_count: 0,
    last_stats_reset: null,
    next_allowed_action_time: null,
    session_string: null,
  };
  const columns: (keyof AccountFields)[] = [...ALWAYS_SET, ...OPTIONAL.filter((c) => fields[c] !== undefined)];
  const values = columns.map((c) => (fields[c] === undefined ? defaults[c as (typeof ALWAYS_SET)[number]] : fields[c]));
  const [row] = await t.query<{ id: number }>(
    `INSERT INTO accounts (session_name, ${columns.join(', ')}) VALUES ($1, ${columns.map((_, i) => `$${i + 2}`).join(', ')}) RETURNING id`,
    [name, ...values],
  );
  return row!.id;
}

/** An account the daemon can drive: with a (fake) session, and any other `fields`. */
export function insertDrivableAccount(t: TestDatabase, name: string, fields: AccountFields = {}): Promise<number> {
  return insertAccount(t, name, { session_string: `1fake-${name}`, ...fields });
}

export interface TargetFields {
  niche?: string;
  status?: string;
  assigned_account_id?: number | null;
  joined_at?: string | null;
  warmup_ends_at?: string | null;
  last_post_at?: string | null;
  daily_posts_in_group?: number;
  last_group_stats_reset?: string | null;
}

export async function insertTarget(t: TestDatabase, link: string, fields: TargetFields = {}): Promise<number> {
  const joinedAt = fields.joined_at === undefined ? null : fields.joined_at;
  const [row] = await t.query<{ id: number }>(
    `INSERT INTO targets (link, niche, status, assigned_account_id, joined_at, warmup_ends_at, last_post_at,
                          daily_posts_in_group, last_group_stats_reset)
     VALUES ($1, $2, $3, $4, $5::timestamp, COALESCE($6::timestamp, $5::timestamp + interval '24 hours'), $7, $8, $9)
     RETURNING id`,
    [
      link,
      fields.niche ?? 'ukraine_cars',
      fields.status ?? 'new',
      fields.assigned_account_id ?? null,
      joinedAt,
      fields.warmup_ends_at ?? null,
      fields.last_post_at ?? null,
      fields.daily_posts_in_group ?? 0,
      fields.last_group_stats_reset ?? null,
    ],
  );
  return row!.id;
}

/** A group bound to `accountId`, joined `joinedHoursAgo` before `now`: ready when that is >= 24. */
export async function insertBoundTarget(
  t: TestDatabase,
  link: string,
  accountId: number,
  fields: TargetFields = {},
): Promise<number> {
  return insertTarget(t, link, {
    status: 'joined',
    assigned_account_id: accountId,
    joined_at: new Date(t.clock.now().getTime() - 48 * 3600_000).toISOString(),
    ...fields,
  });
}

/** A timestamp column as PostgreSQL stores it (no time-zone conversion anywhere). */
export async function storedText(t: TestDatabase, table: string, column: string, id: number): Promise<string | null> {
  const [row] = await t.query<{ v: string | null }>(
    `SELECT to_char(${column}, 'YYYY-MM-DD"T"HH24:MI:SS.MS') AS v FROM ${table} WHERE id = $1`,
    [id],
  );
  return row ? row.v : null;
}

export async function counters(t: TestDatabase, accountId: number, targetId: number) {
  const [a] = await t.query<{ n: number }>('SELECT daily_posts_count AS n FROM accounts WHERE id = $1', [accountId]);
  const [g] = await t.query<{ n: number }>('SELECT daily_posts_in_group AS n FROM targets WHERE id = $1', [targetId]);
  return { account: a!.n, group: g!.n };
}

export async function historyStatuses(t: TestDatabase): Promise<string[]> {
  return (await t.query<{ status: string }>('SELECT status FROM post_history ORDER BY id')).map((r) => r.status);
}

/** Every row of the daemon's tables, as PostgreSQL's own text, to compare a database before and after. */
export async function dumpDatabase(t: TestDatabase): Promise<Record<string, string[]>> {
  const dump: Record<string, string[]> = {};
  for (const table of ['accounts', 'targets', 'post_history', 'lexus_migrations']) {
    const rows = await t.query<{ row: string }>(`SELECT CAST(x AS text) AS row FROM ${table} x ORDER BY id`);
    dump[table] = rows.map((r) => r.row);
  }
  return dump;
}

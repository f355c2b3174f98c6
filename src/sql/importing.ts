/**
 * The import's writes (lexus import, src/import/writeImport.ts): accounts created or updated from
 * the old system's files, their settings' problems kept, targets created, and the report's counts.
 * All run in the import's one transaction (its QueryRunner). Each operation is one function with
 * its SQL in full; "now" comes from the caller, as the UTC ISO text of sqlTime.
 */
import type { QueryRunner } from 'typeorm';
import { FLEET_BY_STATUS_SQL } from './fleet';
import { sql } from './sql';

/** Serialises imports: two at once would race on the same rows. */
const IMPORT_LOCK_KEY = 0x6c78696d70; // "lximp"

/** Waits for any other import to end; held until this transaction ends. */
export async function lockImports(runner: QueryRunner): Promise<void> {
  await sql(runner, 'SELECT pg_advisory_xact_lock(:key)', { key: IMPORT_LOCK_KEY });
}

export interface ImportedAccountRow {
  id: number;
  session_name: string;
  phone: string | null;
  session_string: string | null;
  api_id: number | null;
  api_hash: string | null;
  proxy: string | null;
  imported_session_sha256: string | null;
}

/** Accounts under other names than `names` that have one of these sessions or phones. */
export async function findOtherAccountsWith(
  runner: QueryRunner,
  input: { names: string[]; sessions: string[]; phones: string[] },
): Promise<{ session_name: string; session_string: string | null; phone: string | null }[]> {
  const { rows } = await sql<{ session_name: string; session_string: string | null; phone: string | null }>(
    runner,
    `SELECT session_name, session_string, phone FROM accounts
      WHERE session_name <> ALL(CAST(:names AS text[]))
        AND (session_string = ANY(CAST(:sessions AS text[])) OR phone = ANY(CAST(:phones AS text[])))`,
    input,
  );
  return rows;
}

/** The accounts of these names, locked until the import ends. */
export async function lockAccountsByName(runner: QueryRunner, names: string[]): Promise<ImportedAccountRow[]> {
  const { rows } = await sql<ImportedAccountRow>(
    runner,
    `SELECT id, session_name, phone, session_string, api_id, api_hash, proxy, imported_session_sha256
       FROM accounts WHERE session_name = ANY(CAST(:names AS text[])) FOR UPDATE`,
    { names },
  );
  return rows;
}

export type ImportedAccountValues = {
  phone: string | null;
  session: string | null;
  /** sha256 of the session the files gave (what the next import compares with). */
  hash: string | null;
  apiId: number | null;
  apiHash: string | null;
  proxy: string | null;
  now: string;
};

/** A new account from the files, active, with no post yet; returns its id. */
export async function insertImportedAccount(
  runner: QueryRunner,
  input: ImportedAccountValues & { sessionName: string },
): Promise<number> {
  const { rows } = await sql<{ id: number }>(
    runner,
    `INSERT INTO accounts (session_name, phone, session_string, imported_session_sha256, api_id, api_hash, proxy,
                           status, daily_posts_count, created_at, updated_at)
     VALUES (:sessionName, :phone, :session, :hash, :apiId, :apiHash, :proxy,
             'active', 0, CAST(:now AS timestamp), CAST(:now AS timestamp))
     RETURNING id`,
    input,
  );
  return rows[0]!.id;
}

/**
 * An existing account takes the files' values where they give one (NULL keeps the database's);
 * updated_at moves only when something the person sees `changed`.
 */
export async function updateImportedAccount(
  runner: QueryRunner,
  input: ImportedAccountValues & { id: number; changed: boolean },
): Promise<void> {
  await sql(
    runner,
    `UPDATE accounts
        SET phone = COALESCE(:phone, phone),
            session_string = COALESCE(:session, session_string),
            imported_session_sha256 = COALESCE(:hash, imported_session_sha256),
            api_id = COALESCE(:apiId, api_id),
            api_hash = COALESCE(:apiHash, api_hash),
            proxy = COALESCE(:proxy, proxy),
            updated_at = CASE WHEN CAST(:changed AS boolean) THEN CAST(:now AS timestamp) ELSE updated_at END
      WHERE id = :id`,
    input,
  );
}

/** The connection settings of these accounts as stored, and the problem last found with them. */
export async function loadAccountSettings(
  runner: QueryRunner,
  ids: number[],
): Promise<
  {
    id: number;
    session_name: string;
    api_id: number | null;
    api_hash: string | null;
    proxy: string | null;
    config_problem: string | null;
  }[]
> {
  const { rows } = await sql<{
    id: number;
    session_name: string;
    api_id: number | null;
    api_hash: string | null;
    proxy: string | null;
    config_problem: string | null;
  }>(
    runner,
    `SELECT id, session_name, api_id, api_hash, proxy, config_problem FROM accounts WHERE id = ANY(CAST(:ids AS int[])) ORDER BY id`,
    { ids },
  );
  return rows;
}

/** The account's settings cannot be used (no daemon drives it), or can again (null). */
export async function setConfigProblem(runner: QueryRunner, id: number, problem: string | null): Promise<void> {
  await sql(runner, `UPDATE accounts SET config_problem = :problem WHERE id = :id`, { id, problem });
}

/** Marks these accounts as run before (no ramp-up); returns the names of those it changed. */
export async function markSeasoned(runner: QueryRunner, ids: number[]): Promise<string[]> {
  const { rows } = await sql<{ session_name: string }>(
    runner,
    `UPDATE accounts SET seasoned = true WHERE id = ANY(CAST(:ids AS int[])) AND NOT seasoned RETURNING session_name`,
    { ids },
  );
  return rows.map((r) => r.session_name);
}

/** Creates the groups not in the database yet (status new); returns the links it created. */
export async function insertNewTargets(
  runner: QueryRunner,
  input: { links: string[]; niches: string[]; now: string },
): Promise<string[]> {
  const { rows } = await sql<{ link: string }>(
    runner,
    `INSERT INTO targets (link, niche, status, daily_posts_in_group, created_at, updated_at)
     SELECT link, niche, 'new', 0, CAST(:now AS timestamp), CAST(:now AS timestamp)
       FROM unnest(CAST(:links AS text[]), CAST(:niches AS text[])) AS given(link, niche)
     ON CONFLICT (link) DO NOTHING
     RETURNING link`,
    input,
  );
  return rows.map((r) => r.link);
}

/** Gives these groups the niche the files name; returns the links whose niche changed. */
export async function setTargetNiches(
  runner: QueryRunner,
  input: { links: string[]; niches: string[]; now: string },
): Promise<string[]> {
  const { rows } = await sql<{ link: string }>(
    runner,
    `UPDATE targets AS t SET niche = given.niche, updated_at = CAST(:now AS timestamp)
       FROM unnest(CAST(:links AS text[]), CAST(:niches AS text[])) AS given(link, niche)
      WHERE t.link = given.link AND t.niche IS DISTINCT FROM given.niche
      RETURNING t.link`,
    input,
  );
  return rows.map((r) => r.link);
}

/** These groups as the database has them: status, bound account (and its name), join time. */
export async function loadBindingsOf(
  runner: QueryRunner,
  links: string[],
): Promise<
  {
    link: string;
    status: string | null;
    assigned_account_id: number | null;
    bound_to: string | null;
    joined_at: Date | null;
  }[]
> {
  const { rows } = await sql<{
    link: string;
    status: string | null;
    assigned_account_id: number | null;
    bound_to: string | null;
    joined_at: Date | null;
  }>(
    runner,
    `SELECT t.link, t.status, t.assigned_account_id, a.session_name AS bound_to, t.joined_at
       FROM targets t LEFT JOIN accounts a ON a.id = t.assigned_account_id
      WHERE t.link = ANY(CAST(:links AS text[]))`,
    { links },
  );
  return rows;
}

/** The seed's verification step: accounts, targets per niche (the fleet's count by status), bound targets. */
export async function countForImportReport(
  runner: QueryRunner,
): Promise<{ accounts: number; targetsByNiche: Record<string, number>; boundTargets: number }> {
  const { rows } = await sql<{ kind: string; niche: string | null; n: number }>(
    runner,
    `SELECT f.kind, f.niche, f.n FROM (${FLEET_BY_STATUS_SQL}) f
     UNION ALL SELECT 'bound', NULL, count(*)::int FROM targets WHERE assigned_account_id IS NOT NULL`,
  );
  const counts = { accounts: 0, targetsByNiche: {} as Record<string, number>, boundTargets: 0 };
  for (const row of rows) {
    if (row.kind === 'account') counts.accounts += row.n;
    else if (row.kind === 'bound') counts.boundTargets = row.n;
    else counts.targetsByNiche[row.niche ?? ''] = (counts.targetsByNiche[row.niche ?? ''] ?? 0) + row.n;
  }
  return counts;
}

/**
 * Sessions (lexus login and lexus logout, src/telegram/login.ts): an account looked up by its
 * session name, the session a login made saved (creating the account if missing), and a session
 * cleared after logout. Each operation is one function with its SQL in full; "now" comes from
 * the caller, as the UTC ISO text of sqlTime.
 */
import { type Runner, sql } from './sql';

/** What logging in and out needs of an account: its phone, session and connection settings. */
export interface SessionAccountRow {
  id: number;
  phone: string | null;
  session_string: string | null;
  api_id: number | null;
  api_hash: string | null;
  proxy: string | null;
  status: string | null;
}

/** The account of this session name, if any. */
export async function findAccountBySessionName(
  db: Runner,
  sessionName: string,
): Promise<SessionAccountRow | undefined> {
  const { rows } = await sql<SessionAccountRow>(
    db,
    `SELECT id, phone, session_string, api_id, api_hash, proxy, status FROM accounts WHERE session_name = :sessionName`,
    { sessionName },
  );
  return rows[0];
}

/**
 * Saves the session a login made: a new account (active, no post yet) if `sessionName` has none;
 * else its session replaced, its phone kept unless a new one is given, and a 'banned' account
 * (dead session) active again. Returns the account's id.
 */
export async function saveLoggedInSession(
  db: Runner,
  input: { sessionName: string; phone: string | null; session: string; now: string },
): Promise<number> {
  const { rows } = await sql<{ id: number }>(
    db,
    `INSERT INTO accounts AS a (session_name, phone, session_string, status, daily_posts_count, created_at, updated_at)
       VALUES (:sessionName, :phone, :session, 'active', 0, CAST(:now AS timestamp), CAST(:now AS timestamp))
       ON CONFLICT (session_name) DO UPDATE SET
         session_string = EXCLUDED.session_string,
         phone = COALESCE(EXCLUDED.phone, a.phone),
         status = CASE WHEN a.status = 'banned' THEN 'active' ELSE a.status END,
         updated_at = EXCLUDED.updated_at
       RETURNING id`,
    input,
  );
  return rows[0]!.id;
}

/** Forgets the account's session (after logout, or when Telegram said it was dead already). */
export async function clearSession(db: Runner, input: { id: number; now: string }): Promise<void> {
  await sql(
    db,
    `UPDATE accounts SET session_string = NULL, updated_at = CAST(:now AS timestamp) WHERE id = :id`,
    input,
  );
}

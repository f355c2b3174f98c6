/**
 * Advisory locks: which process drives which account (one lock per account, held by the
 * process's own connection: src/db/accountLocks.ts), and the one lock that serialises migrations.
 * These run on a plain connection of their own (a pg.Client, or the QueryRunner that migrates),
 * so they take a `query(text, values)` and use positional parameters; each is one statement.
 */

/** A connection that runs positional statements: a pg.Client, or a TypeORM QueryRunner. */
export interface Queryable {
  query(text: string, values?: unknown[]): Promise<unknown>;
}

const rowsOf = <Row>(result: unknown): Row[] =>
  (Array.isArray(result) ? result : ((result as { rows?: Row[] }).rows ?? [])) as Row[];

/** First key of the daemon's advisory locks ("lx" in ASCII); the second is the account id. */
export const ACCOUNT_LOCK_CLASS = 0x6c78;

/** SQL (in a statement with named parameters): the connection with backend pid :lockHolderPid holds account `a`'s lock. */
export const accountLockHeldSql = (a: string) =>
  `EXISTS (SELECT 1 FROM pg_locks l
            WHERE l.locktype = 'advisory' AND l.classid = ${ACCOUNT_LOCK_CLASS} AND l.objid = ${a}.id
              AND l.objsubid = 2 AND l.granted AND l.pid = CAST(:lockHolderPid AS integer))`;

/** The backend pid of this connection: what accountLockHeldSql names it by. */
export async function backendPid(client: Queryable): Promise<number> {
  return rowsOf<{ pid: number }>(await client.query('SELECT pg_backend_pid() AS pid'))[0]!.pid;
}

/** The accounts whose lock this very connection holds, as the database says (not our memory). */
export async function accountLocksHeldHere(client: Queryable): Promise<number[]> {
  const rows = rowsOf<{ id: number }>(
    await client.query(
      `SELECT objid::int AS id FROM pg_locks
        WHERE pid = pg_backend_pid() AND locktype = 'advisory' AND classid = $1 AND objsubid = 2 AND granted`,
      [ACCOUNT_LOCK_CLASS],
    ),
  );
  return rows.map((r) => r.id);
}

/** Tries to take each account's lock without waiting; returns the accounts whose lock it got. */
export async function tryAccountLocks(client: Queryable, accountIds: number[]): Promise<number[]> {
  const rows = rowsOf<{ id: number; got: boolean }>(
    await client.query('SELECT id, pg_try_advisory_lock($1, id) AS got FROM unnest($2::int[]) AS id', [
      ACCOUNT_LOCK_CLASS,
      accountIds,
    ]),
  );
  return rows.filter((r) => r.got).map((r) => r.id);
}

/** Lets one account's lock go. */
export async function releaseAccountLock(client: Queryable, accountId: number): Promise<void> {
  await client.query('SELECT pg_advisory_unlock($1, $2)', [ACCOUNT_LOCK_CLASS, accountId]);
}

/** Tries to take the migration lock (`key`) without waiting: true when this connection has it. */
export async function tryMigrationLock(client: Queryable, key: number): Promise<boolean> {
  return rowsOf<{ got: boolean }>(await client.query('SELECT pg_try_advisory_lock($1) AS got', [key]))[0]?.got === true;
}

/** Lets the migration lock (`key`) go. */
export async function releaseMigrationLock(client: Queryable, key: number): Promise<void> {
  await client.query('SELECT pg_advisory_unlock($1)', [key]);
}

/**
 * Who holds the migration lock (`key`) in this database: its application, client address,
 * backend pid and how long it has been connected; null when nobody does.
 */
export async function migrationLockHolder(
  client: Queryable,
  key: number,
): Promise<{ pid: number; application_name: string; client: string; age_s: number } | null> {
  const rows = rowsOf<{ pid: number; application_name: string; client: string; age_s: number }>(
    await client.query(
      `SELECT a.pid, a.application_name, COALESCE(host(a.client_addr), 'local') AS client, round(extract(epoch FROM clock_timestamp() - a.backend_start))::int AS age_s
         FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 AND ((l.classid::bigint << 32) | l.objid::bigint) = $1
          AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
      [key],
    ),
  );
  return rows[0] ?? null;
}

/** Lifts the migrations' bounds on this connection (an index on a large table takes what it takes), and puts them back. */
export async function setNoStatementTimeout(client: Queryable): Promise<void> {
  await client.query('SET statement_timeout = 0');
}

export async function resetStatementTimeout(client: Queryable): Promise<void> {
  await client.query('RESET statement_timeout');
}

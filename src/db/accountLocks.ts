/**
 * Which process drives which account. Each daemon holds one dedicated connection and takes a
 * session-level advisory lock per account it drives (pg_try_advisory_lock(LOCK_CLASS, account
 * id)). Telegram refuses one session used by two processes (AUTH_KEY_DUPLICATED), so one
 * account is only ever driven by one process; a process that dies loses its connection, and
 * with it its locks, and another process takes the accounts over on its next round.
 *
 * The lock is also a fence: reservePostSlot({ lockHolderPid }) checks in the same statement that
 * the lock is still held by that connection.
 */
import pg from 'pg';
import type { PostgresConnection } from '../config';
import { createPgClient } from './pgConnection';

/** First key of the daemon's advisory locks ("lx" in ASCII); the second is the account id. */
export const ACCOUNT_LOCK_CLASS = 0x6c78;

/** SQL: the connection with backend pid :lockHolderPid holds account `a`'s lock. */
export const accountLockHeldSql = (a: string) =>
  `EXISTS (SELECT 1 FROM pg_locks l
            WHERE l.locktype = 'advisory' AND l.classid = ${ACCOUNT_LOCK_CLASS} AND l.objid = ${a}.id
              AND l.objsubid = 2 AND l.granted AND l.pid = CAST(:lockHolderPid AS integer))`;

export class AccountLocks {
  private client: pg.Client | undefined;
  private pid: number | undefined;
  private readonly held = new Set<number>();
  private closed = false;

  constructor(private readonly connection: PostgresConnection) {}

  /** The backend pid holding the locks; undefined while not connected. */
  get holderPid(): number | undefined {
    return this.pid;
  }

  heldAccounts(): number[] {
    return [...this.held];
  }

  holds(accountId: number): boolean {
    return this.held.has(accountId);
  }

  /** Connects the lock connection if needed. A new connection holds no lock. */
  private async ensureConnected(): Promise<pg.Client> {
    if (this.closed) throw new Error('the account locks are closed');
    if (this.client) return this.client;
    const client = createPgClient(this.connection, {
      utcTimestamps: true,
      applicationName: 'lexus account locks',
      keepAliveInitialDelayMillis: 10_000,
      // A query on a connection that died silently fails within 5 s (the daemon asks every few
      // seconds); the server notices too (tcp_keepalives below, about 25 s) and frees the locks.
      queryTimeoutMs: 5_000,
      connectionTimeoutMillis: 5_000,
      // The server notices a vanished process (and frees its accounts) within about 30 s.
      settings: { tcp_keepalives_idle: 10, tcp_keepalives_interval: 5, tcp_keepalives_count: 3 },
    });
    client.on('error', () => this.lost());
    client.on('end', () => this.lost());
    await client.connect();
    const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    this.client = client;
    this.pid = rows[0]!.pid;
    return client;
  }

  /** The connection is gone: so are the locks. */
  private lost(): void {
    this.client = undefined;
    this.pid = undefined;
    this.held.clear();
  }

  /**
   * Asks the database which locks this very connection holds (no reconnect: a new connection
   * holds nothing). A connection that answers has held them without a break since it took them,
   * since the server frees a lock only when it is unlocked or its connection ends. Returns the
   * accounts held; throws when the connection is gone or does not answer (within 5 s).
   */
  private async confirm(): Promise<number[]> {
    const client = this.client;
    if (!client) throw new Error('the lock connection is gone');
    try {
      // What the database says this connection holds: the truth, not our memory.
      const { rows: holding } = await client.query<{ id: number }>(
        `SELECT objid::int AS id FROM pg_locks
          WHERE pid = pg_backend_pid() AND locktype = 'advisory' AND classid = $1 AND objsubid = 2 AND granted`,
        [ACCOUNT_LOCK_CLASS],
      );
      this.held.clear();
      for (const row of holding) this.held.add(row.id);
      return this.heldAccounts();
    } catch (error) {
      await this.drop();
      throw error;
    }
  }

  /**
   * Tries to take the lock of each account not held yet; returns the accounts held now. Throws
   * when the database cannot be reached (nothing is held then).
   */
  async acquire(accountIds: number[]): Promise<number[]> {
    const client = await this.ensureConnected();
    await this.confirm();
    const wanted = accountIds.filter((id) => !this.held.has(id));
    if (wanted.length > 0) {
      const { rows } = await client.query<{ id: number; got: boolean }>(
        'SELECT id, pg_try_advisory_lock($1, id) AS got FROM unnest($2::int[]) AS id',
        [ACCOUNT_LOCK_CLASS, wanted],
      );
      for (const row of rows) if (row.got) this.held.add(row.id);
    }
    return this.heldAccounts();
  }

  /** Gives one account up (it is gone or banned). */
  async release(accountId: number): Promise<void> {
    if (!this.held.delete(accountId) || !this.client) return;
    await this.client.query('SELECT pg_advisory_unlock($1, $2)', [ACCOUNT_LOCK_CLASS, accountId]).catch(() => undefined);
  }

  /**
   * Gives every account up by ending the connection (the server frees its locks at once); the
   * next acquire() connects afresh. For a process that can no longer vouch for its hold.
   */
  async reset(): Promise<void> {
    await this.drop();
  }

  /** Ends a connection that failed (its locks go with it). */
  private async drop(): Promise<void> {
    const client = this.client;
    this.lost();
    if (!client) return;
    // A connection that went silent may never answer the goodbye: its socket is cut after 2 s.
    const ended = client.end().catch(() => undefined);
    const timer = setTimeout(() => (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy(), 2_000);
    await ended;
    clearTimeout(timer);
  }

  /** Gives every account up and closes the connection; no lock is taken after this. */
  async close(): Promise<void> {
    this.closed = true;
    await this.drop();
  }
}

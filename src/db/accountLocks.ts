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
import type pg from 'pg';
import type { PostgresConnection } from '../config';
import { accountLocksHeldHere, backendPid, releaseAccountLock, tryAccountLocks } from '../sql/locks';
import { createPgClient } from './pgConnection';

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
    const pid = await backendPid(client);
    this.client = client;
    this.pid = pid;
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
      const holding = await accountLocksHeldHere(client);
      this.held.clear();
      for (const id of holding) this.held.add(id);
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
      for (const id of await tryAccountLocks(client, wanted)) this.held.add(id);
    }
    return this.heldAccounts();
  }

  /** Gives one account up (it is gone or banned). */
  async release(accountId: number): Promise<void> {
    if (!this.held.delete(accountId) || !this.client) return;
    await releaseAccountLock(this.client, accountId).catch(() => undefined);
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
    const timer = setTimeout(
      () => (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy(),
      2_000,
    );
    await ended;
    clearTimeout(timer);
  }

  /** Gives every account up and closes the connection; no lock is taken after this. */
  async close(): Promise<void> {
    this.closed = true;
    await this.drop();
  }
}

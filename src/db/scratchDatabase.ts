/**
 * A throw-away database beside the configured one, on the same server, for `lexus simulate` and
 * `npm run bench`: their made-up accounts and groups never touch the daemon's own data. Needs the
 * right to create databases (the embedded server's user has it).
 */
import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import type { Config, PostgresConnection } from '../config';
import { claimSignals } from '../processSignals';
import { createDatabase, dropDatabase, idleDatabasesMatching } from '../sql/server';
import { type EmbeddedNote, type EmbeddedServer, sharedDirsUnder, startEmbeddedPostgres } from './embeddedPostgres';
import { createPgClient } from './pgConnection';

export interface ScratchDatabase {
  connection: PostgresConnection;
  name: string;
  /** Scratch databases of the same prefix an interrupted run had left, dropped first. */
  leftovers: string[];
  drop(): Promise<void>;
  /** Keeps it: an interrupt no longer drops it. */
  keep(): void;
}

async function onServer<T>(connection: PostgresConnection, work: (client: pg.Client) => Promise<T>): Promise<T> {
  // The maintenance database, as createdb does; the configured one may not allow CREATE DATABASE in a transaction.
  const client = createPgClient(connection, { database: 'postgres', connectionTimeoutMillis: 10_000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * The scratch databases of this prefix that an interrupted run left behind, dropped: those
 * nobody is connected to (DROP without FORCE refuses one a running simulation uses).
 */
async function dropLeftovers(connection: PostgresConnection, prefix: string): Promise<string[]> {
  const idle = await onServer(connection, (client) => idleDatabasesMatching(client, `^${prefix}_[0-9a-f]{8}$`));
  const dropped: string[] = [];
  for (const datname of idle) {
    try {
      await onServer(connection, (client) => dropDatabase(client, datname));
      dropped.push(datname);
    } catch {
      // In use after all: it belongs to a run that is going on.
    }
  }
  return dropped;
}

/**
 * What SIGINT or SIGTERM cleans up before the process exits with 130, newest first: the scratch
 * databases not dropped yet, then the embedded server databaseServer started. An interrupted
 * simulation or benchmark leaves nothing behind.
 */
const onInterrupt: (() => Promise<void>)[] = [];

let interruptedAt: number | undefined;

function interrupted(): void {
  if (interruptedAt !== undefined) {
    // The same Ctrl-C seen twice (the terminal, and `npm run` passing it on) is one; a second
    // one a person gives leaves at once.
    if (Date.now() - interruptedAt >= 1000) process.exit(130);
    return;
  }
  interruptedAt = Date.now();
  process.stderr.write('interrupted: dropping the scratch database\n');
  void (async () => {
    for (const cleanup of [...onInterrupt].reverse()) await cleanup().catch(() => undefined);
  })().finally(() => process.exit(130));
}

/** The claim of SIGINT and SIGTERM (src/processSignals.ts) while a clean-up is pending. */
let releaseSignals: (() => void) | undefined;

function cleanUpOnInterrupt(cleanup: () => Promise<void>): () => void {
  releaseSignals ??= claimSignals(['SIGINT', 'SIGTERM'], interrupted);
  onInterrupt.push(cleanup);
  return () => {
    onInterrupt.splice(onInterrupt.indexOf(cleanup), 1);
    if (onInterrupt.length === 0 && interruptedAt === undefined) {
      releaseSignals?.();
      releaseSignals = undefined;
    }
  };
}

/**
 * Creates `<prefix>_<random>` on the server of `connection`, after dropping what an interrupted
 * run of the same prefix left (`leftovers`). Until drop() or keep(), an interrupt drops it.
 */
export async function createScratchDatabase(connection: PostgresConnection, prefix: string): Promise<ScratchDatabase> {
  if (!/^[a-z_][a-z0-9_]*$/.test(prefix)) throw new Error(`invalid database name prefix ${prefix}`);
  const leftovers = await dropLeftovers(connection, prefix);
  const name = `${prefix}_${randomBytes(4).toString('hex')}`;
  try {
    await onServer(connection, (client) => createDatabase(client, name));
  } catch (error) {
    const code = (error as { code?: string }).code;
    const why =
      code === '42501' ? `user ${connection.user} may not create databases (CREATEDB)` : (error as Error).message;
    throw new Error(`cannot create the scratch database ${name} on ${connection.host}:${connection.port}: ${why}`, {
      cause: error,
    });
  }
  const drop = async () => {
    await onServer(connection, (client) => dropDatabase(client, name, { force: true }));
  };
  const disarm = cleanUpOnInterrupt(drop);
  return {
    connection: { ...connection, database: name },
    name,
    leftovers,
    drop: async () => {
      disarm();
      await drop();
    },
    keep: disarm,
  };
}

/** The server a scratch database goes on: the configured one, else the embedded one (started if need be). */
export async function databaseServer(
  config: Config,
  onNote?: (note: EmbeddedNote) => void,
): Promise<{ connection: PostgresConnection; embedded?: EmbeddedServer }> {
  if (config.database.mode === 'external') return { connection: config.database.connection };
  const embedded = await startEmbeddedPostgres({
    dataDir: config.database.dataDir,
    port: config.database.port,
    portExplicit: config.database.portExplicit,
    ...(onNote ? { onNote } : {}),
    ...(config.database.sharedDir ? { sharedDirs: sharedDirsUnder(config.database.sharedDir) } : {}),
  });
  cleanUpOnInterrupt(() => embedded.stop());
  return { connection: embedded.connection, embedded };
}

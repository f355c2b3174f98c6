/**
 * One PostgreSQL for the whole run: TEST_DATABASE_URL when set (each test file then creates
 * and drops its own database on that server), else an embedded PostgreSQL in a temporary
 * folder on a free port, removed at the end.
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { parseDatabaseUrl, type PostgresConnection } from '../src/config';
import { sharedDirsUnder, startEmbeddedPostgres } from '../src/db/embeddedPostgres';
import { freePort } from './helpers/net';

declare module 'vitest' {
  export interface ProvidedContext {
    postgres: PostgresConnection;
  }
}


let shared: Promise<{ connection: PostgresConnection; stop: () => Promise<void> }> | undefined;
let users = 0;

async function startShared() {
  if (process.env.TEST_DATABASE_URL) {
    return { connection: parseDatabaseUrl(process.env.TEST_DATABASE_URL), stop: async () => undefined };
  }
  const dir = await mkdtemp(path.join(tmpdir(), 'lexus-test-pg-'));
  await chmod(dir, 0o755); // as root, the server runs as "postgres" and must reach its folder
  const server = await startEmbeddedPostgres({
    dataDir: path.join(dir, 'data'),
    port: await freePort(),
    database: 'postgres',
    // Test files run in parallel, each with its own pool; durability is not needed here.
    settings: { max_connections: '400', fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off' },
    ...(process.env.LEXUS_EMBEDDED_PG_SHARED_DIR ? { sharedDirs: sharedDirsUnder(process.env.LEXUS_EMBEDDED_PG_SHARED_DIR) } : {}),
  });
  return {
    connection: server.connection,
    stop: async () => {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export default async function setup(project: TestProject) {
  // Both projects (utc, los-angeles) share one server.
  shared ??= startShared();
  users += 1;
  const { connection } = await shared;
  project.provide('postgres', connection);
  return async () => {
    users -= 1;
    if (users === 0 && shared) await (await shared).stop();
  };
}

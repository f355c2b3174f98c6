/**
 * Before any test: dist/ built afresh from src/ (the CLI tests run bin/lexus.js, which runs
 * dist/), so that `npx vitest run` never tests a stale build; a failed build fails the run.
 * One PostgreSQL for the whole run: TEST_DATABASE_URL when set (each test file then creates
 * and drops its own database on that server), else an embedded PostgreSQL in a temporary
 * folder on a free port, removed at the end.
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { type PostgresConnection, parseDatabaseUrl } from '../src/config';
import { sharedDirsUnder, startEmbeddedPostgres } from '../src/db/embeddedPostgres';
import { ROOT, runAsync, tempDir } from './helpers/cli';
import { freePort } from './helpers/net';

declare module 'vitest' {
  export interface ProvidedContext {
    postgres: PostgresConnection;
  }
}

/**
 * What the projects share. Vitest loads this module once per project, so the state lives on
 * globalThis (one main process), not in this module's variables.
 */
interface SharedState {
  built?: Promise<void>;
  server?: Promise<{ connection: PostgresConnection; stop: () => Promise<void> }>;
  stopped?: Promise<void>;
  users: number;
}
const KEY = Symbol.for('lexus.test.globalSetup');
const registry = globalThis as Record<symbol, SharedState | undefined>;
const state: SharedState = registry[KEY] ?? { users: 0 };
registry[KEY] = state;

/** Stops the shared server, once, however many projects let go of it; a later setup builds and starts afresh. */
async function stopShared(): Promise<void> {
  if (!state.server) return;
  state.stopped ??= state.server.then((s) => s.stop());
  try {
    await state.stopped;
  } finally {
    state.built = state.server = state.stopped = undefined;
  }
}

/** `npm run build` (tsc -p tsconfig.build.json, the checkout's own tsc); rejects with tsc's output when it fails. */
async function build(): Promise<void> {
  const began = Date.now();
  const tsc = await runAsync(
    process.execPath,
    [path.join(ROOT, 'node_modules/.bin/tsc'), '-p', 'tsconfig.build.json'],
    { cwd: ROOT },
  );
  if (tsc.status !== 0) {
    throw new Error(
      `the build of dist/ (tsc -p tsconfig.build.json) failed (exit ${tsc.status ?? tsc.signal}${tsc.error ? `: ${tsc.error.message}` : ''}), so no test ran: the CLI tests would run a stale dist/:\n${tsc.stdout}${tsc.stderr}`,
    );
  }
  process.stderr.write(`test setup: dist/ built in ${((Date.now() - began) / 1000).toFixed(1)} s\n`);
}

async function startShared() {
  if (process.env.TEST_DATABASE_URL) {
    return { connection: parseDatabaseUrl(process.env.TEST_DATABASE_URL), stop: async () => undefined };
  }
  const dir = await tempDir('lexus-test-pg-');
  const server = await startEmbeddedPostgres({
    dataDir: path.join(dir, 'data'),
    port: await freePort(),
    database: 'postgres',
    // Test files run in parallel, each with its own pool; durability is not needed here.
    settings: { max_connections: '400', fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off' },
    ...(process.env.LEXUS_EMBEDDED_PG_SHARED_DIR
      ? { sharedDirs: sharedDirsUnder(process.env.LEXUS_EMBEDDED_PG_SHARED_DIR) }
      : {}),
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
  // Both projects (utc, los-angeles) share one build and one server; the build runs while the
  // server starts.
  state.built ??= build();
  state.server ??= startShared();
  state.users += 1;
  const [building, starting] = await Promise.allSettled([state.built, state.server]);
  if (building.status === 'rejected' || starting.status === 'rejected') {
    state.users -= 1;
    if (state.users === 0) await stopShared().catch(() => undefined);
    throw building.status === 'rejected' ? building.reason : (starting as PromiseRejectedResult).reason;
  }
  project.provide('postgres', starting.value.connection);
  return async () => {
    state.users -= 1;
    if (state.users === 0) await stopShared();
  };
}

/**
 * One embedded server per data folder: two checkouts on one machine never share a database
 * without knowing it. A server of this folder is reused whoever started it; a server of another
 * folder on the port is never used.
 */
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PostgresConnection } from '../src/config';
import { EmbeddedPostgresError, NOTE_FILE, startEmbeddedPostgres, type EmbeddedServer } from '../src/db/embeddedPostgres';
import { freePort } from './helpers/net';

async function query(connection: PostgresConnection, text: string): Promise<Record<string, unknown>[]> {
  const client = new pg.Client({ ...connection, ssl: false });
  await client.connect();
  try {
    return (await client.query(text)).rows as Record<string, unknown>[];
  } finally {
    await client.end();
  }
}

describe('two checkouts on one machine', () => {
  let dir: string;
  let first: EmbeddedServer;
  let port: number;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'lexus-two-checkouts-'));
    await chmod(dir, 0o755); // as root, the server runs as "postgres" and must reach its folder
    port = await freePort();
    first = await startEmbeddedPostgres({ dataDir: path.join(dir, 'one/data/postgres'), port, database: 'lexus' });
    await query(first.connection, 'CREATE TABLE of_checkout_one (id int)');
  });
  afterAll(async () => {
    await first?.stop('fast');
    await rm(dir, { recursive: true, force: true });
  });

  it("the second never uses the first's server: it starts its own on another port, and remembers it", async () => {
    const notes: string[] = [];
    const second = await startEmbeddedPostgres({ dataDir: path.join(dir, 'two/data/postgres'), port, database: 'lexus', onNote: (n) => notes.push(n.message) });
    try {
      expect(second.started).toBe(true);
      expect(second.connection.port).not.toBe(port);
      expect(notes[0]).toBe(
        `port ${port} is taken by the embedded PostgreSQL of another data folder (${first.dataDir}): the embedded PostgreSQL of ${path.join(dir, 'two/data/postgres')} ` +
          `listens on ${second.connection.port} instead (noted in ${path.join(dir, 'two/data/postgres', NOTE_FILE)})`,
      );
      expect(await query(second.connection, 'SHOW data_directory')).toEqual([{ data_directory: path.join(dir, 'two/data/postgres') }]);
      expect(await query(second.connection, `SELECT to_regclass('of_checkout_one') AS t`)).toEqual([{ t: null }]);
      expect(JSON.parse(await readFile(path.join(dir, 'two/data/postgres', NOTE_FILE), 'utf8'))).toMatchObject({ port: second.connection.port });
    } finally {
      await second.stop();
    }
    // Started again, on the port it remembered.
    const again = await startEmbeddedPostgres({ dataDir: path.join(dir, 'two/data/postgres'), port, database: 'lexus' });
    await again.stop();
    expect(again.connection.port).toBe(second.connection.port);
  });

  it('with LEXUS_EMBEDDED_PG_PORT naming the taken port, says so and starts nothing', async () => {
    const started = startEmbeddedPostgres({ dataDir: path.join(dir, 'three/data/postgres'), port, portExplicit: true });
    await expect(started).rejects.toThrow(EmbeddedPostgresError);
    await expect(started).rejects.toThrow(`port ${port} (LEXUS_EMBEDDED_PG_PORT) is taken by the embedded PostgreSQL of another data folder (${first.dataDir})`);
  });

  it("reuses its own folder's server, whoever started it, and does not stop it", async () => {
    const same = await startEmbeddedPostgres({ dataDir: path.join(dir, 'one/data/postgres'), port: await freePort(), database: 'lexus' });
    expect(same).toMatchObject({ started: false, dataDir: first.dataDir });
    expect(same.connection.port).toBe(port);
    await same.stop();
    expect(await query(first.connection, `SELECT to_regclass('of_checkout_one') AS t`)).toEqual([{ t: 'of_checkout_one' }]);
  });
});

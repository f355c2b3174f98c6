/**
 * One embedded server per data folder: two checkouts on one machine never share a database
 * without knowing it. A server of this folder is reused whoever started it; a server of another
 * folder on the port is never used.
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PostgresConnection } from '../src/config';
import {
  EmbeddedPostgresError,
  type EmbeddedServer,
  LEGACY_EMBEDDED_PASSWORD,
  NOTE_FILE,
  startEmbeddedPostgres,
} from '../src/db/embeddedPostgres';
import { run, runNode, tempDir } from './helpers/cli';
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
    dir = await tempDir('lexus-two-checkouts-');
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
    const second = await startEmbeddedPostgres({
      dataDir: path.join(dir, 'two/data/postgres'),
      port,
      database: 'lexus',
      onNote: (n) => notes.push(n.message),
    });
    try {
      expect(second.started).toBe(true);
      expect(second.connection.port).not.toBe(port);
      // Each cluster has a password of its own: the other server cannot even be asked which folder it serves.
      expect(notes[0]).toBe(
        `port ${port} is taken by another server or program: the embedded PostgreSQL of ${path.join(dir, 'two/data/postgres')} ` +
          `listens on ${second.connection.port} instead (noted in ${path.join(dir, 'two/data/postgres', NOTE_FILE)})`,
      );
      expect(second.connection.password).not.toBe(first.connection.password);
      expect(await query(second.connection, 'SHOW data_directory')).toEqual([
        { data_directory: path.join(dir, 'two/data/postgres') },
      ]);
      expect(await query(second.connection, `SELECT to_regclass('of_checkout_one') AS t`)).toEqual([{ t: null }]);
      expect(JSON.parse(await readFile(path.join(dir, 'two/data/postgres', NOTE_FILE), 'utf8'))).toMatchObject({
        port: second.connection.port,
      });
    } finally {
      await second.stop();
    }
    // Started again, on the port it remembered.
    const again = await startEmbeddedPostgres({
      dataDir: path.join(dir, 'two/data/postgres'),
      port,
      database: 'lexus',
    });
    await again.stop();
    expect(again.connection.port).toBe(second.connection.port);
  });

  it('with LEXUS_EMBEDDED_PG_PORT naming the taken port, says so and starts nothing', async () => {
    const started = startEmbeddedPostgres({ dataDir: path.join(dir, 'three/data/postgres'), port, portExplicit: true });
    await expect(started).rejects.toThrow(EmbeddedPostgresError);
    await expect(started).rejects.toThrow(
      `port ${port} (LEXUS_EMBEDDED_PG_PORT) is taken by another server or program`,
    );
  });

  it("reuses its own folder's server, whoever started it, and does not stop it", async () => {
    const same = await startEmbeddedPostgres({
      dataDir: path.join(dir, 'one/data/postgres'),
      port: await freePort(),
      database: 'lexus',
    });
    expect(same).toMatchObject({ started: false, dataDir: first.dataDir });
    expect(same.connection.port).toBe(port);
    await same.stop();
    expect(await query(first.connection, `SELECT to_regclass('of_checkout_one') AS t`)).toEqual([
      { t: 'of_checkout_one' },
    ]);
  });
});

describe('one data folder', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await tempDir('lexus-one-folder-');
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('started by two processes at once ends with one cluster and one server, the second using the first one', async () => {
    const options = { dataDir: path.join(dir, 'race/postgres'), port: await freePort(), database: 'lexus' };
    const both = await Promise.all([startEmbeddedPostgres(options), startEmbeddedPostgres(options)]);
    try {
      expect(both.map((s) => s.started).sort()).toEqual([false, true]);
      expect(new Set(both.map((s) => s.connection.port)).size).toBe(1);
      expect(await query(both[0]!.connection, 'SHOW data_directory')).toEqual([
        { data_directory: path.join(dir, 'race/postgres') },
      ]);
      expect((await readdir(path.join(dir, 'race'))).sort()).toEqual(['postgres']);
    } finally {
      await Promise.all(both.map((s) => s.stop('fast')));
    }
  });

  it('gets a password of its own, kept in its note readable by this user only; the note of another folder is not followed', async () => {
    const configured = path.join(dir, 'secret/postgres');
    const server = await startEmbeddedPostgres({ dataDir: configured, port: await freePort() });
    try {
      const note = JSON.parse(await readFile(path.join(configured, NOTE_FILE), 'utf8')) as {
        password: string;
        for: string;
      };
      expect(note).toMatchObject({ for: configured, password: server.connection.password });
      expect(note.password).not.toBe(LEGACY_EMBEDDED_PASSWORD);
      expect((await stat(path.join(configured, NOTE_FILE))).mode & 0o777).toBe(0o600);
      await expect(query({ ...server.connection, password: LEGACY_EMBEDDED_PASSWORD }, 'SELECT 1')).rejects.toThrow(
        /password authentication failed/,
      );
    } finally {
      await server.stop();
    }
    // A copy of the folder (a copied checkout): its cluster keeps its password, not its place.
    // cp -a, as a person copies a checkout (as root, the owners are kept).
    await mkdir(path.join(dir, 'copy'));
    expect(run('cp', ['-a', configured, path.join(dir, 'copy/postgres')]).status).toBe(0);
    const copy = await startEmbeddedPostgres({ dataDir: path.join(dir, 'copy/postgres'), port: await freePort() });
    try {
      expect(copy.dataDir).toBe(path.join(dir, 'copy/postgres'));
      expect(await query(copy.connection, 'SHOW data_directory')).toEqual([
        { data_directory: path.join(dir, 'copy/postgres') },
      ]);
    } finally {
      await copy.stop();
    }
  });

  it('starts over a postmaster.pid left by a server that died, its pid taken by another program since', async () => {
    const options = { dataDir: path.join(dir, 'stale/postgres'), port: await freePort() };
    await (await startEmbeddedPostgres(options)).stop();
    // This test's own process has that pid now: alive, and not a postgres.
    await writeFile(
      path.join(options.dataDir, 'postmaster.pid'),
      `${process.pid}\n${options.dataDir}\n1700000000\n${options.port}\n\n127.0.0.1\n  1234     5678\nready   \n`,
    );
    const again = await startEmbeddedPostgres(options);
    try {
      expect(again.started).toBe(true);
      expect(await query(again.connection, 'SELECT 1 AS ok')).toEqual([{ ok: 1 }]);
    } finally {
      await again.stop();
    }
  });

  it('is stopped with the process that started it, when a signal nobody else handles ends that process', async () => {
    const dataDir = path.join(dir, 'signal/postgres');
    const script = `
      const { startEmbeddedPostgres } = require(${JSON.stringify(path.resolve(__dirname, '../dist/db/embeddedPostgres.js'))});
      startEmbeddedPostgres({ dataDir: ${JSON.stringify(dataDir)}, port: ${await freePort()} }).then(() => {
        console.log('started');
        process.kill(process.pid, 'SIGINT');
        setTimeout(() => {}, 60_000);
      });`;
    const result = runNode(['-e', script], { timeout: 60_000 });
    expect(result.stdout).toContain('started');
    // It ended as the signal ends a process, and took its server with it.
    expect(result.signal).toBe('SIGINT');
    const deadline = Date.now() + 30_000;
    while (existsSync(path.join(dataDir, 'postmaster.pid')) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100));
    expect(existsSync(path.join(dataDir, 'postmaster.pid'))).toBe(false);
  });
});

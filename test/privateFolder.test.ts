/**
 * Root in a folder other users cannot enter (a checkout under /root, a `mktemp -d` folder): the
 * embedded PostgreSQL runs as the user postgres, which cannot reach the binaries or the data
 * there. The README's commands, from a copy of this checkout in a 0700 folder: `npm start` until
 * a Ctrl-C (exit 0, no warning), `npm run demo`, and the test setup itself (npm test); then the
 * library's own choices. Everything they keep outside the checkout goes to a folder of the
 * test's own (LEXUS_EMBEDDED_PG_SHARED_DIR), removed at the end.
 */
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  EmbeddedPostgresError,
  NOTE_FILE,
  sharedDataDirFor,
  sharedDirsUnder,
  startEmbeddedPostgres,
} from '../src/db/embeddedPostgres';
import { jsonLines, ROOT, run, runNode, start, tempDir } from './helpers/cli';
import { freePort } from './helpers/net';

const asRoot = userInfo().uid === 0;

/** A copy of this checkout: its files, and node_modules as hard links (or a copy on another file system). */
async function copyCheckout(to: string): Promise<void> {
  await mkdir(to, { recursive: true });
  // tsconfig.build.json: the test setup builds dist/ from src/ first.
  for (const entry of [
    'bin',
    'dist',
    'src',
    'test',
    'config',
    'lexus_assets',
    'examples',
    'package.json',
    'tsconfig.json',
    'tsconfig.build.json',
    'vitest.config.mts',
  ]) {
    await cp(path.join(ROOT, entry), path.join(to, entry), { recursive: true });
  }
  const linked = run('cp', ['-al', path.join(ROOT, 'node_modules'), path.join(to, 'node_modules')]);
  if (linked.status !== 0)
    await cp(path.join(ROOT, 'node_modules'), path.join(to, 'node_modules'), {
      recursive: true,
      verbatimSymlinks: true,
    });
}

describe.skipIf(!asRoot)('as root, from a folder only root can enter', () => {
  let dir: string;
  let checkout: string;
  let shared: string;
  let env: Record<string, string>;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'lexus-private-'));
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    checkout = path.join(dir, 'lexus');
    await copyCheckout(checkout);
    shared = await tempDir('lexus-shared-');
    env = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', LEXUS_EMBEDDED_PG_SHARED_DIR: shared };
  }, 120_000);
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
    await rm(shared, { recursive: true, force: true });
  });

  it('npm start runs, says where the data is kept, and a Ctrl-C stops it with exit 0 and no warning', async () => {
    const npm = start('npm', ['start'], {
      cwd: checkout,
      // Its own process group, as in a terminal: the Ctrl-C goes to the whole group (npm passes
      // it on to the daemon too, which gets it twice).
      detached: true,
      env: {
        ...env,
        LOG_PRETTY: '0',
        HEALTH_PORT: '0',
        LEXUS_FAKE_TELEGRAM: '1',
        LEXUS_EMBEDDED_PG_PORT: String(await freePort()),
      },
    });
    await npm.waitFor((p) => p.stdout.includes('"event":"daemon.started"'), 60_000);
    const out = npm.stdout;
    expect(out).toContain('"event":"daemon.started"');
    npm.kill('SIGINT');
    expect((await npm.exited).code).toBe(0);
    expect(npm.stderr).toBe('');
    const logged = jsonLines(npm.stdout);
    const configured = path.join(checkout, 'data/postgres');
    const elsewhere = logged.find((l) => l.event === 'db.embedded.data_elsewhere');
    expect(elsewhere).toMatchObject({
      data_dir: sharedDataDirFor(configured, sharedDirsUnder(shared).data),
      closed_folder: dir,
    });
    expect(logged.find((l) => l.event === 'db.embedded.binaries')).toMatchObject({ closed_folder: dir });
    expect(JSON.parse(await readFile(path.join(configured, NOTE_FILE), 'utf8'))).toMatchObject({
      for: configured,
      dataDir: elsewhere!.data_dir,
      password: expect.any(String),
    });
    expect((await stat(path.join(configured, NOTE_FILE))).mode & 0o777).toBe(0o600);
    const signal = logged.findIndex((l) => l.event === 'daemon.signal');
    expect(signal).toBeGreaterThan(0);
    expect(logged.slice(signal).filter((l) => !['trace', 'debug', 'info'].includes(String(l.level)))).toEqual([]);
    expect(logged.at(-1)).toMatchObject({ event: 'daemon.stopped', clean: true });
    // The server stopped with it.
    expect(existsSync(path.join(String(elsewhere!.data_dir), 'postmaster.pid'))).toBe(false);
  }, 90_000);

  it('npm run demo runs', async () => {
    const result = run('npm', ['run', 'demo'], {
      cwd: checkout,
      env: { ...env, LEXUS_EMBEDDED_PG_PORT: String(await freePort()) },
      timeout: 120_000,
    });
    expect(result.stdout).toContain('No rule was broken.');
    expect(result.status).toBe(0);
  }, 150_000);

  it('the test setup (npm test) starts its PostgreSQL and runs a test file on it', () => {
    const result = runNode(['node_modules/vitest/vitest.mjs', 'run', 'test/timezone.test.ts', '--project', 'utc'], {
      cwd: checkout,
      env: { ...env, CI: '1', NO_COLOR: '1' },
      timeout: 120_000,
    });
    expect(result.stdout + result.stderr).toMatch(/Tests\s+\d+ passed/);
    expect(result.status).toBe(0);
  }, 150_000);

  it('keeps its data where the user postgres can reach it, notes where with the port it moved to, and finds both again', async () => {
    const own = await tempDir('lexus-shared-');
    const dirs = sharedDirsUnder(own);
    const configured = path.join(checkout, 'other', 'postgres');
    // Its port is taken by something else.
    const port = await freePort();
    const squatter: Server = createServer();
    await new Promise<void>((resolve) => squatter.listen(port, '127.0.0.1', resolve));
    // The library from the private checkout (its programs are under the closed folder), in a process of its own.
    const script = `
      const { startEmbeddedPostgres } = require(${JSON.stringify(path.join(checkout, 'dist/db/embeddedPostgres.js'))});
      const pg = require(${JSON.stringify(path.join(checkout, 'node_modules/pg'))});
      (async () => {
        const notes = [];
        const server = await startEmbeddedPostgres({ dataDir: ${JSON.stringify(configured)}, port: ${port}, sharedDirs: ${JSON.stringify(dirs)}, onNote: (n) => notes.push(n.event) });
        const client = new pg.Client({ ...server.connection, ssl: false });
        await client.connect();
        const { rows } = await client.query('SHOW data_directory');
        await client.end();
        await server.stop();
        console.log(JSON.stringify({ notes, dataDir: server.dataDir, answering: rows[0].data_directory, port: server.connection.port }));
      })().catch((error) => { console.error(error.message); process.exit(1); });`;
    try {
      const runOnce = () => {
        const result = runNode(['-e', script], { timeout: 90_000 });
        expect(result.stderr).toBe('');
        return JSON.parse(result.stdout) as { notes: string[]; dataDir: string; answering: string; port: number };
      };
      const first = runOnce();
      const kept = sharedDataDirFor(configured, dirs.data);
      expect(first).toMatchObject({
        notes: ['db.embedded.data_elsewhere', 'db.embedded.binaries', 'db.embedded.port_moved', 'db.embedded.started'],
        dataDir: kept,
        answering: kept,
      });
      expect(first.port).not.toBe(port);
      expect(JSON.parse(await readFile(path.join(configured, NOTE_FILE), 'utf8'))).toMatchObject({
        for: configured,
        dataDir: kept,
        port: first.port,
      });
      expect((await stat(first.dataDir)).mode & 0o777).toBe(0o700);
      expect((await stat(first.dataDir)).uid).not.toBe(0);
      // Again: the same data and port, the programs copied already.
      expect(runOnce()).toEqual({ ...first, notes: ['db.embedded.started'] });
    } finally {
      squatter.close();
      await rm(own, { recursive: true, force: true });
    }
  }, 150_000);

  it('says what to do when its data, already there, cannot be reached', async () => {
    const closed = path.join(checkout, 'closed-data', 'postgres');
    await mkdir(closed, { recursive: true });
    // A data folder made when it could be reached (PG_VERSION), in a folder it cannot.
    await cp(path.join(ROOT, 'package.json'), path.join(closed, 'PG_VERSION'));
    const started = startEmbeddedPostgres({ dataDir: closed, port: await freePort() });
    await expect(started).rejects.toThrow(EmbeddedPostgresError);
    await expect(started).rejects.toThrow(`(${dir} is closed to it): let it through (chmod o+x ${dir})`);
  });
});

describe.runIf(!asRoot)('as root, from a folder only root can enter', () => {
  it.skip('is not run: the tests do not run as root (the embedded PostgreSQL then runs as this user, in its own folders)', () =>
    undefined);
});

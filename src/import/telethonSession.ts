/**
 * Telegram sessions of the old system.
 *
 * A Telethon string session is "1" + url-safe base64 of (dc_id: u8, ip: 4 or 16 bytes,
 * port: u16 BE, auth_key: 256 bytes). GramJS's StringSession reads that layout as it is, so
 * such strings are stored unchanged. A Telethon `.session` file is SQLite with a table
 * `sessions (dc_id, server_address, port, auth_key)`; it is converted into that same string
 * form, read here with sql.js (WebAssembly, no native build).
 */
import { isIP } from 'node:net';
import initSqlJs from 'sql.js';
import { StringSession } from 'telegram/sessions';

export const AUTH_KEY_BYTES = 256;

export interface SessionParts {
  dcId: number;
  serverAddress: string;
  port: number;
  authKey: Buffer;
}

export class SessionFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SessionFormatError';
  }
}

function packIp(address: string): Buffer {
  const version = isIP(address);
  if (version === 4) return Buffer.from(address.split('.').map(Number));
  if (version === 6) {
    const [head = '', tail = ''] = address.split('::');
    const headGroups = head ? head.split(':') : [];
    const tailGroups = tail ? tail.split(':') : [];
    const groups = address.includes('::')
      ? [...headGroups, ...Array(8 - headGroups.length - tailGroups.length).fill('0'), ...tailGroups]
      : headGroups;
    const bytes = Buffer.alloc(16);
    groups.forEach((group, i) => {
      bytes.writeUInt16BE(parseInt(group, 16), i * 2);
    });
    return bytes;
  }
  throw new SessionFormatError(`server address "${address}" is not an IP address`);
}

/** Telethon's StringSession.save(): the form both Telethon and GramJS read. */
export function encodeTelethonStringSession(parts: SessionParts): string {
  if (parts.authKey.length !== AUTH_KEY_BYTES) {
    throw new SessionFormatError(`auth key has ${parts.authKey.length} bytes, not ${AUTH_KEY_BYTES}`);
  }
  const head = Buffer.alloc(1);
  head.writeUInt8(parts.dcId);
  const port = Buffer.alloc(2);
  port.writeUInt16BE(parts.port);
  const packed = Buffer.concat([head, packIp(parts.serverAddress), port, parts.authKey]);
  return `1${packed.toString('base64').replace(/\+/g, '-').replace(/\//g, '_')}`;
}

/**
 * Decodes a string session as GramJS will when it connects. Throws SessionFormatError (whose
 * message never contains the session) when GramJS could not use it.
 */
export function decodeStringSession(value: string): SessionParts {
  const text = value.trim();
  if (!text.startsWith('1')) {
    throw new SessionFormatError('is not a Telethon or GramJS string session (it must start with "1")');
  }
  const incomplete = () =>
    new SessionFormatError('is not a complete string session (data centre, address, port and a 256-byte key)');
  let session: StringSession;
  try {
    session = new StringSession(text);
  } catch {
    throw incomplete();
  }
  // MemorySession keeps what it decoded in these fields until load() turns the key into an AuthKey.
  const raw = session as unknown as { _dcId?: number; _serverAddress?: string; _port?: number; _key?: Buffer };
  const authKey = raw._key ?? Buffer.alloc(0);
  if (!raw._dcId || !raw._serverAddress || !raw._port || authKey.length !== AUTH_KEY_BYTES) throw incomplete();
  return { dcId: raw._dcId, serverAddress: raw._serverAddress, port: raw._port, authKey };
}

let sqlJs: ReturnType<typeof initSqlJs> | undefined;

/**
 * Reads a Telethon `.session` file. Returns null for a session that never finished logging
 * in (no auth key). Throws SessionFormatError when the file is not a Telethon session.
 */
export async function readTelethonSessionFile(bytes: Uint8Array): Promise<SessionParts | null> {
  if (Buffer.from(bytes.subarray(0, 16)).toString('latin1') !== 'SQLite format 3\0') {
    throw new SessionFormatError('is not an SQLite file, so not a Telethon session');
  }
  sqlJs ??= initSqlJs();
  const SQL = await sqlJs;
  let db;
  try {
    db = new SQL.Database(bytes);
  } catch (error) {
    throw new SessionFormatError(`cannot be read as SQLite: ${(error as Error).message}`);
  }
  try {
    let rows: unknown[][];
    try {
      rows = db.exec('SELECT dc_id, server_address, port, auth_key FROM sessions')[0]?.values ?? [];
    } catch (error) {
      throw new SessionFormatError(`has no Telethon "sessions" table (${(error as Error).message})`);
    }
    const complete = rows.filter((r) => r[3] instanceof Uint8Array && r[3].length > 0);
    if (complete.length === 0) return null;
    if (complete.length > 1)
      throw new SessionFormatError(`holds ${complete.length} sessions; a Telethon session file holds one`);
    const [dcId, serverAddress, port, authKey] = complete[0]!;
    if (typeof dcId !== 'number' || typeof serverAddress !== 'string' || typeof port !== 'number') {
      throw new SessionFormatError('has a sessions row without dc_id, server_address or port');
    }
    const key = Buffer.from(authKey as Uint8Array);
    if (key.length !== AUTH_KEY_BYTES)
      throw new SessionFormatError(`has an auth key of ${key.length} bytes, not ${AUTH_KEY_BYTES}`);
    return { dcId, serverAddress, port, authKey: key };
  } finally {
    db.close();
  }
}

/** Writes a Telethon `.session` file (the schema Telethon 1.x creates). For examples and tests. */
export async function writeTelethonSessionFile(parts: SessionParts | null): Promise<Uint8Array> {
  sqlJs ??= initSqlJs();
  const SQL = await sqlJs;
  const db = new SQL.Database();
  try {
    db.run(`
      CREATE TABLE version (version integer primary key);
      INSERT INTO version VALUES (7);
      CREATE TABLE sessions (dc_id integer primary key, server_address text, port integer, auth_key blob, takeout_id integer);
      CREATE TABLE entities (id integer primary key, hash integer not null, username text, phone integer, name text, date integer);
      CREATE TABLE sent_files (md5_digest blob, file_size integer, type integer, id integer, hash integer, primary key(md5_digest, file_size, type));
      CREATE TABLE update_state (id integer primary key, pts integer, qts integer, date integer, seq integer);
    `);
    if (parts) {
      db.run('INSERT INTO sessions VALUES (?, ?, ?, ?, NULL)', [
        parts.dcId,
        parts.serverAddress,
        parts.port,
        new Uint8Array(parts.authKey),
      ]);
    }
    return db.export();
  } finally {
    db.close();
  }
}

import { createHash } from 'node:crypto';
import initSqlJs from 'sql.js';
import { StringSession } from 'telegram/sessions';
import { describe, expect, it } from 'vitest';
import {
  decodeStringSession,
  encodeTelethonStringSession,
  readTelethonSessionFile,
  SessionFormatError,
  writeTelethonSessionFile,
} from '../src/import/telethonSession';

const key = (seed: string) =>
  Buffer.concat(Array.from({ length: 8 }, (_, i) => createHash('sha256').update(`${seed}${i}`).digest()));

/** What Telethon's StringSession.save() writes, built by hand: struct.pack('>B4sH256s') + urlsafe base64. */
function telethonByHand(dcId: number, ip: number[], port: number, authKey: Buffer): string {
  const packed = Buffer.concat([Buffer.from([dcId]), Buffer.from(ip), Buffer.from([port >> 8, port & 0xff]), authKey]);
  return `1${packed.toString('base64').replace(/\+/g, '-').replace(/\//g, '_')}`;
}

async function gramjsReads(session: string) {
  const s = new StringSession(session);
  await s.load();
  return { dcId: s.dcId, serverAddress: s.serverAddress, port: s.port, key: s.getAuthKey()?.getKey() };
}

describe('Telethon sessions', () => {
  it('encodes a string session byte for byte as Telethon does', () => {
    const k = key('a');
    expect(encodeTelethonStringSession({ dcId: 2, serverAddress: '149.154.167.51', port: 443, authKey: k })).toBe(
      telethonByHand(2, [149, 154, 167, 51], 443, k),
    );
  });

  it("GramJS's StringSession reads a Telethon string session as it is (IPv4 and IPv6)", async () => {
    const k = key('b');
    expect(await gramjsReads(telethonByHand(4, [149, 154, 167, 91], 443, k))).toEqual({
      dcId: 4,
      serverAddress: '149.154.167.91',
      port: 443,
      key: k,
    });
    const v6 = encodeTelethonStringSession({ dcId: 5, serverAddress: '2001:b28:f23f:f005::a', port: 443, authKey: k });
    expect(await gramjsReads(v6)).toEqual({ dcId: 5, serverAddress: '2001:b28:f23f:f005::a', port: 443, key: k });
  });

  it('converts a Telethon .session file into a string session that GramJS decodes to the same DC, address, port and key', async () => {
    const k = key('c');
    const file = await writeTelethonSessionFile({ dcId: 2, serverAddress: '149.154.167.50', port: 443, authKey: k });
    const parts = await readTelethonSessionFile(file);
    expect(parts).toEqual({ dcId: 2, serverAddress: '149.154.167.50', port: 443, authKey: k });
    expect(await gramjsReads(encodeTelethonStringSession(parts!))).toEqual({
      dcId: 2,
      serverAddress: '149.154.167.50',
      port: 443,
      key: k,
    });
  });

  it('a .session whose login never finished has no session', async () => {
    expect(await readTelethonSessionFile(await writeTelethonSessionFile(null))).toBeNull();
  });

  it('refuses files that are not Telethon sessions, with a reason', async () => {
    await expect(readTelethonSessionFile(Buffer.from('not a database'))).rejects.toThrow(
      'is not an SQLite file, so not a Telethon session',
    );
    const SQL = await initSqlJs();
    const other = new SQL.Database();
    other.run('CREATE TABLE notes (x)');
    await expect(readTelethonSessionFile(other.export())).rejects.toThrow('has no Telethon "sessions" table');
    const short = new SQL.Database();
    short.run(
      'CREATE TABLE sessions (dc_id integer primary key, server_address text, port integer, auth_key blob, takeout_id integer)',
    );
    short.run('INSERT INTO sessions VALUES (2, ?, 443, ?, NULL)', ['149.154.167.50', new Uint8Array(32)]);
    await expect(readTelethonSessionFile(short.export())).rejects.toThrow('has an auth key of 32 bytes, not 256');
  });

  it('decodes string sessions, refusing broken ones without quoting them', () => {
    const k = key('d');
    expect(decodeStringSession(` ${telethonByHand(1, [149, 154, 175, 53], 443, k)}\n`)).toEqual({
      dcId: 1,
      serverAddress: '149.154.175.53',
      port: 443,
      authKey: k,
    });
    for (const broken of ['2SECRETSECRET', 'SECRET', telethonByHand(1, [1, 2, 3, 4], 443, k).slice(0, 100)]) {
      let error: unknown;
      try {
        decodeStringSession(broken);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(SessionFormatError);
      expect((error as Error).message).not.toContain(broken.slice(1, 20));
    }
  });
});

describe("a .session file written by Python's sqlite3 with Telethon 1.x's schema", () => {
  it('converts to the session Telethon holds (IPv6 data centre)', async () => {
    const { readFileSync } = await import('node:fs');
    const path = await import('node:path');
    const file = readFileSync(path.resolve(__dirname, 'fixtures/telethon-v7.session'));
    const parts = await readTelethonSessionFile(file);
    const expected = Buffer.concat(
      Array.from({ length: 8 }, (_, i) => createHash('sha256').update(`telethon fixture ${i}`).digest()),
    );
    expect(parts).toEqual({ dcId: 4, serverAddress: '2001:67c:4e8:f004::a', port: 443, authKey: expected });
    expect(await gramjsReads(encodeTelethonStringSession(parts!))).toEqual({
      dcId: 4,
      serverAddress: '2001:67c:4e8:f004::a',
      port: 443,
      key: expected,
    });
  });
});

import { hostname } from 'node:os';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { Account, Target } from '../src/db/entities';
import { createLogger } from '../src/logger';

function capture() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      done();
    },
  });
  return { lines, log: createLogger({ level: 'debug', destination }) };
}

describe('logger', () => {
  it('writes one JSON line per event with a level label and an ISO time', () => {
    const { lines, log } = capture();
    log.info({ event: 'post.sent', account: 'lexus_1' }, 'posted');
    const entry = JSON.parse(lines[0]!);
    // Which process said it, on every line: replicas in one stream are told apart.
    expect(entry).toMatchObject({
      level: 'info',
      event: 'post.sent',
      account: 'lexus_1',
      msg: 'posted',
      service: 'lexus',
      host: hostname(),
      pid: process.pid,
    });
    expect(new Date(entry.time).toISOString()).toBe(entry.time);
  });

  it('redacts secrets at any depth: an entity in a list in an object', () => {
    const { lines, log } = capture();
    const account = Object.assign(new Account(), {
      id: 1,
      sessionName: 'lexus_1',
      sessionString: '1Ab-SECRET',
      apiHash: 'SECRET-hash',
      proxy: null,
    });
    const target = Object.assign(new Target(), { id: 5, link: '@g', assignedAccount: account });
    log.info({ event: 'ready', ready: [target], nested: { a: { b: { c: { d: { password: 'SECRET-pw' } } } } } });
    expect(lines[0]).not.toContain('SECRET');
    const entry = JSON.parse(lines[0]!);
    expect(entry.ready[0].assignedAccount).toMatchObject({
      sessionName: 'lexus_1',
      sessionString: '[redacted]',
      apiHash: '[redacted]',
      proxy: null,
    });
    expect(entry.nested.a.b.c.d.password).toBe('[redacted]');
  });

  it('logs an error with its message and stack, but not the values a failed query was given', () => {
    const { lines, log } = capture();
    const error = Object.assign(new Error('duplicate key value violates unique constraint'), {
      query: 'UPDATE accounts SET session_string = $1 WHERE id = $2',
      parameters: ['1Ab-SECRET-session', 7],
      detail: 'Failing row contains (7, +380, 1Ab-SECRET-session, ...)',
      driverError: Object.assign(new Error('duplicate key'), { detail: 'Failing row contains (1Ab-SECRET-session)' }),
    });
    log.error({ event: 'fatal', err: error }, error.message);
    expect(lines[0]).not.toContain('SECRET');
    const entry = JSON.parse(lines[0]!);
    expect(entry.err).toMatchObject({
      type: 'Error',
      message: 'duplicate key value violates unique constraint',
      query: expect.any(String),
    });
    expect(entry.err.stack).toContain('logger.test.ts');
  });

  it('redacts secrets wherever they sit in a logged object', () => {
    const { lines, log } = capture();
    log.warn({
      session_string: '1AgAOMTQ5LjE1NC4xNjcuNTAAUB-SECRET',
      account: { sessionName: 'lexus_1', api_hash: 'abcdef0123456789-SECRET', proxy: 'socks5://u:pw-SECRET@h:1080' },
      config: { database: { password: 'pg-SECRET' } },
    });
    expect(lines[0]).not.toContain('SECRET');
    expect(JSON.parse(lines[0]!).account).toEqual({
      sessionName: 'lexus_1',
      api_hash: '[redacted]',
      proxy: '[redacted]',
    });
  });
});

import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
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
    expect(entry).toMatchObject({ level: 'info', event: 'post.sent', account: 'lexus_1', msg: 'posted', service: 'lexus' });
    expect(new Date(entry.time).toISOString()).toBe(entry.time);
  });

  it('redacts secrets wherever they sit in a logged object', () => {
    const { lines, log } = capture();
    log.warn({
      session_string: '1AgAOMTQ5LjE1NC4xNjcuNTAAUB-SECRET',
      account: { sessionName: 'lexus_1', api_hash: 'abcdef0123456789-SECRET', proxy: 'socks5://u:pw-SECRET@h:1080' },
      config: { database: { password: 'pg-SECRET' } },
    });
    expect(lines[0]).not.toContain('SECRET');
    expect(JSON.parse(lines[0]!).account).toEqual({ sessionName: 'lexus_1', api_hash: '[redacted]', proxy: '[redacted]' });
  });
});

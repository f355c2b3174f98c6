import { describe, expect, it } from 'vitest';
import { InvalidLinkError, normalizeGroupLink, parseGroupLink } from '../src/links';

describe('normalizeGroupLink', () => {
  it.each([
    ['@AutoBazar_UA', '@autobazar_ua'],
    ['autobazar_ua', '@autobazar_ua'],
    ['t.me/autobazar_ua', '@autobazar_ua'],
    ['https://t.me/autobazar_ua/', '@autobazar_ua'],
    ['http://t.me/AutoBazar_UA', '@autobazar_ua'],
    ['https://telegram.me/autobazar_ua', '@autobazar_ua'],
    ['telegram.dog/autobazar_ua', '@autobazar_ua'],
    ['https://www.t.me/autobazar_ua', '@autobazar_ua'],
    ['t.me/s/autobazar_ua', '@autobazar_ua'],
    ['https://t.me/autobazar_ua/123', '@autobazar_ua'],
    ['https://t.me/autobazar_ua/123?comment=5', '@autobazar_ua'],
    ['  https://t.me/autobazar_ua?start=x#frag  ', '@autobazar_ua'],
    ['\tt.me/autobazar_ua\n', '@autobazar_ua'],
    ['tg://resolve?domain=AutoBazar_UA', '@autobazar_ua'],
    ['https://t.me/+AbCdEf123_-xyz', 'https://t.me/+AbCdEf123_-xyz'],
    ['t.me/+AbCdEf123_-xyz', 'https://t.me/+AbCdEf123_-xyz'],
    ['https://t.me/joinchat/AbCdEf123_-xyz', 'https://t.me/+AbCdEf123_-xyz'],
    ['telegram.me/joinchat/AbCdEf123_-xyz/', 'https://t.me/+AbCdEf123_-xyz'],
    ['tg://join?invite=AbCdEf123_-xyz', 'https://t.me/+AbCdEf123_-xyz'],
  ])('%j -> %j', (input, expected) => {
    expect(normalizeGroupLink(input)).toBe(expected);
  });

  it('keeps invite hashes case-sensitive: two hashes differing in case stay two groups', () => {
    expect(normalizeGroupLink('t.me/+AAAAbbbbCCCC')).not.toBe(normalizeGroupLink('t.me/+aaaabbbbcccc'));
    expect(normalizeGroupLink('t.me/joinchat/AAAAbbbbCCCC')).toBe('https://t.me/+AAAAbbbbCCCC');
  });

  it('is idempotent: a normalized link normalizes to itself', () => {
    for (const input of ['@autobazar_ua', 'https://t.me/+AbCdEf123_-xyz']) {
      expect(normalizeGroupLink(normalizeGroupLink(input))).toBe(normalizeGroupLink(input));
    }
  });

  it.each([
    ['', 'is empty'],
    ['   ', 'is empty'],
    ['@', 'not a valid Telegram username'],
    ['t.me/c/1234567/45', 'is a private post link, not a group'],
    ['https://t.me/c/1234567', 'is a private post link, not a group'],
    ['https://example.com/autobazar', 'is not a Telegram link (host "example.com")'],
    ['ftp://t.me/autobazar', 'unsupported scheme'],
    ['@auto bazar', 'contains white space'],
    ['@auto-bazar', 'not a valid Telegram username'],
    ['@1autobazar', 'not a valid Telegram username'],
    ['@абвгд', 'not a valid Telegram username'],
    ['t.me/', 'has no group name'],
    ['t.me/joinchat/', 'invite link without its hash'],
    ['t.me/+380501234567', 'phone number link'],
    ['t.me/+ab', 'not a valid invite link'],
    ['t.me/addstickers/pack', 'Telegram "addstickers" link'],
    ['t.me/share/url', 'Telegram "share" link'],
    ['tg://settings', 'names no group'],
    ['https://t.me/%E0%A4%A', 'badly percent-encoded'],
  ])('rejects %j', (input, reason) => {
    let error: unknown;
    try {
      normalizeGroupLink(input);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InvalidLinkError);
    expect((error as Error).message).toContain(reason);
    // The message quotes the input so a user can find it in their file.
    expect((error as Error).message.startsWith(JSON.stringify(input))).toBe(true);
  });

  it('tells usernames from invites', () => {
    expect(parseGroupLink('t.me/x_group')).toEqual({ kind: 'username', username: 'x_group', link: '@x_group' });
    expect(parseGroupLink('t.me/+Hash_12345')).toEqual({
      kind: 'invite',
      hash: 'Hash_12345',
      link: 'https://t.me/+Hash_12345',
    });
  });
});

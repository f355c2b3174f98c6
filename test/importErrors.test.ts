/**
 * A corpus of broken inputs for `lexus import`: each gives its exact message (file, line, key),
 * exit code 65, and leaves the database byte for byte as it was.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { runLexusAsync } from './helpers/cli';
import { createTestDatabase, type TestDatabase } from './helpers/database';
import { dumpDatabase } from './helpers/fixtures';
import { databaseUrl } from './helpers/net';
import { copyExamples, type OldSystemCopy, runImport } from './helpers/oldSystem';

let t: TestDatabase;
let url: string;
let baseline: Record<string, string[]>;
beforeAll(async () => {
  t = await createTestDatabase({ start: '2026-11-24T12:00:00.000Z' });
  const c = t.connection;
  url = databaseUrl(c);
  // A database that already holds a good import: a broken one must not touch it.
  const good = await copyExamples();
  await runImport(t.dataSource, good.dir, t.clock);
  await good.cleanup();
  baseline = await dumpDatabase(t);
  return () => t.close();
});

const lexusImport = (dir: string) => runLexusAsync(['import', '--dir', dir], { env: { DATABASE_URL: url } });

const SESSION_KEY_LINE = 7; // line of lexus_kyiv_1's string_session in examples/accounts_config.json

type Breakage = (old: OldSystemCopy) => Promise<void>;
const cases: [string, Breakage, string[]][] = [
  [
    'a private post link in targets.txt',
    async (old) => old.write('targets.txt', `${await old.read('targets.txt')}t.me/c/123/45\n`),
    ['targets.txt:18: "t.me/c/123/45" is a private post link, not a group'],
  ],
  [
    'links that lead nowhere, each with its line',
    async (old) => old.write('targets.txt', 'https://example.com/cars\n\n@ok_group\n@bad-name\n'),
    [
      'targets.txt:1: "https://example.com/cars" is not a Telegram link (host "example.com")',
      'targets.txt:4: "@bad-name" is not a group link: "bad-name" is not a valid Telegram username',
    ],
  ],
  ['no targets.txt', (old) => old.remove('targets.txt'), ['targets.txt: not found in DIR']],
  ['no accounts_config.json', (old) => old.remove('accounts_config.json'), ['accounts_config.json: not found in DIR']],
  [
    'invalid JSON, with its position',
    (old) => old.write('group_niches.json', '{\n  "@kyiv_premium_auto": "kyiv_cars",\n}\n'),
    ['group_niches.json:3: invalid JSON at line 3, column 1: property name expected'],
  ],
  [
    'an empty JSON file',
    (old) => old.write('lexus_accounts_config.json', ''),
    ['lexus_accounts_config.json:1: invalid JSON at line 1, column 1: value expected'],
  ],
  [
    'accounts_config.json that is not a list',
    (old) => old.writeJson('accounts_config.json', { session_name: 'lexus_kyiv_1' }),
    ['accounts_config.json:1: must be a JSON array of accounts'],
  ],
  [
    'wrong types in an account',
    async (old) => {
      const accounts = await old.json('accounts_config.json');
      accounts[1].api_id = 'abc';
      accounts[2].phone = ['+380'];
      await old.writeJson('accounts_config.json', accounts);
    },
    [
      'accounts_config.json:14: [1].api_id: must be a positive whole number',
      'accounts_config.json:20: [2].phone: must be a text or a number',
    ],
  ],
  [
    'an account without session_name',
    async (old) => {
      const accounts = await old.json('accounts_config.json');
      delete accounts[3].session_name;
      await old.writeJson('accounts_config.json', accounts);
    },
    ['accounts_config.json:22: [3].session_name: is required, a text'],
  ],
  [
    'a duplicate session_name',
    async (old) => {
      const accounts = await old.json('accounts_config.json');
      accounts[3].session_name = 'lexus_kyiv_1';
      await old.writeJson('accounts_config.json', accounts);
    },
    ['accounts_config.json:23: [3].session_name: "lexus_kyiv_1" is already the session_name of [0]'],
  ],
  [
    'a bad api_hash',
    async (old) => {
      const accounts = await old.json('accounts_config.json');
      accounts[1].api_hash = 'xyz';
      await old.writeJson('accounts_config.json', accounts);
    },
    ['accounts_config.json:15: [1].api_hash: must be 32 hexadecimal characters'],
  ],
  [
    'a string session that is not one, without printing it',
    async (old) => {
      const accounts = await old.json('accounts_config.json');
      accounts[0].string_session = 'xSECRET-SESSION-TEXT';
      await old.writeJson('accounts_config.json', accounts);
    },
    [
      `accounts_config.json:${SESSION_KEY_LINE}: [0].string_session: is not a Telethon or GramJS string session (it must start with "1")`,
    ],
  ],
  [
    'an unreadable .session file',
    (old) => old.write('sessions/lexus_kyiv_2.session', 'this is not SQLite'),
    ['sessions/lexus_kyiv_2.session: is not an SQLite file, so not a Telethon session'],
  ],
  [
    'a broken string session in sessions/NAME.txt',
    (old) => old.write('sessions/lexus_lviv_4.txt', '1AAAA\n'),
    ['sessions/lexus_lviv_4.txt: is not a complete string session (data centre, address, port and a 256-byte key)'],
  ],
  [
    'an assignment to an account that does not exist',
    async (old) => {
      const assignments = await old.json('group_account_assignments.json');
      assignments['@autobazar_ua'].account_name = 'lexus_nobody';
      await old.writeJson('group_account_assignments.json', assignments);
    },
    ['group_account_assignments.json:2: "@autobazar_ua": account "lexus_nobody" is not in accounts_config.json'],
  ],
  [
    'an assignment to an account that is not whitelisted',
    async (old) => {
      const assignments = await old.json('group_account_assignments.json');
      assignments['@autobazar_ua'].account_name = 'bali_villa_1';
      await old.writeJson('group_account_assignments.json', assignments);
    },
    [
      'group_account_assignments.json:2: "@autobazar_ua": account "bali_villa_1" is not in allowed_accounts, so it is not imported; the group would be left to another account',
    ],
  ],
  [
    'a join time that is not a time, and one in the future',
    async (old) => {
      const assignments = await old.json('group_account_assignments.json');
      assignments['@autobazar_ua'].joined_at = 'yesterday';
      assignments['t.me/avto_kyiv_rynok'].joined_at_iso = '2027-01-01T00:00:00Z';
      await old.writeJson('group_account_assignments.json', assignments);
    },
    [
      'group_account_assignments.json:2: "@autobazar_ua": joined_at "yesterday" is not an ISO-8601 time like 2025-11-20T10:15:30Z',
      'group_account_assignments.json:6: "t.me/avto_kyiv_rynok": joined_at "2027-01-01T00:00:00Z" is in the future',
    ],
  ],
  [
    'one group assigned to two accounts',
    async (old) => {
      const assignments = await old.json('group_account_assignments.json');
      assignments['https://t.me/AutoBazar_UA'] = { account_name: 'lexus_kyiv_2' };
      await old.writeJson('group_account_assignments.json', assignments);
    },
    [
      'group_account_assignments.json:13: "https://t.me/AutoBazar_UA": is the same group as "@autobazar_ua", bound there to "lexus_kyiv_1", here to "lexus_kyiv_2"',
    ],
  ],
  [
    'a niche that is not a text, and two niches for one group',
    (old) =>
      old.writeJson('group_niches.json', { '@kyiv_premium_auto': 7, 't.me/kharkiv_auto': 'a', '@Kharkiv_Auto': 'b' }),
    [
      'group_niches.json:2: "@kyiv_premium_auto": the niche must be a text',
      'group_niches.json:4: "@Kharkiv_Auto": is the same group as "t.me/kharkiv_auto", with another niche ("b" and "a")',
    ],
  ],
  [
    'a key given twice in one JSON object',
    (old) =>
      old.write(
        'group_account_assignments.json',
        '{\n  "@autobazar_ua": { "account_name": "lexus_kyiv_1" },\n  "@autobazar_ua": { "account_name": "lexus_kyiv_2" }\n}\n',
      ),
    ['group_account_assignments.json:3: the key "@autobazar_ua" is given twice (lines 2 and 3): keep one'],
  ],
  [
    'account_name and account that disagree',
    async (old) => {
      const assignments = await old.json('group_account_assignments.json');
      assignments['@autobazar_ua'].account = 'lexus_kyiv_2';
      await old.writeJson('group_account_assignments.json', assignments);
    },
    [
      'group_account_assignments.json:2: "@autobazar_ua": account_name "lexus_kyiv_1" and account "lexus_kyiv_2" disagree',
    ],
  ],
  [
    'one Telegram account under two names',
    async (old) => {
      const accounts = await old.json('accounts_config.json');
      accounts[3].string_session = accounts[0].string_session;
      await old.writeJson('accounts_config.json', accounts);
    },
    [
      'accounts_config.json: "lexus_lviv_4" has the same session as "lexus_kyiv_1": one Telegram account under two names',
    ],
  ],
  [
    'a whitelist name that differs from the account only in letter case',
    (old) => old.writeJson('lexus_accounts_config.json', { allowed_accounts: ['lexus_kyiv_1', 'Lexus_Kyiv_2'] }),
    [
      'lexus_accounts_config.json:4: allowed_accounts[1]: "Lexus_Kyiv_2" is not in accounts_config.json; did you mean "lexus_kyiv_2"?',
    ],
  ],
  [
    'a whitelist with a misspelled key (it would import every account)',
    (old) => old.writeJson('lexus_accounts_config.json', { allowed: ['lexus_kyiv_1'] }),
    ['lexus_accounts_config.json:1: has the key "allowed"; the list of Lexus accounts goes under "allowed_accounts"'],
  ],
  [
    'a file saved as UTF-16',
    (old) => old.write('targets.txt', Buffer.from('\ufeff@autobazar_ua\n', 'utf16le')),
    ['targets.txt: is UTF-16 (as Windows PowerShell writes files), not UTF-8: save it as UTF-8'],
  ],
  [
    'a link with an invisible character copied from a web page',
    (old) => old.write('targets.txt', '@autobazar\u200b_ua\n'),
    ['targets.txt:1: "@autobazar\\u200b_ua" contains an invisible character (copied from a web page?)'],
  ],
];

describe('lexus import refuses broken input', () => {
  it.concurrent.each(cases)('%s', async (_name, breakIt, expected) => {
    const old = await copyExamples();
    try {
      await breakIt(old);
      const run = await lexusImport(old.dir);
      expect(run.status).toBe(65);
      const lines = run.stderr.split('\n').map((l) => l.trim());
      expect(lines[0]).toMatch(new RegExp(`^lexus import: .*: ${expected.length} problems?; nothing was written$`));
      expect(lines.filter((l) => l !== '' && !l.startsWith('warning:')).slice(1)).toEqual(
        expected.map((e) => e.replace('DIR', old.dir)),
      );
      expect(run.stdout + run.stderr).not.toMatch(/SECRET|example-proxy-password/);
      expect(await dumpDatabase(t)).toEqual(baseline);
    } finally {
      await old.cleanup();
    }
  });

  it('lists every problem at once, from every file', async () => {
    const old = await copyExamples();
    try {
      await old.write('targets.txt', 't.me/c/1/2\n');
      await old.write('sessions/lexus_odesa_3.session', 'garbage');
      await old.writeJson('group_niches.json', []);
      const run = await lexusImport(old.dir);
      expect(run.status).toBe(65);
      expect(run.stderr).toContain('3 problems; nothing was written');
      expect(run.stderr).toContain('targets.txt:1: "t.me/c/1/2" is a private post link, not a group');
      expect(run.stderr).toContain('group_niches.json:1: must be a JSON object');
      expect(run.stderr).toContain('sessions/lexus_odesa_3.session: is not an SQLite file');
    } finally {
      await old.cleanup();
    }
  });

  it('--json lists the errors for scripts', async () => {
    const old = await copyExamples();
    try {
      await old.write('targets.txt', '@x\n');
      const run = await runLexusAsync(['import', '--dir', old.dir, '--json'], { env: { DATABASE_URL: url } });
      expect(run.status).toBe(65);
      expect(JSON.parse(run.stdout)).toMatchObject({
        ok: false,
        errors: ['targets.txt:1: "@x" is not a group link: "x" is not a valid Telegram username'],
      });
    } finally {
      await old.cleanup();
    }
  });
});

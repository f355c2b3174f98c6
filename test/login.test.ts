import { PassThrough, Writable } from 'node:stream';
import { Api, errors } from 'telegram';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../src/logger';
import {
  type LoginClient,
  type LoginClientFactory,
  LoginError,
  type LoginPrompts,
  login,
  logout,
} from '../src/telegram/login';
import { terminalPrompts } from '../src/terminalPrompts';
import { useTestDatabase } from './helpers/database';
import { insertAccount } from './helpers/fixtures';

const t = useTestDatabase();
const NEW_SESSION = '1BQANOTREAL-SESSION-STRING';
const rpc = (message: string, code = 400) =>
  errors.RPCMessageToError(
    new Api.RpcError({ errorCode: code, errorMessage: message }),
    new Api.auth.SignIn({ phoneNumber: '', phoneCodeHash: '' }),
  );

interface FakeTelegramLogin {
  factory: LoginClientFactory;
  made: { apiId: number; apiHash: string; sessionString: string; proxy: string | null }[];
  invoked: string[];
}

/** A Telegram that asks for the phone, then codes until "12345", then the password "pw". */
function fakeTelegramLogin(
  options: { password?: boolean; startError?: Error; logoutError?: Error } = {},
): FakeTelegramLogin {
  const made: FakeTelegramLogin['made'] = [];
  const invoked: string[] = [];
  const factory: LoginClientFactory = (sessionString, apiId, apiHash, proxy) => {
    made.push({ apiId, apiHash, sessionString, proxy });
    let loggedIn = false;
    const client: LoginClient = {
      async start(params) {
        await params.phoneNumber();
        if (options.startError) {
          if (await params.onError(options.startError)) return;
        }
        for (;;) {
          const code = await params.phoneCode();
          if (code === '12345') break;
          if (await params.onError(rpc('PHONE_CODE_INVALID'))) return;
        }
        if (options.password && (await params.password('car')) !== 'pw') {
          if (await params.onError(rpc('PASSWORD_HASH_INVALID'))) return;
        }
        loggedIn = true;
      },
      async connect() {},
      async getMe() {
        return { id: 4242, username: 'lexus_seller' };
      },
      async invoke(request) {
        invoked.push(request.className);
        if (options.logoutError) throw options.logoutError;
        return true;
      },
      session: { save: () => (loggedIn ? NEW_SESSION : '') },
      async destroy() {},
    };
    return client;
  };
  return { factory, made, invoked };
}

function scriptedPrompts(answers: {
  phone?: string;
  codes?: string[];
  password?: string;
}): LoginPrompts & { said: string[] } {
  const codes = [...(answers.codes ?? ['12345'])];
  const said: string[] = [];
  return {
    phone: async () => answers.phone ?? '+380501112233',
    code: async () => codes.shift() ?? '12345',
    password: async () => answers.password ?? 'pw',
    say: (m) => said.push(m),
    said,
  };
}

function deps(
  fake: FakeTelegramLogin,
  credentials: { apiId: number | null; apiHash: string | null } = { apiId: 111, apiHash: 'a'.repeat(32) },
) {
  const lines: string[] = [];
  const log = createLogger({
    level: 'trace',
    destination: new Writable({
      write: (c, _e, done) => {
        lines.push(String(c));
        done();
      },
    }),
  });
  return { deps: { dataSource: t.dataSource, clock: t.clock, log, createClient: fake.factory, ...credentials }, lines };
}

describe('lexus login', () => {
  it('creates the account and stores its new session; a wrong code is asked again', async () => {
    const fake = fakeTelegramLogin();
    const prompts = scriptedPrompts({ codes: ['00000', '12345'] });
    const { deps: d, lines } = deps(fake);
    expect(await login(d, 'lexus_new', prompts)).toEqual({
      accountId: 1,
      created: true,
      userId: '4242',
      username: 'lexus_seller',
    });
    expect(prompts.said).toEqual(['Wrong code, try again.']);
    expect(await t.query('SELECT session_name, phone, status, session_string FROM accounts')).toEqual([
      { session_name: 'lexus_new', phone: '+380501112233', status: 'active', session_string: NEW_SESSION },
    ]);
    expect(fake.made).toEqual([{ apiId: 111, apiHash: 'a'.repeat(32), sessionString: '', proxy: null }]);
    expect(lines.join('')).not.toContain(NEW_SESSION);
  });

  it("uses the account's own credentials, proxy and phone; a dead session's account becomes active again", async () => {
    await insertAccount(t, 'lexus_kyiv_1', {
      status: 'banned',
      api_id: 999,
      api_hash: 'b'.repeat(32),
      proxy: 'socks5://u:p@h:1',
      phone: '+380671112244',
    });
    const fake = fakeTelegramLogin({ password: true });
    const result = await login(deps(fake).deps, 'lexus_kyiv_1', scriptedPrompts({ phone: 'never asked' }));
    expect(result.created).toBe(false);
    expect(fake.made[0]).toEqual({ apiId: 999, apiHash: 'b'.repeat(32), sessionString: '', proxy: 'socks5://u:p@h:1' });
    expect(await t.query('SELECT status, session_string, phone FROM accounts')).toEqual([
      { status: 'active', session_string: NEW_SESSION, phone: '+380671112244' },
    ]);
  });

  it('keeps a FloodWait status: a new session does not end a wait', async () => {
    await insertAccount(t, 'lexus_waiting', { status: 'flood_wait', next_allowed_action_time: '2026-03-10T12:00:00Z' });
    await login(deps(fakeTelegramLogin()).deps, 'lexus_waiting', scriptedPrompts({}));
    expect(await t.query('SELECT status FROM accounts')).toEqual([{ status: 'flood_wait' }]);
  });

  it('says why it failed, storing nothing: no API credentials, a FloodWait', async () => {
    await expect(
      login(deps(fakeTelegramLogin(), { apiId: null, apiHash: null }).deps, 'x', scriptedPrompts({})),
    ).rejects.toThrow(/TG_API_ID and TG_API_HASH/);
    await expect(
      login(deps(fakeTelegramLogin({ startError: rpc('FLOOD_WAIT_3600', 420) })).deps, 'x', scriptedPrompts({})),
    ).rejects.toThrow(new LoginError('Telegram asks to wait 3600 s before trying again (FLOOD_WAIT_3600)'));
    expect(await t.query('SELECT * FROM accounts')).toEqual([]);
  });
});

describe('lexus login stops when nobody answers', () => {
  it('does not send an old code again after the input is closed', async () => {
    const fake = fakeTelegramLogin();
    let codes = 0;
    const prompts = scriptedPrompts({});
    prompts.code = async () => {
      codes++;
      if (codes === 1) return '00000';
      throw new Error('no answer: the input was closed');
    };
    await expect(login(deps(fake).deps, 'lexus_new', prompts)).rejects.toThrow('the login was abandoned (no answer)');
    expect(codes).toBe(2);
    expect(await t.query('SELECT * FROM accounts')).toEqual([]);
  });

  it('asks again for an empty answer', async () => {
    const prompts = scriptedPrompts({ codes: ['', '12345'] });
    await login(deps(fakeTelegramLogin()).deps, 'lexus_new', prompts);
    expect(prompts.said).toEqual(['An answer is needed.']);
  });
});

describe('lexus logout', () => {
  it('revokes the session on Telegram and clears it', async () => {
    await insertAccount(t, 'lexus_1', { session_string: NEW_SESSION });
    const fake = fakeTelegramLogin();
    expect(await logout(deps(fake).deps, 'lexus_1')).toEqual({ revoked: true, reason: null });
    expect(fake.invoked).toEqual(['auth.LogOut']);
    expect(fake.made[0]?.sessionString).toBe(NEW_SESSION);
    expect(await t.query('SELECT session_string FROM accounts')).toEqual([{ session_string: null }]);
  });

  it('clears a session Telegram says is dead; keeps one it could not revoke', async () => {
    await insertAccount(t, 'lexus_1', { session_string: NEW_SESSION });
    await expect(
      logout(deps(fakeTelegramLogin({ logoutError: new Error('connection closed') })).deps, 'lexus_1'),
    ).rejects.toThrow(/the session is kept/);
    expect(await t.query('SELECT session_string FROM accounts')).toEqual([{ session_string: NEW_SESSION }]);
    expect(
      await logout(deps(fakeTelegramLogin({ logoutError: rpc('AUTH_KEY_UNREGISTERED', 401) })).deps, 'lexus_1'),
    ).toEqual({ revoked: false, reason: 'AUTH_KEY_UNREGISTERED' });
    expect(await t.query('SELECT session_string FROM accounts')).toEqual([{ session_string: null }]);
    await expect(logout(deps(fakeTelegramLogin()).deps, 'lexus_1')).rejects.toThrow('has no session to log out');
  });
});

describe('terminal prompts', () => {
  it('ask on the output and read answers line by line, never writing the password back', async () => {
    const input = new PassThrough();
    let shown = '';
    const output = new Writable({
      write: (c, _e, done) => {
        shown += String(c);
        done();
      },
    });
    const prompts = terminalPrompts(input, output);
    input.write('+380501112233\n12345\nmy-secret-pw\n');
    expect(await prompts.phone()).toBe('+380501112233');
    expect(await prompts.code()).toBe('12345');
    expect(await prompts.password('car')).toBe('my-secret-pw');
    prompts.close();
    expect(shown).toContain('Two-step verification password (hint: car): ');
    expect(shown).not.toContain('my-secret-pw');
    await expect(prompts.code()).rejects.toThrow('the input was closed');
  });
});

/**
 * `lexus login NAME` and `lexus logout NAME`: make (or revoke) an account's Telegram session and
 * store it in accounts.session_string. The session string and the 2FA password are never
 * printed or logged.
 */
import { Api, TelegramClient } from 'telegram';
import { StringSession } from 'telegram/sessions';
import type { DataSource } from 'typeorm';
import type { Clock } from '../clock';
import { sqlTime } from '../db/postgresTypes';
import type { Logger } from '../logger';
import { clearSession, findAccountBySessionName, type SessionAccountRow, saveLoggedInSession } from '../sql/sessions';
import { accountSettingsProblem, apiCredentialsOf, ProxyError, parseProxy } from './accountSettings';
import { classifyTelegramError, describeTelegramError } from './errorTable';
import { GramjsLogger, withTimeout } from './gramjsGateway';

/** Asks the person at the terminal. */
export interface LoginPrompts {
  phone(): Promise<string>;
  code(): Promise<string>;
  /** The 2FA password; must not echo. */
  password(hint: string | undefined): Promise<string>;
  /** Tells the person something (a wrong code, say). */
  say(message: string): void;
}

/** The part of a GramJS TelegramClient that logging in and out uses. */
export interface LoginClient {
  start(params: {
    phoneNumber: () => Promise<string>;
    phoneCode: () => Promise<string>;
    password: (hint?: string) => Promise<string>;
    onError: (error: Error) => Promise<boolean>;
  }): Promise<void>;
  connect(): Promise<unknown>;
  getMe(): Promise<{ id: { toString(): string }; username?: string | undefined }>;
  invoke(request: Api.auth.LogOut): Promise<unknown>;
  session: { save(): string | void };
  destroy(): Promise<void>;
}

export type LoginClientFactory = (
  sessionString: string,
  apiId: number,
  apiHash: string,
  proxy: string | null,
  log: Logger,
) => LoginClient;

export const gramjsLoginClient: LoginClientFactory = (sessionString, apiId, apiHash, proxy, log) =>
  new TelegramClient(new StringSession(sessionString), apiId, apiHash, {
    connectionRetries: 3,
    floodSleepThreshold: 0,
    deviceModel: 'Lexus Promotion',
    baseLogger: new GramjsLogger(log),
    ...(proxy ? { proxy: parseProxy(proxy) } : {}),
  }) as unknown as LoginClient;

export class LoginError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LoginError';
  }
}

export interface LoginDeps {
  dataSource: DataSource;
  clock: Clock;
  log: Logger;
  /** TG_API_ID / TG_API_HASH, for an account without its own. */
  apiId: number | null;
  apiHash: string | null;
  createClient?: LoginClientFactory;
}

function clientFor(deps: LoginDeps, account: SessionAccountRow | undefined, sessionString: string): LoginClient {
  const settings = {
    apiId: account?.api_id ?? null,
    apiHash: account?.api_hash ?? null,
    proxy: account?.proxy ?? null,
  };
  const problem = accountSettingsProblem(settings);
  if (problem) throw new LoginError(`the account's settings: ${problem}`);
  const credentials = apiCredentialsOf(settings, { apiId: deps.apiId, apiHash: deps.apiHash });
  if ('problem' in credentials) throw new LoginError(`${credentials.problem} (from https://my.telegram.org)`);
  try {
    return (deps.createClient ?? gramjsLoginClient)(
      sessionString,
      credentials.apiId,
      credentials.apiHash,
      settings.proxy,
      deps.log,
    );
  } catch (error) {
    if (error instanceof ProxyError) throw new LoginError(`the account's proxy: ${error.message}`);
    throw error;
  }
}

/** Errors worth asking again for: a mistyped code or password. Anything else stops the login. */
const RETRYABLE = new Set(['PHONE_CODE_INVALID', 'PASSWORD_HASH_INVALID', 'PHONE_CODE_EMPTY']);

export interface LoginResult {
  accountId: number;
  created: boolean;
  userId: string;
  username: string | null;
}

/**
 * Logs `sessionName` in: phone, the code Telegram sends, the 2FA password if set. Stores the new
 * session, creating the account (status active) if missing; a 'banned' account (dead session)
 * becomes active again. Throws LoginError with a readable reason.
 */
export async function login(
  deps: LoginDeps,
  sessionName: string,
  prompts: LoginPrompts,
  phoneOption?: string,
): Promise<LoginResult> {
  const account = await findAccountBySessionName(deps.dataSource, sessionName);
  const client = clientFor(deps, account, '');
  let phone = phoneOption ?? account?.phone ?? null;
  let failure: string | undefined;
  /**
   * Asks until the answer is not empty. If the person cannot answer (input closed, Ctrl-C),
   * the login stops: GramJS would otherwise send the previous code again and again, and
   * Telegram blocks logins for a phone that does that.
   */
  const answer = async (ask: () => Promise<string>): Promise<string> => {
    for (;;) {
      let text: string;
      try {
        text = (await ask()).trim();
      } catch {
        failure = 'the login was abandoned (no answer)';
        return '';
      }
      if (text !== '' || failure) return text;
      prompts.say('An answer is needed.');
    }
  };
  try {
    // GramJS's start() waits for a connection forever; so connect first, with a deadline.
    if ((await withTimeout(client.connect(), 30_000, 'connect')) === false)
      throw new LoginError('cannot reach Telegram');
    await client.start({
      phoneNumber: async () => {
        phone ??= await answer(() => prompts.phone());
        return phone;
      },
      phoneCode: () => answer(() => prompts.code()),
      password: (hint) => answer(() => prompts.password(hint)),
      onError: async (error) => {
        if (failure) return true;
        const text = describeTelegramError(error);
        if (RETRYABLE.has(text)) {
          prompts.say(text === 'PASSWORD_HASH_INVALID' ? 'Wrong password, try again.' : 'Wrong code, try again.');
          return false;
        }
        const outcome = classifyTelegramError(error, { uncertain: false });
        failure =
          outcome.kind === 'account_flood_wait'
            ? `Telegram asks to wait ${outcome.seconds} s before trying again (${text})`
            : text;
        return true;
      },
    });
    if (failure) throw new LoginError(failure);
    const saved = client.session.save();
    if (typeof saved !== 'string' || saved === '') throw new LoginError('Telegram did not complete the login');
    const me = await client.getMe();
    const accountId = await saveLoggedInSession(deps.dataSource, {
      sessionName,
      phone: phone && phone.length <= 20 ? phone : null,
      session: saved,
      now: sqlTime(deps.clock.now()),
    });
    return { accountId, created: account === undefined, userId: me.id.toString(), username: me.username ?? null };
  } catch (error) {
    if (error instanceof LoginError) throw error;
    throw new LoginError(failure ?? describeTelegramError(error));
  } finally {
    await client.destroy().catch(() => undefined);
  }
}

export interface LogoutResult {
  /** Telegram confirmed the session is revoked (false: it was dead already, or unreachable). */
  revoked: boolean;
  reason: string | null;
}

/**
 * Revokes the account's session on Telegram and clears it here. A session Telegram says is dead
 * already is cleared too; when Telegram cannot be reached, nothing is cleared (the session would
 * stay valid there while we forgot it).
 */
export async function logout(deps: LoginDeps, sessionName: string): Promise<LogoutResult> {
  const account = await findAccountBySessionName(deps.dataSource, sessionName);
  if (!account) throw new LoginError(`no account "${sessionName}"`);
  if (!account.session_string) throw new LoginError(`account "${sessionName}" has no session to log out`);
  const client = clientFor(deps, account, account.session_string);
  let result: LogoutResult;
  try {
    await withTimeout(client.connect(), 30_000, 'connect');
    await withTimeout(client.invoke(new Api.auth.LogOut()), 30_000, 'auth.LogOut');
    result = { revoked: true, reason: null };
  } catch (error) {
    const outcome = classifyTelegramError(error, { uncertain: false });
    if (outcome.kind !== 'session_dead') {
      throw new LoginError(`could not log out (${describeTelegramError(error)}); the session is kept, try again`);
    }
    result = { revoked: false, reason: outcome.error };
  } finally {
    await client.destroy().catch(() => undefined);
  }
  await clearSession(deps.dataSource, { id: account.id, now: sqlTime(deps.clock.now()) });
  return result;
}

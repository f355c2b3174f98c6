/**
 * What an account's connection settings may be, decided once for `lexus import`, `lexus check`,
 * `lexus login` and the GramJS gateway: its proxy (GramJS speaks SOCKS4/5 and MTProxy, not HTTP)
 * and its API credentials (its own api_id and api_hash, both or neither; else TG_API_ID and
 * TG_API_HASH). A problem of the account's own settings is stored with it
 * (accounts.config_problem): no daemon drives it until an import gives it usable ones. Messages
 * never quote a proxy URL: it may hold a password.
 */

/** An account's proxy URL as GramJS wants it. */
export type GramjsProxy =
  | { ip: string; port: number; socksType: 4 | 5; username?: string; password?: string; timeout: number }
  | { ip: string; port: number; secret: string; MTProxy: true; timeout: number };

export class ProxyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProxyError';
  }
}

const USE_INSTEAD = 'use socks5://user:pass@host:port, socks4://host:port or mtproxy://<secret>@host:port';

/** Parses a proxy URL, or throws a ProxyError saying why it cannot be used and what to use instead. */
export function parseProxy(url: string, timeoutSeconds = 10): GramjsProxy {
  let parsed: URL;
  try {
    parsed = new URL(url.trim());
  } catch {
    throw new ProxyError(`the proxy is not a URL; ${USE_INSTEAD}`);
  }
  const port = Number(parsed.port);
  const ip = parsed.hostname.replace(/^\[|\]$/g, '');
  if (!ip || !port) throw new ProxyError(`the proxy URL needs a host and a port; ${USE_INSTEAD}`);
  const user = parsed.username ? decodeURIComponent(parsed.username) : undefined;
  const password = parsed.password ? decodeURIComponent(parsed.password) : undefined;
  switch (parsed.protocol) {
    case 'socks5:':
    case 'socks5h:':
    case 'socks4:':
      return {
        ip,
        port,
        socksType: parsed.protocol === 'socks4:' ? 4 : 5,
        timeout: timeoutSeconds,
        ...(user ? { username: user } : {}),
        ...(password ? { password } : {}),
      };
    case 'mtproxy:':
      if (!user) throw new ProxyError('an MTProxy URL is mtproxy://<secret>@host:port');
      if (/^ee/i.test(user))
        throw new ProxyError(
          'GramJS cannot use a fake-TLS MTProxy (a secret starting with ee); use a plain MTProxy secret or a SOCKS proxy',
        );
      return { ip, port, secret: user, MTProxy: true, timeout: timeoutSeconds };
    default:
      throw new ProxyError(
        `GramJS cannot use a ${parsed.protocol.replace(':', '').toUpperCase()} proxy; ${USE_INSTEAD}`,
      );
  }
}

/** Why this proxy URL cannot be used (and what to use instead), or null. */
export function proxyProblem(url: string): string | null {
  try {
    parseProxy(url);
    return null;
  } catch (error) {
    if (error instanceof ProxyError) return error.message;
    throw error;
  }
}

export interface AccountSettings {
  apiId: number | null;
  apiHash: string | null;
  proxy: string | null;
}

export const HALF_CREDENTIALS =
  'api_id and api_hash go together: give both or neither (then TG_API_ID and TG_API_HASH are used)';
export const NO_CREDENTIALS =
  'no API credentials: set TG_API_ID and TG_API_HASH, or import the account with its own api_id and api_hash';

/**
 * What is wrong with the account's own settings, or null: one of api_id and api_hash without the
 * other, a proxy GramJS cannot use. Such an account is not driven (accounts.config_problem).
 */
export function accountSettingsProblem(account: AccountSettings): string | null {
  if ((account.apiId === null) !== (account.apiHash === null)) return HALF_CREDENTIALS;
  return account.proxy ? proxyProblem(account.proxy) : null;
}

/** The API credentials the account connects with: its own (both), else the defaults (TG_API_ID, TG_API_HASH). */
export function apiCredentialsOf(
  account: Pick<AccountSettings, 'apiId' | 'apiHash'>,
  defaults: { apiId?: number | null; apiHash?: string | null },
): { apiId: number; apiHash: string; own: boolean } | { problem: string } {
  if ((account.apiId === null) !== (account.apiHash === null)) return { problem: HALF_CREDENTIALS };
  if (account.apiId !== null && account.apiHash !== null)
    return { apiId: account.apiId, apiHash: account.apiHash, own: true };
  if (defaults.apiId && defaults.apiHash) return { apiId: defaults.apiId, apiHash: defaults.apiHash, own: false };
  return { problem: NO_CREDENTIALS };
}

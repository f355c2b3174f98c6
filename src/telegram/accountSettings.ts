/** An account's proxy URL as GramJS wants it. GramJS speaks SOCKS4/5 and MTProxy, not HTTP. */
export type GramjsProxy =
  | { ip: string; port: number; socksType: 4 | 5; username?: string; password?: string; timeout: number }
  | { ip: string; port: number; secret: string; MTProxy: true; timeout: number };

export class ProxyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProxyError';
  }
}

/** Parses a proxy URL. The error never quotes it: it may hold a password. */
export function parseProxy(url: string, timeoutSeconds = 10): GramjsProxy {
  let parsed: URL;
  try {
    parsed = new URL(url.trim());
  } catch {
    throw new ProxyError('the proxy is not a URL like socks5://user:pass@host:port');
  }
  const port = Number(parsed.port);
  const ip = parsed.hostname.replace(/^\[|\]$/g, '');
  if (!ip || !port) throw new ProxyError('the proxy URL needs a host and a port');
  const user = parsed.username ? decodeURIComponent(parsed.username) : undefined;
  const password = parsed.password ? decodeURIComponent(parsed.password) : undefined;
  switch (parsed.protocol) {
    case 'socks5:':
    case 'socks5h:':
    case 'socks4:':
      return {
        ip, port, socksType: parsed.protocol === 'socks4:' ? 4 : 5, timeout: timeoutSeconds,
        ...(user ? { username: user } : {}), ...(password ? { password } : {}),
      };
    case 'mtproxy:':
      if (!user) throw new ProxyError('an MTProxy URL is mtproxy://SECRET@host:port');
      if (/^ee/i.test(user)) throw new ProxyError('GramJS cannot use a fake-TLS MTProxy (a secret starting with ee)');
      return { ip, port, secret: user, MTProxy: true, timeout: timeoutSeconds };
    default:
      throw new ProxyError(`GramJS cannot use a ${parsed.protocol.replace(':', '').toUpperCase()} proxy; use socks5://, socks4:// or mtproxy://`);
  }
}

/**
 * Group links: every link that enters the system goes through normalizeGroupLink (SPEC rule 5).
 *
 *   @x, x, t.me/x, https://t.me/x/, telegram.me/x, t.me/s/x, t.me/x/123  ->  @x   (lowercased)
 *   t.me/+HASH, t.me/joinchat/HASH                                       ->  https://t.me/+HASH
 *
 * Usernames are case-insensitive on Telegram, so they are lowercased; invite hashes are
 * case-sensitive and kept byte for byte.
 */

/** The input in quotes, with invisible characters spelled out (\u200b), so a person can see them. */
function quote(input: string): string {
  return JSON.stringify(input).replace(
    /[\u00AD\u200B-\u200F\u2060\uFEFF]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

export class InvalidLinkError extends Error {
  constructor(
    readonly input: string,
    reason: string,
  ) {
    super(`${quote(input)} ${reason}`);
    this.name = 'InvalidLinkError';
  }
}

export type GroupLink =
  | { kind: 'username'; username: string; link: string }
  | { kind: 'invite'; hash: string; link: string };

const TELEGRAM_HOSTS = new Set(['t.me', 'telegram.me', 'telegram.dog']);
// Telegram usernames: a letter first, then letters, digits and underscores; 5-32 characters
// for new ones, some older public groups have 4.
const USERNAME = /^[a-z][a-z0-9_]{3,31}$/i;
// Invite hashes are URL-safe base64.
const INVITE_HASH = /^[A-Za-z0-9_-]{5,64}$/;
// Paths on t.me that are Telegram features, not usernames.
const RESERVED_PATHS = new Set([
  'addemoji',
  'addlist',
  'addstickers',
  'addtheme',
  'auth',
  'bg',
  'boost',
  'confirmphone',
  'contact',
  'invoice',
  'iv',
  'login',
  'm',
  'proxy',
  'setlanguage',
  'share',
  'socks',
]);

export const INVITE_LINK_PREFIX = 'https://t.me/+';

function fromUsername(input: string, raw: string): GroupLink {
  if (!USERNAME.test(raw)) {
    throw new InvalidLinkError(input, `is not a group link: "${raw}" is not a valid Telegram username`);
  }
  if (RESERVED_PATHS.has(raw.toLowerCase())) {
    throw new InvalidLinkError(input, `is a Telegram "${raw}" link, not a group`);
  }
  const username = raw.toLowerCase();
  return { kind: 'username', username, link: `@${username}` };
}

function fromInvite(input: string, hash: string): GroupLink {
  if (!INVITE_HASH.test(hash)) {
    throw new InvalidLinkError(input, 'is not a valid invite link');
  }
  return { kind: 'invite', hash, link: `${INVITE_LINK_PREFIX}${hash}` };
}

function fromTelegramPath(input: string, path: string): GroupLink {
  const segments = path.split('/').filter((s) => s.length > 0);
  const [first, second] = segments;
  if (first === undefined) throw new InvalidLinkError(input, 'has no group name');
  if (first === 'c') throw new InvalidLinkError(input, 'is a private post link, not a group');
  if (first === 'joinchat') {
    if (second === undefined) throw new InvalidLinkError(input, 'is an invite link without its hash');
    return fromInvite(input, second);
  }
  if (first.startsWith('+')) {
    const hash = first.slice(1);
    if (/^\d{5,15}$/.test(hash)) throw new InvalidLinkError(input, 'is a phone number link, not a group');
    return fromInvite(input, hash);
  }
  if (first === 's') {
    if (second === undefined) throw new InvalidLinkError(input, 'has no group name');
    return fromUsername(input, second);
  }
  // t.me/x and t.me/x/123 (a message in group x) both mean group x.
  return fromUsername(input, first);
}

/** Parses any accepted form of a group link. Throws InvalidLinkError, quoting the input. */
export function parseGroupLink(input: string): GroupLink {
  if (typeof input !== 'string') throw new InvalidLinkError(String(input), 'is not a link');
  const trimmed = input.trim();
  if (trimmed === '') throw new InvalidLinkError(input, 'is empty');
  if (/\s/.test(trimmed)) throw new InvalidLinkError(input, 'contains white space');
  if (/[\u200B-\u200F\u2060\uFEFF\u00AD]/.test(trimmed))
    throw new InvalidLinkError(input, 'contains an invisible character (copied from a web page?)');

  if (trimmed.startsWith('@')) return fromUsername(input, trimmed.slice(1));

  if (/^tg:/i.test(trimmed)) {
    let url: URL;
    try {
      url = new URL(trimmed);
    } catch {
      throw new InvalidLinkError(input, 'is not a valid tg:// link');
    }
    const action = url.hostname.toLowerCase();
    const domain = url.searchParams.get('domain');
    const invite = url.searchParams.get('invite');
    if (action === 'resolve' && domain) return fromUsername(input, domain);
    if (action === 'join' && invite) return fromInvite(input, invite);
    throw new InvalidLinkError(input, 'is a tg:// link that names no group');
  }

  const hasScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed);
  const looksLikeHost = /^(www\.)?[a-z0-9-]+(\.[a-z0-9-]+)+(\/|$|\?|#)/i.test(trimmed);
  if (hasScheme || looksLikeHost) {
    let url: URL;
    try {
      url = new URL(hasScheme ? trimmed : `https://${trimmed}`);
    } catch {
      throw new InvalidLinkError(input, 'is not a valid URL');
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      throw new InvalidLinkError(input, `has an unsupported scheme "${url.protocol}"`);
    }
    const host = url.hostname.toLowerCase().replace(/^www\./, '');
    if (!TELEGRAM_HOSTS.has(host)) {
      throw new InvalidLinkError(input, `is not a Telegram link (host "${host}")`);
    }
    // Query strings (?start=, ?comment=) and fragments are dropped.
    let pathname: string;
    try {
      pathname = decodeURIComponent(url.pathname);
    } catch {
      throw new InvalidLinkError(input, 'has a badly percent-encoded path');
    }
    return fromTelegramPath(input, pathname);
  }

  // A bare name: "autobazar".
  return fromUsername(input, trimmed);
}

/** The canonical form stored in targets.link: "@username" or "https://t.me/+HASH". */
export function normalizeGroupLink(input: string): string {
  return parseGroupLink(input).link;
}

/**
 * `lexus check`: everything `lexus start` needs, validated without acting. Each check gives one
 * line, a problem or an all-clear, never a secret (no session string, api_hash or proxy).
 *
 * Offline (the default) it reads and decodes; `--online` also connects each usable account and
 * asks Telegram who it is (getMe), politely: never an account in a FloodWait, never one a running
 * daemon drives (one session used twice is AUTH_KEY_DUPLICATED), and a FloodWait Telegram gives
 * is stored, as the daemon would.
 */
import type { DataSource } from 'typeorm';
import type { Clock } from '../clock';
import type { Config } from '../config';
import { loadMessages, MessagesError } from '../daemon/messages';
import type { AccountLocks } from '../db/accountLocks';
import { DbManager } from '../db/DbManager';
import { MIGRATIONS_TABLE } from '../db/database';
import { MIGRATION_NAMES } from '../db/migrations';
import { type AccountRow, accountMayAct, loadAccountsToCheck } from '../sql/accounts';
import { loadMigrationsRun } from '../sql/schema';
import type { TelegramGateway } from '../telegram/gateway';
import { clientSettingsOf } from '../telegram/gramjsGateway';

export interface CheckLine {
  ok: boolean;
  /** What was checked: "messages", "database", "account NAME". */
  subject: string;
  detail: string;
}

const ok = (subject: string, detail: string): CheckLine => ({ ok: true, subject, detail });
const problem = (subject: string, detail: string): CheckLine => ({ ok: false, subject, detail });

/** The ad's variants and their photos. */
export function checkMessages(config: Config): CheckLine[] {
  try {
    const variants = loadMessages(config.daemon.messagesFile, config.daemon.baseDir);
    const photos = variants.filter((v) => v.photoPath).length;
    return [
      ok(
        'messages',
        `${variants.length} variant${variants.length === 1 ? '' : 's'} in ${config.daemon.messagesFile}, ${photos} with a photo, every photo found`,
      ),
    ];
  } catch (error) {
    if (!(error instanceof MessagesError)) throw error;
    return error.problems.map((p) => problem('messages', p));
  }
}

/** Which of this version's migrations the database has run, and any it has that this version does not know. */
export async function checkSchema(ds: DataSource): Promise<CheckLine & { pending: number }> {
  const done = await loadMigrationsRun(ds, MIGRATIONS_TABLE);
  const unknown = done.filter((name) => !MIGRATION_NAMES.includes(name));
  if (unknown.length > 0) {
    return {
      ...problem(
        'schema',
        `the database has migrations this version does not know (${unknown.join(', ')}): it was upgraded by a newer lexus; run that version`,
      ),
      pending: 0,
    };
  }
  const pending = MIGRATION_NAMES.filter((name) => !done.includes(name));
  if (pending.length === 0) return { ...ok('schema', `up to date (${done.length} migrations)`), pending: 0 };
  return {
    ...ok(
      'schema',
      `${pending.length} of ${MIGRATION_NAMES.length} migrations to run (${pending.join(', ')}); lexus start or lexus migrate runs them`,
    ),
    pending: pending.length,
  };
}

export interface AccountCheckOptions {
  dataSource: DataSource;
  clock: Clock;
  telegram: Config['telegram'];
  /** --online: connect each usable account through this gateway (never one in a FloodWait or driven by a daemon). */
  online?: { gateway: TelegramGateway; locks: AccountLocks };
}

/** Each account: a session that decodes, API credentials, a usable proxy; online, getMe. */
export async function checkAccounts(options: AccountCheckOptions): Promise<CheckLine[]> {
  const now = options.clock.now();
  const accounts = await loadAccountsToCheck(options.dataSource, now);
  if (accounts.length === 0) {
    return [
      problem(
        'accounts',
        "none yet: import the old system's files (lexus import --dir PATH) or log an account in (lexus login NAME)",
      ),
    ];
  }
  const lines: CheckLine[] = [];
  for (const a of accounts) {
    const subject = `account ${a.session_name}`;
    if (a.status === 'banned') {
      lines.push(
        problem(
          subject,
          `stopped${a.status_reason ? ` (${a.status_reason})` : ''}; after a new login it goes on: lexus login ${a.session_name}`,
        ),
      );
      continue;
    }
    if (!a.session_string) {
      lines.push(problem(subject, `no session: log it in with lexus login ${a.session_name}`));
      continue;
    }
    const credentials = {
      sessionName: a.session_name,
      sessionString: a.session_string,
      apiId: a.api_id,
      apiHash: a.api_hash,
      proxy: a.proxy,
    };
    const settings = clientSettingsOf(credentials, options.telegram);
    if ('kind' in settings) {
      lines.push(
        problem(
          subject,
          settings.kind === 'session_dead'
            ? `${settings.error}: log it in again with lexus login ${a.session_name}`
            : settings.error,
        ),
      );
      continue;
    }
    const proxy = !settings.proxy
      ? 'no proxy'
      : 'MTProxy' in settings.proxy
        ? 'an MTProxy'
        : `a SOCKS${settings.proxy.socksType} proxy`;
    const offline = `session decodes, API id ${settings.ownCredentials ? 'of its own' : 'from TG_API_ID'}, ${proxy}`;
    if (!options.online) {
      lines.push(ok(subject, offline));
      continue;
    }
    lines.push(await checkOnline(options, options.online, a, credentials, offline));
  }
  return lines;
}

async function checkOnline(
  options: AccountCheckOptions,
  online: NonNullable<AccountCheckOptions['online']>,
  a: AccountRow,
  credentials: Parameters<TelegramGateway['session']>[0],
  offline: string,
): Promise<CheckLine> {
  const subject = `account ${a.session_name}`;
  const held = await online.locks.acquire([a.id]);
  if (!held.includes(a.id))
    return ok(
      subject,
      `${offline}; not connected: a running lexus start drives it (its session must not be used twice)`,
    );
  // Rule 4, asked of the database as the daemon asks it, once the account is ours.
  if (!(await accountMayAct(options.dataSource, a.id, options.clock.now())).mayAct) {
    await online.locks.release(a.id);
    return ok(
      subject,
      `${offline}; not connected: in a FloodWait${a.flood_wait_until ? ` until ${a.flood_wait_until.toISOString()}` : ''}`,
    );
  }
  const session = online.gateway.session(credentials);
  try {
    const outcome = await session.connect();
    switch (outcome.kind) {
      case 'connected':
        return ok(
          subject,
          `${offline}; Telegram knows it as ${outcome.username ? `@${outcome.username}` : 'a user without a username'} (id ${outcome.userId})`,
        );
      case 'account_flood_wait': {
        const until = new Date(options.clock.now().getTime() + outcome.seconds * 1000);
        await new DbManager(options.dataSource, { clock: options.clock }).setAccountFloodWait(a.id, until);
        return problem(subject, `Telegram says wait ${outcome.seconds} s (FloodWait, stored: the daemon waits too)`);
      }
      case 'session_dead':
        return problem(
          subject,
          `the session is dead (${outcome.error}): log it in again with lexus login ${a.session_name}`,
        );
      default:
        return problem(subject, `could not connect: ${outcome.error}`);
    }
  } finally {
    await session.disconnect();
    await online.locks.release(a.id);
  }
}

/** The report: one line per check, problems first marked, and a count. */
export function formatCheckLines(lines: CheckLine[]): string {
  const problems = lines.filter((l) => !l.ok).length;
  const body = lines.map((l) => `${l.ok ? 'ok     ' : 'PROBLEM'}  ${l.subject}: ${l.detail}`).join('\n');
  const total =
    problems === 0
      ? `all ${lines.length} checks passed`
      : `${problems} problem${problems === 1 ? '' : 's'} in ${lines.length} checks`;
  return `${body}\n${total}\n`;
}

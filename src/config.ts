/**
 * Configuration: read once, at the edge, from the environment (and `.env`, loaded by the CLI),
 * validated into a typed object. A bad value is a ConfigError that names the variable; the CLI
 * turns it into exit code 78 (EX_CONFIG). Secret values are never echoed.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { HOUR_MS } from './clock';
import { DEFAULT_POSTING_HOURS, DEFAULT_TIME_ZONE } from './daemon/postingWindow';

export const EXIT_CONFIG = 78;

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface PostgresConnection {
  host: string;
  port: number;
  user: string;
  password: string | undefined;
  database: string;
  /** false: plain TCP; 'require': TLS without certificate checks; 'verify': TLS, verified. */
  ssl: false | 'require' | 'verify';
}

export type DatabaseConfig =
  | { mode: 'external'; source: 'DATABASE_URL' | 'POSTGRES_*'; connection: PostgresConnection }
  | {
      mode: 'embedded';
      dataDir: string;
      port: number;
      /** LEXUS_EMBEDDED_PG_PORT was set: that port or none. */
      portExplicit: boolean;
      /** LEXUS_EMBEDDED_PG_SHARED_DIR: where, as root, its programs and data go when the user postgres cannot reach them. */
      sharedDir: string | undefined;
    };

export interface Config {
  database: DatabaseConfig;
  dbPoolSize: number;
  logLevel: LogLevel;
  /** Human-readable logs instead of JSON lines; undefined: when stdout is a terminal. */
  logPretty: boolean | undefined;
  inDocker: boolean;
  /** Folder of the old system's files for `lexus import`; default the current directory. */
  dataDir: string;
  /** TG_API_ID / TG_API_HASH, for accounts without their own (both set, or neither). */
  telegram: { apiId: number | null; apiHash: string | null };
  daemon: DaemonSettings;
  /** The health and metrics listener of `lexus start`; null: off (HEALTH_PORT=0). */
  health: { host: string; port: number } | null;
  /** How `lexus start` bounds its waits on the database and on itself. */
  bounds: {
    statementTimeoutMs: number;
    lockTimeoutMs: number;
    dbStartWaitMs: number;
    migrationWaitMs: number;
    /** 0: no watchdog. */
    watchdogMs: number;
    allowNewerSchema: boolean;
    /** The container's stop grace (LEXUS_CONTAINER_STOP_GRACE_S), when told. */
    containerStopGraceMs: number | null;
  };
  /**
   * Variables that look like ours (LEXUS_*, HEALTH_*, TG_*) but are not: a typo is not
   * applied, so it is said (the closest known name with it).
   */
  unknownVariables: { variable: string; closest: string | null }[];
}

/** How the posting daemon paces itself (`lexus start`). */
export interface DaemonSettings {
  niches: string[];
  /** Random pause between two actions of one account. */
  actionDelayMs: { min: number; max: number };
  /** Accounts acting at the same moment, at most. */
  maxParallelAccounts: number;
  joinsPerAccountPerDay: number;
  /** Hours between two posts in one group. */
  groupMinGapMs: number;
  /**
   * Joins and posts only from `start` to `end` o'clock (local hours in `timeZone`, the audience's
   * zone); the posts and joins of a day are spread over it (LEXUS_POSTING_HOURS).
   */
  postingHours: { start: number; end: number };
  timeZone: string;
  /** At least this long between two joins of one account. */
  joinSpacingMs: number;
  /** At least this long between two posts of one account (20 min: at most 3 in a clock hour). */
  postSpacingMs: number;
  /**
   * Spread each account's posts and joins over the window (the plan); false: as soon as the
   * rules allow, in bursts (LEXUS_SPREAD=0: trying the daemon out, tests; never in production).
   */
  spread: boolean;
  /**
   * An account new to the fleet starts at `startJoins` joins and `startPosts` posts a UTC day for
   * its first `flatDays` days (counted from when it was first driven), and grows to the full
   * budgets by day `fullDays`. Accounts imported with --seasoned start at full budgets.
   */
  rampUp: { startJoins: number; startPosts: number; flatDays: number; fullDays: number };
  /** How long an account limited by Telegram (PEER_FLOOD, a restriction) pauses. */
  peerFloodPauseMs: number;
  /**
   * This many refusals (USER_BANNED_IN_CHANNEL, CHAT_WRITE_FORBIDDEN) from different groups within
   * `windowMs` are read as Telegram restricting the account, not as that many group bans.
   */
  restriction: { refusals: number; windowMs: number };
  messagesFile: string;
  /** Folder the messages' photo paths are relative to (their lexus_assets/ is in it). */
  baseDir: string;
  /** How long SIGTERM waits for the action in flight. */
  shutdownGraceMs: number;
  /** Talk to the in-memory fake Telegram instead of the real one (trying the daemon out). */
  fakeTelegram: boolean;
}

export interface ConfigProblem {
  variable: string;
  message: string;
}

export class ConfigError extends Error {
  readonly exitCode = EXIT_CONFIG;
  constructor(readonly problems: ConfigProblem[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  ${p.variable}: ${p.message}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Every variable the loader knows, with its default and meaning (`.env.example` lists the same). */
export const CONFIG_VARIABLES = {
  DATABASE_URL: 'PostgreSQL URL (postgresql://, postgres:// or postgresql+asyncpg://); wins over POSTGRES_*',
  POSTGRES_HOST: 'database host; default "postgres" inside Docker, "localhost" elsewhere',
  POSTGRES_PORT: 'database port; default 5432',
  POSTGRES_USER: 'database user; default "postgres"',
  POSTGRES_PASSWORD: 'database password; default none',
  POSTGRES_DB: 'database name; default "lexus_promotion"',
  LEXUS_EMBEDDED_PG_DIR:
    'data folder of the embedded PostgreSQL used when no database is configured; default ./data/postgres',
  LEXUS_EMBEDDED_PG_PORT: 'port of the embedded PostgreSQL (loopback only); default 54329',
  LEXUS_EMBEDDED_PG_SHARED_DIR:
    'as root, where the embedded PostgreSQL keeps its programs and data when the user postgres cannot reach the checkout; default /var/cache/lexus-promotion and /var/lib/lexus-promotion',
  DB_POOL_SIZE: 'connections in the pool; default 10',
  LOG_LEVEL: 'fatal, error, warn, info, debug, trace or silent; default info',
  LOG_PRETTY: '1 for human-readable logs, 0 for JSON lines; default: human-readable on a terminal',
  LEXUS_DATA_DIR: "folder of the old system's files for `lexus import`; default the current directory",
  TG_API_ID: 'Telegram API id (my.telegram.org) for accounts imported without their own; default none',
  TG_API_HASH: 'Telegram API hash that goes with TG_API_ID; default none',
  LEXUS_NICHES: 'niches the daemon joins and posts in, comma-separated; default ukraine_cars',
  LEXUS_ACTION_DELAY_S: 'random pause between two actions of one account, MIN-MAX seconds; default 30-90',
  LEXUS_MAX_PARALLEL_ACCOUNTS: 'accounts acting at the same moment, at most; default 5',
  LEXUS_JOINS_PER_DAY: 'joins per account per UTC day; default 10',
  LEXUS_GROUP_MIN_GAP_HOURS: 'hours between two posts in one group; default 4',
  LEXUS_POSTING_HOURS:
    "joins and posts only in these hours of the audience's day, e.g. 08-22 (in LEXUS_TIMEZONE), spread over them; default 08-22",
  LEXUS_QUIET_HOURS:
    'the old way to say it: no joins or posts in these hours, e.g. 23-07 (the posting hours are the rest); not with LEXUS_POSTING_HOURS',
  LEXUS_TIMEZONE: "the audience's time zone, of LEXUS_POSTING_HOURS; default Europe/Kyiv",
  LEXUS_JOIN_SPACING_MIN: 'at least this many minutes between two joins of one account; default 30',
  LEXUS_POST_SPACING_MIN: 'at least this many minutes between two posts of one account; default 20',
  LEXUS_SPREAD:
    "1: spread each account's posts and joins over the posting hours; 0: as soon as the rules allow, in bursts (trying the daemon out; never in production); default 1",
  LEXUS_RAMP_UP_START: 'joins/posts a day of an account new to the fleet, e.g. 2/3; default 2/3',
  LEXUS_RAMP_UP_DAYS:
    'FLAT-FULL: a new account keeps its starting budgets for FLAT days, then grows to full ones by day FULL; default 3-14',
  LEXUS_PEER_FLOOD_PAUSE_HOURS: 'pause of an account Telegram limits (PEER_FLOOD, or a restriction); default 24',
  LEXUS_RESTRICTION_REFUSALS:
    'this many groups refusing one account (banned, read-only) within LEXUS_RESTRICTION_WINDOW_MIN, with nothing sent between them, is a restriction of the account, not group bans; default 3',
  LEXUS_RESTRICTION_WINDOW_MIN:
    'the window of LEXUS_RESTRICTION_REFUSALS, in minutes; default 1440 (a day: posts are spread over it)',
  LEXUS_MESSAGES_FILE: 'the ad variants; default config/messages/cars/messages.json',
  LEXUS_BASE_DIR: 'folder the photo paths of the messages are relative to; default the current directory',
  LEXUS_STATEMENT_TIMEOUT_S:
    "the longest one of the daemon's statements may run before the server cancels it; default 30",
  LEXUS_LOCK_TIMEOUT_S: "the longest one of the daemon's statements may wait for a row lock; default 10",
  LEXUS_DB_START_WAIT_S:
    'at start, how long to keep trying a database that does not answer yet (it may be starting too); 0: give up at once; default 60',
  LEXUS_MIGRATION_WAIT_S: "how long to wait for another process's migrations to end before giving up; default 300",
  LEXUS_WATCHDOG_S:
    'a daemon stuck this long (an action or its loop making no progress) exits with 70, so that its supervisor restarts it; 0: off; default 300',
  LEXUS_ALLOW_NEWER_SCHEMA: '1: start even on a schema a newer version migrated (with a warning); default 0: refuse',
  LEXUS_CONTAINER_STOP_GRACE_S:
    "the container's stop grace period (compose's stop_grace_period), to warn when LEXUS_SHUTDOWN_GRACE_S does not fit in it; default unknown",
  LEXUS_SHUTDOWN_GRACE_S: 'how long a stop waits for the action in flight; default 20',
  LEXUS_FAKE_TELEGRAM:
    '1: the daemon talks to an in-memory fake Telegram (nothing reaches Telegram), to try it without accounts; default 0',
  HEALTH_PORT:
    'port of the health and metrics listener of `lexus start` (GET /livez, /readyz, /healthz, /metrics); 0 turns it off; default 9464',
  HEALTH_HOST:
    'address that listener binds to; default 0.0.0.0 inside Docker (for the healthcheck and Prometheus), 127.0.0.1 elsewhere',
} as const;

export type ConfigVariable = keyof typeof CONFIG_VARIABLES;

const SECRET_VARIABLES = new Set<string>(['DATABASE_URL', 'POSTGRES_PASSWORD', 'TG_API_HASH']);

/** Detects a Docker (or compatible) container, to choose the compose service as default host. */
export function detectDocker(): boolean {
  if (existsSync('/.dockerenv') || existsSync('/run/.containerenv')) return true;
  try {
    return /docker|containerd|kubepods|libpod/.test(readFileSync('/proc/self/cgroup', 'utf8'));
  } catch {
    return false;
  }
}

const port = z.coerce
  .number({ error: 'must be a whole number' })
  .int('must be a whole number')
  .min(1, 'must be a port number from 1 to 65535')
  .max(65535, 'must be a port number from 1 to 65535');

/** START-END local hours, e.g. 08-22 or 23-07 (END may be 24 where `lastHour` is 24: 00-24 is all day). */
const hoursRange = (lastHour: 23 | 24) =>
  z
    .string()
    .regex(
      lastHour === 24 ? /^([01]?\d|2[0-3])-([01]?\d|2[0-4])$/ : /^([01]?\d|2[0-3])-([01]?\d|2[0-3])$/,
      `must be START-END hours, e.g. 08-22`,
    )
    .transform((v) => {
      const [start, end] = v.split('-').map(Number) as [number, number];
      return { start, end };
    })
    .refine((q) => q.start !== q.end, 'START and END must differ');

const envSchema = z.object({
  DATABASE_URL: z.string().optional(),
  POSTGRES_HOST: z.string().optional(),
  POSTGRES_PORT: port.optional(),
  POSTGRES_USER: z.string().optional(),
  POSTGRES_PASSWORD: z.string().optional(),
  POSTGRES_DB: z.string().optional(),
  LEXUS_EMBEDDED_PG_DIR: z.string().default('./data/postgres'),
  LEXUS_EMBEDDED_PG_PORT: port.default(54329),
  LEXUS_EMBEDDED_PG_SHARED_DIR: z.string().optional(),
  DB_POOL_SIZE: z.coerce
    .number()
    .int('must be a whole number')
    .min(1, 'must be at least 1')
    .max(200, 'must be at most 200')
    .default(10),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  LOG_PRETTY: z.enum(['0', '1', 'true', 'false']).optional(),
  LEXUS_DATA_DIR: z.string().default('.'),
  TG_API_ID: z.coerce
    .number({ error: 'must be a whole number' })
    .int('must be a whole number')
    .positive('must be a positive whole number')
    .optional(),
  TG_API_HASH: z
    .string()
    .regex(/^[0-9a-f]{32}$/i, 'must be 32 hexadecimal characters')
    .optional(),
  LEXUS_NICHES: z
    .string()
    .default('ukraine_cars')
    .transform((v) => [
      ...new Set(
        v
          .split(',')
          .map((n) => n.trim())
          .filter(Boolean),
      ),
    ])
    .refine((v) => v.length > 0, 'must name at least one niche'),
  LEXUS_ACTION_DELAY_S: z
    .string()
    .default('30-90')
    .transform((v) => /^(\d+)\s*-\s*(\d+)$/.exec(v) ?? /^(\d+)()$/.exec(v))
    .refine((m) => m !== null, 'must be MIN-MAX seconds, e.g. 30-90')
    .transform((m) => ({ min: Number(m![1]) * 1000, max: Number(m![2] || m![1]) * 1000 }))
    .refine((d) => d.min <= d.max, 'MIN must not be more than MAX'),
  LEXUS_MAX_PARALLEL_ACCOUNTS: z.coerce
    .number({ error: 'must be a whole number' })
    .int('must be a whole number')
    .min(1, 'must be at least 1')
    .max(100, 'must be at most 100')
    .default(5),
  LEXUS_JOINS_PER_DAY: z.coerce
    .number({ error: 'must be a whole number' })
    .int('must be a whole number')
    .min(0, 'must not be negative')
    .max(50, 'must be at most 50')
    .default(10),
  LEXUS_GROUP_MIN_GAP_HOURS: z.coerce
    .number({ error: 'must be a number' })
    .min(0, 'must not be negative')
    .max(24, 'must be at most 24')
    .default(4),
  LEXUS_POSTING_HOURS: hoursRange(24).optional(),
  LEXUS_QUIET_HOURS: hoursRange(23).optional(),
  LEXUS_SPREAD: z.enum(['0', '1']).default('1'),
  LEXUS_JOIN_SPACING_MIN: z.coerce
    .number({ error: 'must be a number' })
    .min(0, 'must not be negative')
    .max(24 * 60, 'must be at most 1440')
    .default(30),
  LEXUS_POST_SPACING_MIN: z.coerce
    .number({ error: 'must be a number' })
    .min(0, 'must not be negative')
    .max(24 * 60, 'must be at most 1440')
    .default(20),
  LEXUS_RAMP_UP_START: z
    .string()
    .default('2/3')
    .transform((v) => /^(\d+)\s*\/\s*(\d+)$/.exec(v))
    .refine((m) => m !== null, 'must be JOINS/POSTS a day, e.g. 2/3')
    .transform((m) => ({ joins: Number(m![1]), posts: Number(m![2]) }))
    .refine((r) => r.posts <= 20, 'POSTS must be at most 20 (the daily limit)')
    .refine((r) => r.joins <= 50, 'JOINS must be at most 50 (as LEXUS_JOINS_PER_DAY)'),
  LEXUS_RAMP_UP_DAYS: z
    .string()
    .default('3-14')
    .transform((v) => /^(\d+)\s*-\s*(\d+)$/.exec(v))
    .refine((m) => m !== null, 'must be FLAT-FULL days, e.g. 3-14')
    .transform((m) => ({ flat: Number(m![1]), full: Number(m![2]) }))
    .refine((d) => d.flat <= d.full && d.full <= 365, 'FLAT must not be more than FULL, and FULL at most 365'),
  LEXUS_TIMEZONE: z
    .string()
    .default(DEFAULT_TIME_ZONE)
    .refine((zone) => {
      try {
        new Intl.DateTimeFormat('en', { timeZone: zone });
        return true;
      } catch {
        return false;
      }
    }, 'must be an IANA time zone, e.g. Europe/Kyiv'),
  LEXUS_PEER_FLOOD_PAUSE_HOURS: z.coerce
    .number({ error: 'must be a number' })
    .min(1, 'must be at least 1')
    .max(24 * 30, 'must be at most 720')
    .default(24),
  LEXUS_RESTRICTION_REFUSALS: z.coerce
    .number({ error: 'must be a whole number' })
    .int('must be a whole number')
    .min(2, 'must be at least 2')
    .max(50, 'must be at most 50')
    .default(3),
  LEXUS_RESTRICTION_WINDOW_MIN: z.coerce
    .number({ error: 'must be a number' })
    .min(1, 'must be at least 1')
    .max(7 * 24 * 60, 'must be at most 10080')
    .default(24 * 60),
  LEXUS_MESSAGES_FILE: z.string().default('config/messages/cars/messages.json'),
  LEXUS_BASE_DIR: z.string().default('.'),
  LEXUS_SHUTDOWN_GRACE_S: z.coerce
    .number({ error: 'must be a number' })
    .min(1, 'must be at least 1')
    .max(300, 'must be at most 300')
    .default(20),
  LEXUS_STATEMENT_TIMEOUT_S: z.coerce
    .number({ error: 'must be a number' })
    .min(1, 'must be at least 1')
    .max(300, 'must be at most 300')
    .default(30),
  LEXUS_LOCK_TIMEOUT_S: z.coerce
    .number({ error: 'must be a number' })
    .min(1, 'must be at least 1')
    .max(300, 'must be at most 300')
    .default(10),
  LEXUS_DB_START_WAIT_S: z.coerce
    .number({ error: 'must be a number' })
    .min(0, 'must not be negative')
    .max(3600, 'must be at most 3600')
    .default(60),
  LEXUS_MIGRATION_WAIT_S: z.coerce
    .number({ error: 'must be a number' })
    .min(1, 'must be at least 1')
    .max(3600, 'must be at most 3600')
    .default(300),
  LEXUS_WATCHDOG_S: z.coerce
    .number({ error: 'must be a number' })
    .min(0, 'must not be negative')
    .max(3600, 'must be at most 3600')
    .default(300)
    .refine((s) => s === 0 || s >= 60, 'must be 0 (off) or at least 60'),
  LEXUS_ALLOW_NEWER_SCHEMA: z.enum(['0', '1']).default('0'),
  LEXUS_CONTAINER_STOP_GRACE_S: z.coerce
    .number({ error: 'must be a number' })
    .min(1, 'must be at least 1')
    .max(3600, 'must be at most 3600')
    .optional(),
  LEXUS_FAKE_TELEGRAM: z.enum(['0', '1']).default('0'),
  HEALTH_PORT: z.coerce
    .number({ error: 'must be a whole number' })
    .int('must be a whole number')
    .min(0, 'must be a port number from 1 to 65535, or 0 for off')
    .max(65535, 'must be a port number from 1 to 65535, or 0 for off')
    .default(9464),
  HEALTH_HOST: z.string().optional(),
});

/** Our prefixes: a variable with one of them that the loader does not know is a typo. */
const OUR_PREFIXES = /^(LEXUS|HEALTH|TG)_/;

/** Edit distance between two names (insertions, deletions, substitutions). */
function distance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++)
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    previous = current;
  }
  return previous[b.length]!;
}

/** The variables of `env` that look like ours but are not, each with the closest known name (null: none close). */
export function unknownVariables(
  env: Record<string, string | undefined>,
): { variable: string; closest: string | null }[] {
  const known = Object.keys(envSchema.shape);
  return Object.keys(env)
    .filter((name) => OUR_PREFIXES.test(name) && !known.includes(name))
    .sort()
    .map((variable) => {
      const [best] = known
        .map((name) => ({
          name,
          d: distance(variable, name),
          prefix: name.startsWith(variable) || variable.startsWith(name),
        }))
        .sort((x, y) => Number(y.prefix) - Number(x.prefix) || x.d - y.d);
      const close = best && (best.prefix || best.d <= Math.max(2, Math.floor(variable.length / 4)));
      return { variable, closest: close ? best.name : null };
    });
}

/** One line for an unknown variable, for the log and for lexus check. */
export const describeUnknownVariable = (u: { variable: string; closest: string | null }) =>
  `${u.variable} is not a variable lexus knows, so it has no effect${u.closest ? ` (did you mean ${u.closest}?)` : ''}`;

/** Parses a PostgreSQL URL into connection settings; the message never contains the URL. */
export function parseDatabaseUrl(raw: string): PostgresConnection {
  const fail = (why: string): never => {
    throw new ConfigError([{ variable: 'DATABASE_URL', message: why }]);
  };
  const match = /^(postgresql|postgres)(\+asyncpg)?:\/\//i.exec(raw.trim());
  if (!match) {
    fail('must start with postgresql://, postgres:// or postgresql+asyncpg://');
  }
  let url: URL;
  try {
    url = new URL(raw.trim().replace(/^[^:]+:\/\//, 'postgresql://'));
  } catch {
    return fail('is not a valid URL (expected postgresql://USER:PASSWORD@HOST:PORT/DATABASE)');
  }
  if (!url.hostname) fail('has no host (expected postgresql://USER:PASSWORD@HOST:PORT/DATABASE)');
  let portNumber = 5432;
  if (url.port) portNumber = Number(url.port);
  const decode = (s: string) => {
    try {
      return decodeURIComponent(s);
    } catch {
      return fail('has a badly percent-encoded user or password');
    }
  };
  const user = decode(url.username);
  const database = decode(url.pathname.replace(/^\//, ''));
  if (!user) fail('has no user name (expected postgresql://USER:PASSWORD@HOST:PORT/DATABASE)');
  if (!database) fail('has no database name (expected postgresql://USER:PASSWORD@HOST:PORT/DATABASE)');
  let ssl: PostgresConnection['ssl'] = false;
  const sslmode = url.searchParams.get('sslmode') ?? url.searchParams.get('ssl');
  if (sslmode !== null) {
    const mode = sslmode.toLowerCase();
    if (mode === 'disable' || mode === 'allow' || mode === 'prefer' || mode === 'false') ssl = false;
    else if (mode === 'require' || mode === 'true') ssl = 'require';
    else if (mode === 'verify-ca' || mode === 'verify-full') ssl = 'verify';
    else fail('has an unknown sslmode (use disable, require, verify-ca or verify-full)');
  }
  return {
    host: url.hostname.replace(/^\[|\]$/g, ''),
    port: portNumber,
    user,
    password: url.password ? decode(url.password) : undefined,
    database,
    ssl,
  };
}

export interface LoadConfigOptions {
  /** Whether this process runs in a container; detected when not given. */
  inDocker?: boolean;
  /** Folder that relative paths are resolved against; default the current directory. */
  cwd?: string;
}

/** Validates the environment into a Config, or throws a ConfigError naming every bad variable. */
export function loadConfig(
  env: Record<string, string | undefined> = process.env,
  options: LoadConfigOptions = {},
): Config {
  // An empty value (`VAR=` in .env or compose) means "not set".
  const present: Record<string, string> = {};
  for (const name of Object.keys(envSchema.shape)) {
    const value = env[name];
    if (value !== undefined && value.trim() !== '') present[name] = value.trim();
  }
  const parsed = envSchema.safeParse(present);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => {
        const variable = String(issue.path[0] ?? 'environment');
        const shown = SECRET_VARIABLES.has(variable) ? '' : ` (got ${JSON.stringify(present[variable])})`;
        return { variable, message: issue.message + shown };
      }),
    );
  }
  const v = parsed.data;
  if ((v.TG_API_ID === undefined) !== (v.TG_API_HASH === undefined)) {
    const missing = v.TG_API_ID === undefined ? 'TG_API_ID' : 'TG_API_HASH';
    throw new ConfigError([
      { variable: missing, message: 'TG_API_ID and TG_API_HASH go together: set both or neither' },
    ]);
  }
  if (v.LEXUS_LOCK_TIMEOUT_S > v.LEXUS_STATEMENT_TIMEOUT_S) {
    throw new ConfigError([
      {
        variable: 'LEXUS_LOCK_TIMEOUT_S',
        message: `must not be more than LEXUS_STATEMENT_TIMEOUT_S (${v.LEXUS_STATEMENT_TIMEOUT_S})`,
      },
    ]);
  }
  if (v.LEXUS_POSTING_HOURS !== undefined && v.LEXUS_QUIET_HOURS !== undefined) {
    throw new ConfigError([
      {
        variable: 'LEXUS_QUIET_HOURS',
        message: 'set LEXUS_POSTING_HOURS or LEXUS_QUIET_HOURS, not both (LEXUS_POSTING_HOURS replaces it)',
      },
    ]);
  }
  // The quiet hours of earlier versions are the rest of the day.
  const postingHours =
    v.LEXUS_POSTING_HOURS ??
    (v.LEXUS_QUIET_HOURS ? { start: v.LEXUS_QUIET_HOURS.end, end: v.LEXUS_QUIET_HOURS.start } : DEFAULT_POSTING_HOURS);
  const inDocker = options.inDocker ?? detectDocker();
  const cwd = options.cwd ?? process.cwd();

  let database: DatabaseConfig;
  const anyPostgresVar = ['POSTGRES_HOST', 'POSTGRES_PORT', 'POSTGRES_USER', 'POSTGRES_PASSWORD', 'POSTGRES_DB'].some(
    (name) => present[name] !== undefined,
  );
  if (v.DATABASE_URL !== undefined) {
    database = { mode: 'external', source: 'DATABASE_URL', connection: parseDatabaseUrl(v.DATABASE_URL) };
  } else if (anyPostgresVar) {
    database = {
      mode: 'external',
      source: 'POSTGRES_*',
      connection: {
        host: v.POSTGRES_HOST ?? (inDocker ? 'postgres' : 'localhost'),
        port: v.POSTGRES_PORT ?? 5432,
        user: v.POSTGRES_USER ?? 'postgres',
        password: v.POSTGRES_PASSWORD,
        database: v.POSTGRES_DB ?? 'lexus_promotion',
        ssl: false,
      },
    };
  } else {
    database = {
      mode: 'embedded',
      dataDir: path.resolve(cwd, v.LEXUS_EMBEDDED_PG_DIR),
      port: v.LEXUS_EMBEDDED_PG_PORT,
      portExplicit: present.LEXUS_EMBEDDED_PG_PORT !== undefined,
      sharedDir:
        v.LEXUS_EMBEDDED_PG_SHARED_DIR === undefined ? undefined : path.resolve(cwd, v.LEXUS_EMBEDDED_PG_SHARED_DIR),
    };
  }

  return {
    database,
    dbPoolSize: v.DB_POOL_SIZE,
    logLevel: v.LOG_LEVEL,
    logPretty: v.LOG_PRETTY === undefined ? undefined : v.LOG_PRETTY === '1' || v.LOG_PRETTY === 'true',
    inDocker,
    dataDir: path.resolve(cwd, v.LEXUS_DATA_DIR),
    telegram: { apiId: v.TG_API_ID ?? null, apiHash: v.TG_API_HASH ?? null },
    daemon: {
      niches: v.LEXUS_NICHES,
      actionDelayMs: v.LEXUS_ACTION_DELAY_S,
      maxParallelAccounts: v.LEXUS_MAX_PARALLEL_ACCOUNTS,
      joinsPerAccountPerDay: v.LEXUS_JOINS_PER_DAY,
      groupMinGapMs: v.LEXUS_GROUP_MIN_GAP_HOURS * HOUR_MS,
      postingHours,
      timeZone: v.LEXUS_TIMEZONE,
      joinSpacingMs: v.LEXUS_JOIN_SPACING_MIN * 60_000,
      postSpacingMs: v.LEXUS_POST_SPACING_MIN * 60_000,
      spread: v.LEXUS_SPREAD === '1',
      rampUp: {
        startJoins: v.LEXUS_RAMP_UP_START.joins,
        startPosts: v.LEXUS_RAMP_UP_START.posts,
        flatDays: v.LEXUS_RAMP_UP_DAYS.flat,
        fullDays: v.LEXUS_RAMP_UP_DAYS.full,
      },
      peerFloodPauseMs: v.LEXUS_PEER_FLOOD_PAUSE_HOURS * HOUR_MS,
      restriction: { refusals: v.LEXUS_RESTRICTION_REFUSALS, windowMs: v.LEXUS_RESTRICTION_WINDOW_MIN * 60_000 },
      messagesFile: path.resolve(cwd, v.LEXUS_MESSAGES_FILE),
      baseDir: path.resolve(cwd, v.LEXUS_BASE_DIR),
      shutdownGraceMs: v.LEXUS_SHUTDOWN_GRACE_S * 1000,
      fakeTelegram: v.LEXUS_FAKE_TELEGRAM === '1',
    },
    health:
      v.HEALTH_PORT === 0 ? null : { host: v.HEALTH_HOST ?? (inDocker ? '0.0.0.0' : '127.0.0.1'), port: v.HEALTH_PORT },
    unknownVariables: unknownVariables(env),
    bounds: {
      statementTimeoutMs: v.LEXUS_STATEMENT_TIMEOUT_S * 1000,
      lockTimeoutMs: v.LEXUS_LOCK_TIMEOUT_S * 1000,
      dbStartWaitMs: v.LEXUS_DB_START_WAIT_S * 1000,
      migrationWaitMs: v.LEXUS_MIGRATION_WAIT_S * 1000,
      watchdogMs: v.LEXUS_WATCHDOG_S * 1000,
      allowNewerSchema: v.LEXUS_ALLOW_NEWER_SCHEMA === '1',
      containerStopGraceMs: v.LEXUS_CONTAINER_STOP_GRACE_S === undefined ? null : v.LEXUS_CONTAINER_STOP_GRACE_S * 1000,
    },
  };
}

/**
 * The settings in effect, by variable, in the variables' own syntax, as `lexus start` logs them
 * once: what the code uses, defaults included; a secret only as whether it is set.
 */
export function effectiveSettings(config: Config): Record<string, string | number | boolean> {
  const d = config.daemon;
  const hours = (h: { start: number; end: number }) =>
    `${String(h.start).padStart(2, '0')}-${String(h.end).padStart(2, '0')}`;
  return {
    database: describeDatabase(config.database),
    DB_POOL_SIZE: config.dbPoolSize,
    LOG_LEVEL: config.logLevel,
    TG_API_ID: config.telegram.apiId ?? 'unset',
    TG_API_HASH: config.telegram.apiHash ? 'set' : 'unset',
    LEXUS_NICHES: d.niches.join(','),
    LEXUS_ACTION_DELAY_S: `${d.actionDelayMs.min / 1000}-${d.actionDelayMs.max / 1000}`,
    LEXUS_MAX_PARALLEL_ACCOUNTS: d.maxParallelAccounts,
    LEXUS_JOINS_PER_DAY: d.joinsPerAccountPerDay,
    LEXUS_GROUP_MIN_GAP_HOURS: d.groupMinGapMs / HOUR_MS,
    LEXUS_POSTING_HOURS: hours(d.postingHours),
    LEXUS_TIMEZONE: d.timeZone,
    LEXUS_JOIN_SPACING_MIN: d.joinSpacingMs / 60_000,
    LEXUS_POST_SPACING_MIN: d.postSpacingMs / 60_000,
    LEXUS_SPREAD: d.spread ? 1 : 0,
    LEXUS_RAMP_UP_START: `${d.rampUp.startJoins}/${d.rampUp.startPosts}`,
    LEXUS_RAMP_UP_DAYS: `${d.rampUp.flatDays}-${d.rampUp.fullDays}`,
    LEXUS_PEER_FLOOD_PAUSE_HOURS: d.peerFloodPauseMs / HOUR_MS,
    LEXUS_RESTRICTION_REFUSALS: d.restriction.refusals,
    LEXUS_RESTRICTION_WINDOW_MIN: d.restriction.windowMs / 60_000,
    LEXUS_MESSAGES_FILE: d.messagesFile,
    LEXUS_BASE_DIR: d.baseDir,
    LEXUS_SHUTDOWN_GRACE_S: d.shutdownGraceMs / 1000,
    LEXUS_STATEMENT_TIMEOUT_S: config.bounds.statementTimeoutMs / 1000,
    LEXUS_LOCK_TIMEOUT_S: config.bounds.lockTimeoutMs / 1000,
    LEXUS_DB_START_WAIT_S: config.bounds.dbStartWaitMs / 1000,
    LEXUS_MIGRATION_WAIT_S: config.bounds.migrationWaitMs / 1000,
    LEXUS_WATCHDOG_S: config.bounds.watchdogMs / 1000,
    LEXUS_ALLOW_NEWER_SCHEMA: config.bounds.allowNewerSchema ? 1 : 0,
    LEXUS_CONTAINER_STOP_GRACE_S:
      config.bounds.containerStopGraceMs === null ? 'unknown' : config.bounds.containerStopGraceMs / 1000,
    LEXUS_FAKE_TELEGRAM: d.fakeTelegram ? 1 : 0,
    HEALTH: config.health ? `${config.health.host}:${config.health.port}` : 'off',
  };
}

/** A one-line description of where the database is, without the password. */
export function describeDatabase(db: DatabaseConfig): string {
  if (db.mode === 'embedded') return `embedded PostgreSQL in ${db.dataDir} on 127.0.0.1:${db.port}`;
  const c = db.connection;
  return `postgresql://${c.user}@${c.host}:${c.port}/${c.database} (from ${db.source})`;
}

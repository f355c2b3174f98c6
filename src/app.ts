/**
 * The running application, assembled in one place: the database, the account locks, the
 * Telegram gateway (fake or GramJS: createGateway is the one place that decides), the metrics and
 * the health server, and the Daemon. `lexus start` (startApp), `lexus check --online`
 * (checkDatabase: the database, the locks and createGateway's gateway) and the simulator's
 * replicas (assembleDaemon: the simulator brings its own pool, virtual clock and fake Telegram)
 * get their parts here; cli.ts only parses the command line and turns results into exit codes
 * and the lines a person reads.
 *
 * `lexus start`, from the command to a Telegram call:
 *   bin/lexus.js                    loads dist/cli.js, exits with main()'s code
 *   src/cli.ts                      startCommand: startApp(ctx), then app.run(); refusals to exit 78
 *   src/app.ts                      startApp: database, checks, start-up log, gateway, metrics,
 *                                   health, Daemon; run(): runDaemon (src/daemon/run.ts) until a stop
 *   src/daemon/daemon.ts            Daemon.tick(): a scheduling round, each action a gateway call
 *   src/telegram/gramjsGateway.ts   the session's connect, join, post: GramJS, to Telegram
 *
 * The process's signals are src/processSignals.ts's: until the daemon runs, startApp's early
 * stop has them; runDaemon's clean stop takes them over.
 */
import type { DataSource } from 'typeorm';
import { type CheckLine, checkAccounts, checkSchema } from './check/checks';
import { type Clock, HOUR_MS, systemClock } from './clock';
import {
  type Config,
  type DaemonSettings,
  describeDatabase,
  effectiveSettings,
  type PostgresConnection,
} from './config';
import { Daemon, type DaemonDeps } from './daemon/daemon';
import { loadMessages, MessagesError, type MessageVariant } from './daemon/messages';
import { describePostingWindow } from './daemon/postingWindow';
import { runDaemon, STOP_MARGIN_MS } from './daemon/run';
import { AccountLocks } from './db/accountLocks';
import { createDataSource, type Database, openDatabase, unknownMigrations } from './db/database';
import { createMetrics, DATABASE_DEADLINE_MS, type LoopView } from './health/metrics';
import { type HealthServer, startHealthServer } from './health/server';
import type { Logger } from './logger';
import { claimSignals } from './processSignals';
import { loadDrivableAccounts } from './sql/accounts';
import { summarizeFleet } from './sql/fleet';
import { noticeRestore, restoreHold } from './sql/restore';
import { ACCOUNT_DAILY_POST_LIMIT, GROUP_DAILY_POST_LIMIT, WARMUP_HOURS } from './sql/rules';
import { FakeTelegram } from './telegram/fakeGateway';
import type { TelegramGateway } from './telegram/gateway';
import { GramjsGateway } from './telegram/gramjsGateway';
import { VERSION } from './version';

/** What every command has once its configuration is valid. */
export interface AppContext {
  config: Config;
  log: Logger;
}

export interface OpenOptions {
  /** Run the migrations (default true). */
  migrate?: boolean;
  /** The daemon's connection: statements bounded, and a database still starting waited for. */
  daemon?: boolean;
}

/** The configured database (the embedded one when none is), opened and said in the log. */
export async function openAppDatabase(
  ctx: AppContext,
  applicationName: string,
  options: OpenOptions = {},
): Promise<Database> {
  const { config, log } = ctx;
  const { migrate = true, daemon = false } = options;
  if (config.database.mode === 'embedded') {
    log.info(
      { event: 'db.embedded', data_dir: config.database.dataDir, port: config.database.port },
      'no database configured (DATABASE_URL or POSTGRES_*): using an embedded PostgreSQL',
    );
  }
  const { bounds } = config;
  const db = await openDatabase(config, {
    migrate,
    applicationName,
    log,
    onEmbeddedNote: (note) => log[note.level]({ event: note.event, ...note.fields }, note.message),
    migrationWaitMs: bounds.migrationWaitMs,
    onMigrationWait: (holder) =>
      log.warn(
        { event: 'db.migration_wait', holder, wait_s: bounds.migrationWaitMs / 1000 },
        `waiting for the migrations of another process (${holder}), at most ${bounds.migrationWaitMs / 1000} s`,
      ),
    ...(daemon
      ? {
          statementTimeoutMs: bounds.statementTimeoutMs,
          lockTimeoutMs: bounds.lockTimeoutMs,
          connectWaitMs: bounds.dbStartWaitMs,
          onConnectWait: (reason: string) =>
            log.warn(
              { event: 'db.start_wait', error: reason, wait_s: bounds.dbStartWaitMs / 1000 },
              `the database does not answer yet (${reason}); trying again for up to ${bounds.dbStartWaitMs / 1000} s`,
            ),
        }
      : {}),
  });
  log.info(
    { event: 'db.ready', database: db.description, embedded_started: db.embedded?.started ?? false },
    'database ready',
  );
  if (migrate) {
    log.info(
      { event: 'db.migrated', ran: db.migrationsRun },
      db.migrationsRun.length ? `migrations run: ${db.migrationsRun.join(', ')}` : 'schema up to date',
    );
  }
  return db;
}

/**
 * Who talks to Telegram: GramJS, or with LEXUS_FAKE_TELEGRAM=1 an in-memory fake. The one place
 * that decides. For the daemon the fake answers like Telegram (a latency, a member everywhere)
 * and the choice is logged; for `lexus check --online` it answers at once.
 */
export function createGateway(
  config: Pick<Config, 'daemon' | 'telegram'>,
  deps: { log: Logger; clock: Clock },
  use: 'daemon' | 'check',
): TelegramGateway {
  const { log, clock } = deps;
  if (!config.daemon.fakeTelegram)
    return new GramjsGateway({ apiId: config.telegram.apiId, apiHash: config.telegram.apiHash, log });
  if (use === 'check') return new FakeTelegram({ clock });
  log.warn(
    { event: 'startup.fake_telegram' },
    'LEXUS_FAKE_TELEGRAM=1: talking to an in-memory fake Telegram; nothing is really posted',
  );
  return new FakeTelegram({ clock, latencyMs: 200, membersEverywhere: true });
}

/** What a daemon is made of, besides its account locks (made here, on `connection`). */
export interface DaemonParts extends Omit<DaemonDeps, 'locks'> {
  /** The server the account locks' own connection goes to. */
  connection: PostgresConnection;
}

/**
 * The Daemon and its account locks, as `lexus start` and each simulated process run them. Opens
 * nothing: the locks connect at the daemon's first round.
 */
export function assembleDaemon(parts: DaemonParts): { daemon: Daemon; locks: AccountLocks } {
  const { connection, ...deps } = parts;
  const locks = new AccountLocks(connection);
  return { daemon: new Daemon({ ...deps, locks }), locks };
}

/** The ad's variants of the configuration (LEXUS_MESSAGES_FILE), or their problems. */
export function loadAppMessages(config: Config): { messages: MessageVariant[] } | { problems: string[] } {
  try {
    return { messages: loadMessages(config.daemon.messagesFile, config.daemon.baseDir) };
  } catch (error) {
    if (!(error instanceof MessagesError)) throw error;
    return { problems: error.problems };
  }
}

/** `lexus start`, assembled: run() runs the daemon until a stop and resolves with the exit code. */
export interface StartedApp {
  run(): Promise<number>;
}

/** What startApp did: the application ready to run, or why it refused to start (exit 78). */
export type StartResult =
  | { kind: 'ready'; app: StartedApp }
  /** The database has migrations this version does not know (and LEXUS_ALLOW_NEWER_SCHEMA is not set). */
  | { kind: 'schema_newer'; what: string }
  | { kind: 'messages_unusable'; problems: string[] };

/**
 * Until the daemon runs (waiting for the database, or for another process's migrations) a stop
 * has nothing in flight to wait for: it ends at once, said, with 0. Returns its release.
 */
function claimEarlyStop(log: Logger): () => void {
  return claimSignals(['SIGTERM', 'SIGINT'], (signal) => {
    log.info(
      { event: 'daemon.stopped', clean: true, before_start: true, signal },
      `${signal} received before the daemon started: stopped`,
    );
    process.exit(0);
  });
}

/**
 * Everything `lexus start` does before its daemon runs: the database (migrated), the schema's
 * version, the messages, a restore's hold, the start-up log, the gateway, the metrics and the
 * health server on their own small pool, the Daemon. A stop signal meanwhile ends the process at
 * once (exit 0); from run() on, the daemon's clean stop has the signals.
 */
export async function startApp(ctx: AppContext): Promise<StartResult> {
  const releaseEarlyStop = claimEarlyStop(ctx.log);
  try {
    // Ready: the early stop keeps the signals until run() hands them to the daemon.
    const result = await assemble(ctx, releaseEarlyStop);
    if (result.kind !== 'ready') releaseEarlyStop();
    return result;
  } catch (error) {
    releaseEarlyStop();
    throw error;
  }
}

async function assemble(ctx: AppContext, releaseEarlyStop: () => void): Promise<StartResult> {
  const { log, config } = ctx;
  const settings = config.daemon;
  const db = await openAppDatabase(ctx, 'lexus start', { migrate: true, daemon: true });
  const newer = await unknownMigrations(db.dataSource);
  if (newer.length > 0) {
    const what = `the database was migrated by a newer version of lexus than this one (${VERSION}): it has ${newer.join(', ')}`;
    if (!config.bounds.allowNewerSchema) {
      await db.close();
      return { kind: 'schema_newer', what };
    }
    log.warn({ event: 'db.schema_newer', migrations: newer }, `${what}; starting anyway (LEXUS_ALLOW_NEWER_SCHEMA=1)`);
  }
  const loaded = loadAppMessages(config);
  if ('problems' in loaded) {
    await db.close();
    return { kind: 'messages_unusable', problems: loaded.problems };
  }
  const { messages } = loaded;
  await noticeRestore(db.dataSource, systemClock.now());
  const hold = await restoreHold(db.dataSource);
  if (hold.held) {
    log.error(
      { event: 'db.restored', noticed_at: hold.since?.toISOString() ?? null },
      'posting is held: the database was restored from a dump (its rows forget the posts made since); check, then run lexus repair counters',
    );
  }
  const container = config.bounds.containerStopGraceMs;
  if (container !== null && settings.shutdownGraceMs + STOP_MARGIN_MS > container) {
    log.warn(
      {
        event: 'startup.grace_too_long',
        grace_s: settings.shutdownGraceMs / 1000,
        container_grace_s: container / 1000,
      },
      `LEXUS_SHUTDOWN_GRACE_S (${settings.shutdownGraceMs / 1000} s) and the ${STOP_MARGIN_MS / 1000} s a stop takes after it do not fit in the container's stop grace (${container / 1000} s): the container is killed mid-stop`,
    );
  }
  const drivable = await logStartup(ctx, db.dataSource, messages.length);
  const gateway = createGateway(config, { log, clock: systemClock }, 'daemon');
  // The daemon's loop, seen by the metrics and the health check before the daemon exists.
  let daemon: Daemon | undefined;
  const loop: LoopView = {
    get lastTickAt() {
      return daemon?.lastTickAt;
    },
    progress: () => daemon?.progress() ?? { oldestActionMs: 0, roundMs: 0 },
  };
  // Health checks and scrapes have connections of their own, cancelled by the server after 3 s:
  // a slow scrape never takes the daemon's.
  const probe = createDataSource(db.connection, {
    poolSize: 2,
    applicationName: 'lexus health',
    timeoutMs: DATABASE_DEADLINE_MS,
  });
  const startedAt = systemClock.now();
  const metrics = createMetrics({ dataSource: probe, loop, clock: systemClock, startedAt, settings });
  let health: HealthServer | undefined;
  try {
    await probe.initialize();
    if (config.health)
      health = await startHealthServer(
        { dataSource: probe, loop, clock: systemClock, registry: metrics.registry, log, startedAt },
        config.health,
      );
  } catch (error) {
    await probe.destroy().catch(() => undefined);
    await db.close();
    throw error;
  }
  daemon = assembleDaemon({
    dataSource: db.dataSource,
    connection: db.connection,
    gateway,
    clock: systemClock,
    log,
    settings,
    messages,
    observer: metrics.observer,
  }).daemon;
  const ready = daemon;
  const run = () =>
    new Promise<number>((resolve) => {
      // The signals go from the early stop to the daemon's clean stop, with no gap between.
      releaseEarlyStop();
      runDaemon({
        daemon: ready,
        clock: systemClock,
        log,
        graceMs: settings.shutdownGraceMs,
        watchdogMs: config.bounds.watchdogMs,
        onStop: async () => {
          await health?.close();
          await probe.destroy().catch(() => undefined);
          await db.close();
        },
        onExit: (code) => resolve(code),
      });
      if (drivable === 0) {
        log.warn(
          { event: 'startup.no_accounts' },
          "no usable account yet (active, with a session): import the old system's files (`lexus import --dir PATH`) or log an account in (`lexus login NAME`); the daemon keeps running and picks accounts up when they appear",
        );
      }
    });
  return { kind: 'ready', app: { run } };
}

/** The start-up summary and the settings in effect; resolves to the accounts the daemon can drive now. */
async function logStartup(ctx: AppContext, dataSource: DataSource, variants: number): Promise<number> {
  const { log, config } = ctx;
  const settings: DaemonSettings = config.daemon;
  const fleet = await summarizeFleet(dataSource);
  const drivable = (await loadDrivableAccounts(dataSource)).length;
  log.info(
    {
      event: 'startup.summary',
      version: VERSION,
      accounts: fleet.accountsByStatus,
      targets: fleet.targetsByStatus,
      niches: settings.niches,
      limits: {
        posts_per_group_per_day: GROUP_DAILY_POST_LIMIT,
        posts_per_account_per_day: ACCOUNT_DAILY_POST_LIMIT,
        joins_per_account_per_day: settings.joinsPerAccountPerDay,
        warmup_hours: WARMUP_HOURS,
        group_min_gap_hours: settings.groupMinGapMs / HOUR_MS,
      },
      posting_hours: describePostingWindow(systemClock.now(), settings.postingHours, settings.timeZone),
      spread: settings.spread,
      join_spacing_min: settings.joinSpacingMs / 60_000,
      post_spacing_min: settings.postSpacingMs / 60_000,
      ramp_up: settings.rampUp,
      variants,
    },
    `lexus ${VERSION} starting: ${fleet.accountCount} accounts, ${Object.values(fleet.targetsByStatus).reduce((a, b) => a + b, 0)} groups, ${variants} message variants; ` +
      `posting ${describePostingWindow(systemClock.now(), settings.postingHours, settings.timeZone)}${settings.spread ? ', spread over it' : ', as soon as the rules allow (LEXUS_SPREAD=0)'}`,
  );
  log.info(
    { event: 'startup.settings', settings: effectiveSettings(config) },
    'settings in effect (every variable, defaults included)',
  );
  return drivable;
}

/**
 * `lexus check`'s database lines: the database, its schema and, once the schema is this
 * version's, every account; with `online`, a getMe per account through the gateway and the
 * account locks (skipping accounts a running daemon drives).
 */
export async function checkDatabase(ctx: AppContext, options: { online?: boolean }): Promise<CheckLine[]> {
  const { config } = ctx;
  let db: Database;
  try {
    db = await openDatabase(config, { migrate: false, applicationName: 'lexus check' });
  } catch (error) {
    return [
      { ok: false, subject: 'database', detail: `${describeDatabase(config.database)}: ${(error as Error).message}` },
    ];
  }
  const locks = options.online ? new AccountLocks(db.connection) : undefined;
  try {
    const { pending, ...schema } = await checkSchema(db.dataSource);
    const lines: CheckLine[] = [{ ok: true, subject: 'database', detail: `${db.description} answers` }, schema];
    if (pending > 0 || !schema.ok) {
      // The accounts' columns are the migrations' work: they cannot be read before.
      return [
        ...lines,
        {
          ok: false,
          subject: 'accounts',
          detail: "not checked: the schema is not this version's yet (lexus migrate, then lexus check again)",
        },
      ];
    }
    const gateway = createGateway(config, { log: ctx.log, clock: systemClock }, 'check');
    return [
      ...lines,
      ...(await checkAccounts({
        dataSource: db.dataSource,
        clock: systemClock,
        telegram: config.telegram,
        ...(locks ? { online: { gateway, locks } } : {}),
      })),
    ];
  } finally {
    await locks?.close();
    await db.close();
  }
}

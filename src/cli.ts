/**
 * The `lexus` command. Each subcommand validates configuration once, here at the edge, and
 * turns known errors into exit codes: 78 for configuration (EX_CONFIG), 70 for anything else.
 * What a command runs is built elsewhere: `lexus start`'s application and `lexus check`'s
 * gateway in src/app.ts, the simulation in src/simulate/command.ts.
 */

import path from 'node:path';
import { Command, CommanderError } from 'commander';
import dotenv from 'dotenv';
import { type AppContext, checkDatabase, loadAppMessages, openAppDatabase, startApp } from './app';
import { type CheckLine, checkMessages, formatCheckLines } from './check/checks';
import { systemClock } from './clock';
import { type Config, ConfigError, describeDatabase, describeUnknownVariable, EXIT_CONFIG, loadConfig } from './config';
import type { MessageVariant } from './daemon/messages';
import { type Database, openDatabase } from './db/database';
import { EmbeddedPostgresError } from './db/embeddedPostgres';
import { formatFinding } from './import/findings';
import { formatImportReport } from './import/formatReport';
import { readOldSystem } from './import/readOldSystem';
import { ImportRefusedError, writeImport } from './import/writeImport';
import { createLogger } from './logger';
import { chaosLevel, runSimulateCommand, type SimulateOptions, wholeNumber } from './simulate/command';
import { StoredLinkCollisionError } from './sql/groups';
import { repairCounters } from './sql/restore';
import { formatStatus } from './status/formatStatus';
import { loadStatus } from './status/loadStatus';
import { type LoginDeps, LoginError, login, logout } from './telegram/login';
import { terminalPrompts } from './terminalPrompts';
import { VERSION } from './version';

export const EXIT_OK = 0;
/** The login or logout did not succeed (wrong code, Telegram refused); nothing stored. */
export const EXIT_FAILED = 1;
/** EX_DATAERR: the input files are wrong; nothing was written. */
export const EXIT_DATA = 65;
export const EXIT_SOFTWARE = 70;

type Context = AppContext;

/** Commands whose stdout is their own report log to stderr, so `--json` output stays clean. */
function setUp(logTo: 'stdout' | 'stderr' = 'stdout'): Context {
  dotenv.config({ quiet: true });
  const config = loadConfig();
  const log = createLogger({
    level: config.logLevel,
    pretty: config.logPretty ?? Boolean(logTo === 'stdout' ? process.stdout.isTTY : process.stderr.isTTY),
    ...(logTo === 'stderr' ? { fd: 2 } : {}),
  });
  for (const unknown of config.unknownVariables)
    log.warn({ event: 'config.unknown_variable', ...unknown }, describeUnknownVariable(unknown));
  return { config, log };
}

async function migrateCommand(ctx: Context): Promise<number> {
  const db = await openAppDatabase(ctx, 'lexus migrate');
  await db.close();
  return EXIT_OK;
}

/** The ad's variants' problems, on stderr. */
function sayMessagesUnusable(problems: string[]): void {
  process.stderr.write(`lexus: the messages are not usable:\n  ${problems.join('\n  ')}\n`);
}

/** The ad's variants, or undefined after saying on stderr why they are not usable. */
function loadMessagesOrSay(config: Config): MessageVariant[] | undefined {
  const loaded = loadAppMessages(config);
  if ('messages' in loaded) return loaded.messages;
  sayMessagesUnusable(loaded.problems);
  return undefined;
}

/** `lexus start`: the application assembled (src/app.ts) and run until a stop, or why it cannot start. */
async function startCommand(ctx: Context): Promise<number> {
  const started = await startApp(ctx);
  switch (started.kind) {
    case 'schema_newer':
      process.stderr.write(
        `lexus: ${started.what}; run that version, or set LEXUS_ALLOW_NEWER_SCHEMA=1 to start anyway\n`,
      );
      return EXIT_CONFIG;
    case 'messages_unusable':
      sayMessagesUnusable(started.problems);
      return EXIT_CONFIG;
    case 'ready':
      return started.app.run();
  }
}

async function simulateCommand(ctx: Context, options: SimulateOptions): Promise<number> {
  const messages = loadMessagesOrSay(ctx.config);
  if (!messages) return EXIT_CONFIG;
  const result = await runSimulateCommand(ctx.config, messages, options, {
    out: (text) => process.stdout.write(text),
    progress: (text) => (options.json ? process.stderr : process.stdout).write(`${text}\n`),
  });
  return result.violations === 0 ? EXIT_OK : EXIT_FAILED;
}

interface ImportOptions {
  dir?: string;
  dryRun?: boolean;
  json?: boolean;
  seasoned?: boolean;
}

async function importCommand(ctx: Context, options: ImportOptions): Promise<number> {
  const dir = options.dir ? path.resolve(options.dir) : ctx.config.dataDir;
  const { data, findings } = await readOldSystem(dir, systemClock.now());
  const warnings = findings.warnings.map(formatFinding);
  const refuse = (errors: string[]) => {
    if (options.json) process.stdout.write(`${JSON.stringify({ ok: false, dir, errors, warnings }, null, 2)}\n`);
    else {
      process.stderr.write(
        `lexus import: ${dir}: ${errors.length} problem${errors.length === 1 ? '' : 's'}; nothing was written\n`,
      );
      for (const line of errors) process.stderr.write(`  ${line}\n`);
      for (const line of warnings) process.stderr.write(`  warning: ${line}\n`);
    }
    return EXIT_DATA;
  };
  if (!data) return refuse(findings.errors.map(formatFinding));
  const dryRun = options.dryRun ?? false;
  let db: Database | undefined;
  try {
    // A dry run writes nothing, migrations included: they run inside its rolled-back transaction.
    db = await openAppDatabase(ctx, 'lexus import', { migrate: !dryRun });
    const report = await writeImport(db.dataSource, data, {
      clock: systemClock,
      dryRun,
      migrateInTransaction: dryRun,
      warnings,
      seasoned: options.seasoned ?? false,
    });
    ctx.log.info(
      {
        event: 'import.done',
        dry_run: report.dryRun,
        accounts_created: report.accounts.created.length,
        accounts_updated: report.accounts.updated.length,
        targets_created: report.targets.created,
        bindings_created: report.bindings.created,
        conflicts: report.conflicts.length,
      },
      report.dryRun ? 'import checked (dry run)' : 'import written',
    );
    process.stdout.write(
      `${options.json ? JSON.stringify({ ok: true, ...report }, null, 2) : formatImportReport(report)}\n`,
    );
    return EXIT_OK;
  } catch (error) {
    if (error instanceof ImportRefusedError) return refuse(error.problems);
    if (error instanceof StoredLinkCollisionError) return refuse([`database: ${error.message}`]);
    throw error;
  } finally {
    await db?.close();
  }
}

/**
 * Runs a session command (login, logout) on the database: what it prints on success, or its
 * LoginError on stderr and exit 1.
 */
async function sessionCommand(
  ctx: Context,
  name: 'login' | 'logout',
  work: (deps: LoginDeps) => Promise<string>,
): Promise<number> {
  const db = await openAppDatabase(ctx, `lexus ${name}`);
  try {
    const said = await work({ dataSource: db.dataSource, clock: systemClock, log: ctx.log, ...ctx.config.telegram });
    process.stdout.write(`${said}\n`);
    return EXIT_OK;
  } catch (error) {
    if (!(error instanceof LoginError)) throw error;
    process.stderr.write(`lexus ${name}: ${error.message}\n`);
    return EXIT_FAILED;
  } finally {
    await db.close();
  }
}

function loginCommand(ctx: Context, sessionName: string, options: { phone?: string }): Promise<number> {
  return sessionCommand(ctx, 'login', async (deps) => {
    const prompts = terminalPrompts();
    try {
      const result = await login(deps, sessionName, prompts, options.phone);
      ctx.log.info({ event: 'account.login', account: sessionName, created: result.created }, 'session stored');
      return (
        `Logged in as ${result.username ? `@${result.username}` : 'a user without a username'} (Telegram id ${result.userId}); ` +
        `session stored for account "${sessionName}"${result.created ? ' (new account)' : ''}.`
      );
    } finally {
      prompts.close();
    }
  });
}

function logoutCommand(ctx: Context, sessionName: string): Promise<number> {
  return sessionCommand(ctx, 'logout', async (deps) => {
    const result = await logout(deps, sessionName);
    ctx.log.info({ event: 'account.logout', account: sessionName, revoked: result.revoked }, 'session cleared');
    return result.revoked
      ? `Session of "${sessionName}" revoked on Telegram and cleared.`
      : `Session of "${sessionName}" was already dead (${result.reason}); cleared.`;
  });
}

/** `lexus repair counters [--dry-run]`: the counters rebuilt from post_history, a restore's hold lifted. */
async function repairCountersCommand(ctx: Context, options: { dryRun?: boolean }): Promise<number> {
  const db = await openAppDatabase(ctx, 'lexus repair counters');
  try {
    const result = await repairCounters(db.dataSource, systemClock.now(), options.dryRun ?? false);
    ctx.log.info(
      { event: 'repair.counters', dry_run: options.dryRun ?? false, ...result },
      'counters rebuilt from post_history',
    );
    const verb = options.dryRun ? 'would change' : 'changed';
    process.stdout.write(
      `Counters rebuilt from post_history${options.dryRun ? ' (dry run: nothing was written)' : ''}: ${verb} ${result.accounts} account(s) and ${result.groups} group(s).\n` +
        (result.liftedHold
          ? `Posting was held after a restore; it ${options.dryRun ? 'would go' : 'goes'} on now.\n`
          : ''),
    );
    return EXIT_OK;
  } finally {
    await db.close();
  }
}

/** `lexus status [--json]`: the ops view, read from the database in one snapshot. */
async function statusCommand(ctx: Context, options: { json?: boolean }): Promise<number> {
  const { config } = ctx;
  const db = await openDatabase(config, { migrate: false, applicationName: 'lexus status' });
  try {
    const status = await loadStatus(db.dataSource, systemClock.now(), {
      ...config.daemon,
      globalCredentials: Boolean(config.telegram.apiId && config.telegram.apiHash),
    });
    process.stdout.write(options.json ? `${JSON.stringify(status, null, 2)}\n` : formatStatus(status));
    return EXIT_OK;
  } catch (error) {
    const code = (error as { code?: string }).code ?? (error as { driverError?: { code?: string } }).driverError?.code;
    if (code !== '42P01' && code !== '42703') throw error;
    process.stderr.write(
      `lexus status: the schema of ${db.description} is not set up (or not up to date): run lexus migrate, or lexus start\n`,
    );
    return EXIT_FAILED;
  } finally {
    await db.close();
  }
}

/**
 * `lexus check [--online]`: configuration (already validated by setUp: exit 78 naming each bad
 * variable), the messages and photos, the database and its schema, every account's session;
 * online, a getMe per account. Exit 0 only if every check passed, else 1.
 */
async function checkCommand(ctx: Context, options: { online?: boolean }): Promise<number> {
  const { config } = ctx;
  const lines: CheckLine[] = [
    {
      ok: true,
      subject: 'configuration',
      detail: `valid; database: ${describeDatabase(config.database)}; niches ${config.daemon.niches.join(', ')}`,
    },
    // A typo's setting is not applied: a problem, though the rest is valid. A TG_ variable far
    // from any of ours may be another program's (a shared .env): logged, not a problem.
    ...config.unknownVariables
      .filter((u) => !u.variable.startsWith('TG_') || u.closest !== null)
      .map((u): CheckLine => ({ ok: false, subject: 'configuration', detail: describeUnknownVariable(u) })),
    ...checkMessages(config),
    ...(await checkDatabase(ctx, options)),
  ];
  process.stdout.write(formatCheckLines(lines));
  return lines.every((l) => l.ok) ? EXIT_OK : EXIT_FAILED;
}

export function buildProgram(
  run: (action: (ctx: Context) => Promise<number>, logTo?: 'stdout' | 'stderr') => Promise<void>,
): Command {
  const program = new Command('lexus')
    .description(
      'Lexus Promotion: places a car-sale ad in Telegram groups from a fleet of accounts, every rule kept by PostgreSQL.',
    )
    .version(VERSION, '-V, --version', 'print the version')
    .showHelpAfterError()
    .exitOverride();
  program
    .command('migrate')
    .description('create or update the database schema (idempotent; also done at start)')
    .action(() => run(migrateCommand));
  program
    .command('start')
    .description('start the daemon (embedded PostgreSQL when no database is configured)')
    .action(() => run(startCommand));
  program
    .command('status')
    .description('the ops view: accounts, groups, posts today against the limits, the next action (from the database)')
    .option('--json', 'print it as JSON, for scripts')
    .action((options: { json?: boolean }) => run((ctx) => statusCommand(ctx, options), 'stderr'));
  program
    .command('check')
    .description(
      'validate configuration, database, schema, messages and every account session without acting; exit 0 only if all is well',
    )
    .option(
      '--online',
      'also connect each account and ask Telegram who it is (skips accounts in a FloodWait or driven by a running daemon)',
    )
    .action((options: { online?: boolean }) => run((ctx) => checkCommand(ctx, options), 'stderr'));
  program
    .command('simulate')
    .description(
      'run the real daemon against a fake Telegram on virtual time, in a scratch database, and check every rule',
    )
    .option('--accounts <N>', 'accounts in the fleet', wholeNumber('--accounts', 1, 10_000), 10)
    .option('--groups <N>', 'groups to join and post in', wholeNumber('--groups', 1, 1_000_000), 300)
    .option('--days <N>', 'simulated days', wholeNumber('--days', 1, 90), 7)
    .option('--seed <N>', 'the same seed, the same faults and pacing', wholeNumber('--seed', 0, 2 ** 32 - 1), 1)
    .option('--chaos <LEVEL>', 'what goes wrong: none, some or heavy', chaosLevel, 'some')
    .option('--replicas <N>', 'daemon processes sharing the database', wholeNumber('--replicas', 1, 10), 1)
    .option('--seasoned', 'the accounts ran before: full budgets from the first day (else a new fleet, ramped up)')
    .option('--json', 'print the report as JSON (progress goes to stderr)')
    .option('--html <FILE>', 'also write the report with a chart of posts and joins per hour')
    .option('--log <FILE>', "write the daemons' own log (JSON lines) to FILE")
    .option('--keep-database', 'keep the scratch database afterwards, to look into it')
    .addHelpText(
      'after',
      '\nUses the daemon settings of the environment (LEXUS_ACTION_DELAY_S, LEXUS_JOINS_PER_DAY, ...) and the\n' +
        'messages file. The scratch database is created on the configured server (the embedded one when none\n' +
        'is configured) and dropped at the end. Exit 0 when no rule was broken, 1 when one was.',
    )
    .action((options: SimulateOptions) => run((ctx) => simulateCommand(ctx, options), 'stderr'));
  program
    .command('import')
    .description("import the old file-based system's accounts, groups and bindings (all or nothing)")
    .option('--dir <DIR>', 'folder of the old system (default: LEXUS_DATA_DIR, else the current directory)')
    .option('--dry-run', 'check everything and show what would change, writing nothing')
    .option('--json', 'print the report as JSON')
    .option(
      '--seasoned',
      'the old system ran these accounts already: full budgets at once, no ramp-up for new accounts',
    )
    .addHelpText(
      'after',
      '\nReads targets.txt, group_niches.json, accounts_config.json, lexus_accounts_config.json,\n' +
        'group_account_assignments.json and sessions/. Exit 65 when a file is wrong (every problem\n' +
        'is listed with its file and line, and nothing is written).',
    )
    .action((options: ImportOptions) => run((ctx) => importCommand(ctx, options), 'stderr'));
  program
    .command('repair')
    .description('put right what a restore or a mishap left')
    .command('counters')
    .description(
      "rebuild today's post counters (and the last posts) of every account and group from post_history, and let posting go on after a restore",
    )
    .option('--dry-run', 'say what it would change, changing nothing')
    .action((options: { dryRun?: boolean }) => run((ctx) => repairCountersCommand(ctx, options), 'stderr'));
  program
    .command('login')
    .argument('<session_name>', 'the account (created if missing)')
    .description('log an account in to Telegram (phone, code, 2FA password) and store its session')
    .option('--phone <PHONE>', 'the phone number, e.g. +380501234567 (else the stored one, else asked)')
    .addHelpText('after', '\nIn Docker: docker compose -f docker-compose.lexus.yml run --rm lexus login NAME')
    .action((sessionName: string, options: { phone?: string }) =>
      run((ctx) => loginCommand(ctx, sessionName, options), 'stderr'),
    );
  program
    .command('logout')
    .argument('<session_name>', 'the account')
    .description("revoke an account's Telegram session and clear it")
    .action((sessionName: string) => run((ctx) => logoutCommand(ctx, sessionName), 'stderr'));
  program.addHelpText(
    'after',
    '\nConfiguration comes from the environment and .env (see .env.example).\n' +
      'Exit codes: 0 ok, 1 login/logout refused, a check failed or a rule broken in a simulation, 64 bad command line, 65 bad input files, 70 other failure, 78 bad configuration.',
  );
  return program;
}

/** Runs the CLI; resolves to the process exit code. */
export async function main(argv: string[]): Promise<number> {
  let code = EXIT_OK;
  const program = buildProgram(async (action, logTo) => {
    let ctx: Context | undefined;
    try {
      ctx = setUp(logTo);
      code = await action(ctx);
    } catch (error) {
      if (error instanceof ConfigError || error instanceof EmbeddedPostgresError) {
        process.stderr.write(`lexus: ${error.message}\n`);
        code = EXIT_CONFIG;
        return;
      }
      const message = error instanceof Error ? error.message : String(error);
      if (ctx) ctx.log.error({ event: 'fatal', err: error }, message);
      else process.stderr.write(`lexus: ${message}\n`);
      code = EXIT_SOFTWARE;
    }
  });
  try {
    await program.parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? EXIT_OK : 64;
    throw error;
  }
  return code;
}

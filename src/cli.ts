/**
 * The `lexus` command. Each subcommand validates configuration once, here at the edge, and
 * turns known errors into exit codes: 78 for configuration (EX_CONFIG), 70 for anything else.
 */
import { Command, CommanderError } from 'commander';
import dotenv from 'dotenv';
import { ConfigError, EXIT_CONFIG, loadConfig, type Config } from './config';
import { createLogger, type Logger } from './logger';
import { openDatabase, type Database } from './db/database';
import { summarizeFleet } from './db/fleetSummary';

export const EXIT_OK = 0;
export const EXIT_SOFTWARE = 70;

interface Context {
  config: Config;
  log: Logger;
}

function setUp(): Context {
  dotenv.config({ quiet: true });
  const config = loadConfig();
  const log = createLogger({ level: config.logLevel, pretty: config.logPretty });
  return { config, log };
}

async function open(ctx: Context, applicationName: string): Promise<Database> {
  const { config, log } = ctx;
  if (config.database.mode === 'embedded') {
    log.info(
      { event: 'db.embedded', data_dir: config.database.dataDir, port: config.database.port },
      'no database configured (DATABASE_URL or POSTGRES_*): using an embedded PostgreSQL',
    );
  }
  const db = await openDatabase(config, {
    migrate: true,
    applicationName,
    onEmbeddedLog: (line) => log.debug({ event: 'db.embedded.log' }, line),
  });
  log.info({ event: 'db.ready', database: db.description, embedded_started: db.embedded?.started ?? false }, 'database ready');
  log.info(
    { event: 'db.migrated', ran: db.migrationsRun },
    db.migrationsRun.length ? `migrations run: ${db.migrationsRun.join(', ')}` : 'schema up to date',
  );
  return db;
}

async function migrateCommand(ctx: Context): Promise<number> {
  const db = await open(ctx, 'lexus migrate');
  await db.close();
  return EXIT_OK;
}

async function startCommand(ctx: Context): Promise<number> {
  const { log } = ctx;
  const db = await open(ctx, 'lexus start');
  try {
    const fleet = await summarizeFleet(db.dataSource);
    log.info({ event: 'startup.summary', accounts: fleet.accountsByStatus, targets: fleet.targetsByStatus }, 'fleet at start-up');
    if (fleet.accountCount === 0) {
      log.warn(
        { event: 'startup.no_accounts' },
        'no accounts are configured yet. Next step: import the old system\'s files (`lexus import --dir PATH`) or log an account in (`lexus login NAME`).',
      );
    }
    log.info({ event: 'startup.done' }, 'database checked; the join/warm-up/post loop is not part of this version yet, exiting');
  } finally {
    await db.close();
  }
  return EXIT_OK;
}

export function buildProgram(run: (action: (ctx: Context) => Promise<number>) => Promise<void>): Command {
  const program = new Command('lexus')
    .description('Lexus Promotion: places a car-sale ad in Telegram groups from a fleet of accounts, every rule kept by PostgreSQL.')
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
  program.addHelpText(
    'after',
    '\nConfiguration comes from the environment and .env (see .env.example).\n' +
      'Exit codes: 0 ok, 78 bad configuration, 70 other failure.',
  );
  return program;
}

/** Runs the CLI; resolves to the process exit code. */
export async function main(argv: string[]): Promise<number> {
  let code = EXIT_OK;
  const program = buildProgram(async (action) => {
    let ctx: Context | undefined;
    try {
      ctx = setUp();
      code = await action(ctx);
    } catch (error) {
      if (error instanceof ConfigError) {
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

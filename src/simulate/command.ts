/**
 * `lexus simulate`: a scratch database beside the configured one (the embedded server when none
 * is configured), the simulation, the report (text, --json, --html), exit 1 on any violation.
 * The daemon's own data is never touched: the made-up fleet lives in its own database, dropped
 * at the end unless --keep-database.
 */
import { createWriteStream } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { InvalidArgumentError } from 'commander';
import type { Config } from '../config';
import type { MessageVariant } from '../daemon/messages';
import { createScratchDatabase, databaseServer } from '../db/scratchDatabase';
import { createLogger } from '../logger';
import { CHAOS_LEVELS, type ChaosLevel } from './chaos';
import { formatDayLine, formatSimulationReport } from './formatReport';
import { renderHtml } from './html';
import { type SimulationResult, type SimulationShape, simulate } from './simulation';

export interface SimulateOptions extends SimulationShape {
  json?: boolean;
  html?: string;
  log?: string;
  keepDatabase?: boolean;
}

/** A commander parser for a whole number in [min, max], naming the option when it is not one. */
export function wholeNumber(option: string, min: number, max: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`${option} must be a whole number from ${min} to ${max}, not "${value}".`);
    }
    return n;
  };
}

export function chaosLevel(value: string): ChaosLevel {
  if (!(CHAOS_LEVELS as readonly string[]).includes(value))
    throw new InvalidArgumentError(`--chaos must be one of ${CHAOS_LEVELS.join(', ')}, not "${value}".`);
  return value as ChaosLevel;
}

export interface SimulateIo {
  /** The report (stdout). */
  out: (text: string) => void;
  /** Progress lines (stderr when the report is JSON, else stdout). */
  progress: (text: string) => void;
}

export async function runSimulateCommand(
  config: Config,
  messages: MessageVariant[],
  options: SimulateOptions,
  io: SimulateIo,
): Promise<SimulationResult> {
  const logFile = options.log ? createWriteStream(path.resolve(options.log)) : undefined;
  const log = createLogger({
    level: logFile ? 'debug' : 'silent',
    pretty: false,
    ...(logFile ? { destination: logFile } : {}),
  });
  const { connection, embedded } = await databaseServer(config, (note) => {
    if (note.event !== 'db.embedded.started') io.progress(note.message);
  });
  try {
    const scratch = await createScratchDatabase(connection, 'lexus_simulation');
    const { leftovers } = scratch;
    if (leftovers.length > 0)
      io.progress(
        `Dropped ${leftovers.length} scratch database${leftovers.length === 1 ? '' : 's'} an interrupted run left: ${leftovers.join(', ')}`,
      );
    io.progress(
      `Simulating ${options.days} days: ${options.accounts} accounts, ${options.groups} groups, chaos ${options.chaos}, ` +
        `${options.replicas} process${options.replicas === 1 ? '' : 'es'}, seed ${options.seed} (database ${scratch.name})`,
    );
    try {
      const result = await simulate({
        accounts: options.accounts,
        groups: options.groups,
        days: options.days,
        seed: options.seed,
        chaos: options.chaos,
        replicas: options.replicas,
        ...(options.seasoned ? { seasoned: true } : {}),
        connection: scratch.connection,
        settings: config.daemon,
        messages,
        log,
        onDay: (day, elapsed) => io.progress(formatDayLine(day, options.days, elapsed)),
      });
      io.out(options.json ? `${JSON.stringify(result, null, 2)}\n` : formatSimulationReport(result));
      if (options.html) {
        await writeFile(path.resolve(options.html), renderHtml(result));
        io.progress(`The report with its chart: ${path.resolve(options.html)}`);
      }
      return result;
    } finally {
      if (options.keepDatabase) {
        scratch.keep();
        io.progress(`Kept the database ${scratch.name} on ${connection.host}:${connection.port}.`);
      } else {
        await scratch.drop();
      }
    }
  } finally {
    await embedded?.stop();
    if (logFile) await new Promise((resolve) => logFile.end(resolve));
  }
}

/**
 * Running the daemon for real: a scheduling round every second, the midnight job (node-cron,
 * 00:00 UTC: counters reset and yesterday's summary), and a clean stop on SIGTERM/SIGINT (no new
 * action, the one in flight finishes within the grace period, sessions disconnect, pool closes;
 * a second signal exits at once).
 */
import cron from 'node-cron';
import type { Clock } from '../clock';
import { purgeAnswerRecords } from '../db/answerQueries';
import { summarizeDay } from '../db/daemonQueries';
import type { Logger } from '../logger';
import type { Daemon } from './daemon';

/** A second signal this soon after the first is the same one, seen twice (the terminal and npm). */
const SAME_SIGNAL_MS = 1000;

export interface RunOptions {
  daemon: Daemon;
  clock: Clock;
  log: Logger;
  graceMs: number;
  /** Called once everything is stopped, with the exit code. */
  onExit: (code: number) => void | Promise<void>;
  tickMs?: number;
}

export interface Running {
  /** Stops as on SIGTERM; resolves when stopped. */
  stop(): Promise<void>;
}

export async function midnight(daemon: Daemon, clock: Clock, log: Logger): Promise<void> {
  const reset = await daemon.db.resetDailyCountersIfNeeded();
  await purgeAnswerRecords(daemon.db.dataSource, new Date(clock.now().getTime() - 2 * 24 * 3_600_000));
  const summary = await summarizeDay(daemon.db.dataSource, clock.now());
  log.info(
    { event: 'daily.summary', day: summary.day, posts: summary.postsByAccount, joins: summary.joins, flood_waits: summary.floodWaits, groups_lost: summary.groupsLost, counters_reset: reset },
    `${summary.day}: ${Object.values(summary.postsByAccount).reduce((a, b) => a + b, 0)} posts, ${summary.joins} joins, ${summary.floodWaits} FloodWaits, ${summary.groupsLost} groups lost`,
  );
}

export function runDaemon(options: RunOptions): Running {
  const { daemon, log } = options;
  let stopped: Promise<void> | undefined;
  let ticking = false;
  const timer = setInterval(() => {
    // The lease first, whatever a round in progress waits for.
    daemon.keepLease().catch((error: unknown) => log.error({ event: 'lease.check_failed', err: error }, (error as Error).message));
    if (ticking) return;
    ticking = true;
    daemon
      .tick()
      .catch((error: unknown) => log.error({ event: 'tick.failed', err: error }, (error as Error).message))
      .finally(() => {
        ticking = false;
      });
  }, options.tickMs ?? 1000);
  const job = cron.schedule(
    '0 0 * * *',
    () => {
      midnight(daemon, options.clock, log).catch((error: unknown) => log.error({ event: 'daily.failed', err: error }, (error as Error).message));
    },
    { timezone: 'Etc/UTC' },
  );

  const stop = () => {
    stopped ??= (async () => {
      clearInterval(timer);
      await job.stop();
      log.info({ event: 'daemon.stopping', grace_ms: options.graceMs }, 'stopping: no new action; waiting for the one in flight');
      const clean = await daemon.stop(options.graceMs);
      log.info({ event: 'daemon.stopped', clean }, clean ? 'stopped' : 'stopped with an action still running (it counts as unknown)');
      await options.onExit(0);
    })();
    return stopped;
  };
  let firstSignalAt = 0;
  let finished = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopped) {
      // One Ctrl-C can arrive twice (from the terminal, and passed on by `npm start`), and one
      // after the stop is over changes nothing: only a second one a person gave stops it now.
      if (finished || Date.now() - firstSignalAt < SAME_SIGNAL_MS) return;
      log.warn({ event: 'daemon.killed', signal }, 'second signal: exiting now');
      process.exit(130);
    }
    firstSignalAt = Date.now();
    log.info({ event: 'daemon.signal', signal }, `${signal} received`);
    void stop().finally(() => {
      finished = true;
    });
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  log.info({ event: 'daemon.started', tick_ms: options.tickMs ?? 1000 }, 'running; SIGTERM or Ctrl-C stops it cleanly');
  return { stop };
}

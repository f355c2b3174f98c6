/**
 * Running the daemon for real: a scheduling round every second, the midnight job (node-cron,
 * 00:00 UTC: counters reset and yesterday's summary), a watchdog, and a clean stop on
 * SIGTERM/SIGINT: no new action, the one in flight finishes within the grace period, sessions
 * disconnect together, the pools close, and "stopped" is the last line logged; the whole stop
 * takes at most the grace plus STOP_MARGIN_MS. A second signal (a person's, not the same Ctrl-C
 * seen twice) exits at once.
 */
import cron from 'node-cron';
import type { Clock } from '../clock';
import { withDeadline } from '../deadline';
import { liveness } from '../health/liveness';
import type { Logger } from '../logger';
import { claimSignals } from '../processSignals';
import { purgeAnswerRecords } from '../sql/answers';
import { summarizeDay } from '../sql/history';
import { resetDailyCounters } from '../sql/posting';
import { type Daemon, STOP_AFTER_GRACE_MS } from './daemon';

/** A second signal this soon after the first is the same one, seen twice (the terminal and npm). */
const SAME_SIGNAL_MS = 1000;
/** What a stop takes beyond its grace, at most: the sessions and leases (STOP_AFTER_GRACE_MS), then the pools. */
export const STOP_MARGIN_MS = 5000;
/** How often the watchdog looks. */
const WATCHDOG_EVERY_MS = 5000;

export interface RunOptions {
  daemon: Daemon;
  clock: Clock;
  log: Logger;
  graceMs: number;
  /** Closes what the daemon used (health listener, pools, the embedded server); after the daemon stopped. */
  onStop?: () => Promise<void>;
  /** Called once everything is stopped and said, with the exit code. */
  onExit: (code: number) => void | Promise<void>;
  tickMs?: number;
  /** Exit 70 when the process has been stuck this long (LEXUS_WATCHDOG_S); 0 or absent: no watchdog. */
  watchdogMs?: number;
}

export interface Running {
  /** Stops as on SIGTERM; resolves when stopped. */
  stop(): Promise<void>;
}

export async function midnight(daemon: Daemon, clock: Clock, log: Logger): Promise<void> {
  const reset = await resetDailyCounters(daemon.dataSource, clock.now());
  await purgeAnswerRecords(daemon.dataSource, new Date(clock.now().getTime() - 2 * 24 * 3_600_000));
  const summary = await summarizeDay(daemon.dataSource, clock.now());
  log.info(
    {
      event: 'daily.summary',
      day: summary.day,
      posts: summary.postsByAccount,
      joins: summary.joins,
      flood_waits: summary.floodWaits,
      groups_lost: summary.groupsLost,
      counters_reset: reset,
    },
    `${summary.day}: ${Object.values(summary.postsByAccount).reduce((a, b) => a + b, 0)} posts, ${summary.joins} joins, ${summary.floodWaits} FloodWaits, ${summary.groupsLost} groups lost`,
  );
}

export function runDaemon(options: RunOptions): Running {
  const { daemon, log } = options;
  let stopped: Promise<void> | undefined;
  let ticking = false;
  const timer = setInterval(() => {
    // The lease first, whatever a round in progress waits for.
    daemon
      .keepLease()
      .catch((error: unknown) => log.error({ event: 'lease.check_failed', err: error }, (error as Error).message));
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
      midnight(daemon, options.clock, log).catch((error: unknown) =>
        log.error({ event: 'daily.failed', err: error }, (error as Error).message),
      );
    },
    { timezone: 'Etc/UTC' },
  );
  // A process stuck for good (a round or an action that never ends) exits, so that its
  // supervisor (compose's restart: unless-stopped) starts a new one.
  const watchdog = options.watchdogMs
    ? setInterval(() => {
        const live = liveness(daemon.progress(), {
          roundMs: options.watchdogMs! - 1,
          actionMs: options.watchdogMs! - 1,
        });
        if (live.ok) return;
        log.fatal(
          { event: 'watchdog.exit', problems: live.problems, stuck_s: Math.round(live.stuckForMs / 1000) },
          `stuck for ${Math.round(live.stuckForMs / 1000)} s (${live.problems.join('; ')}): exiting for a restart`,
        );
        process.exit(70);
      }, WATCHDOG_EVERY_MS)
    : undefined;

  const stop = () => {
    stopped ??= (async () => {
      clearInterval(timer);
      if (watchdog) clearInterval(watchdog);
      await job.stop();
      log.info(
        { event: 'daemon.stopping', grace_ms: options.graceMs },
        'stopping: no new action; waiting for the one in flight',
      );
      const clean = await daemon.stop(options.graceMs);
      // The pools and the rest, in what is left of the margin: a pool that waits for a client an
      // action still holds is left to the exit.
      const closed = await withDeadline(
        options.onStop?.() ?? Promise.resolve(),
        STOP_MARGIN_MS - STOP_AFTER_GRACE_MS,
      ).then(
        () => true,
        (error: unknown) => {
          log.warn(
            { event: 'daemon.close_failed', error: (error as Error).message },
            `closing the pools: ${(error as Error).message}; left to the exit`,
          );
          return false;
        },
      );
      // The last line: nothing is logged after it.
      if (clean && closed) log.info({ event: 'daemon.stopped', clean: true }, 'stopped');
      else
        log.warn(
          { event: 'daemon.stopped', clean: false },
          'stopped, not cleanly: an action was still running, an answer unrecorded or a pool still closing at the end of the grace (a post in flight counts as unknown; the next process holds those accounts a while)',
        );
      log.level = 'silent';
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
  // From here on the stop signals are the daemon's (src/processSignals.ts: the newest claim gets
  // them), for good: one after the stop is over is ignored above.
  claimSignals(['SIGTERM', 'SIGINT'], onSignal);
  log.info({ event: 'daemon.started', tick_ms: options.tickMs ?? 1000 }, 'running; SIGTERM or Ctrl-C stops it cleanly');
  return { stop };
}

/**
 * Whether the daemon makes progress: its scheduling round and its actions end. A round waits on
 * the database (each statement bounded: LEXUS_STATEMENT_TIMEOUT_S), an action on Telegram too
 * (each call bounded by the gateway's deadlines): one that runs past these bounds is stuck, not
 * waiting. A database outage is not stuck: the rounds end, they just do nothing. `/livez` reads
 * it, and the watchdog (run.ts) exits a process stuck for LEXUS_WATCHDOG_S.
 */

/** A round is stuck after this long (it normally takes milliseconds, at worst a few bounded statements). */
export const ROUND_STUCK_MS = 120_000;
/** An action is stuck after this long (a connect, a lookup, two post calls and their records, each bounded). */
export const ACTION_STUCK_MS = 300_000;

export interface Progress {
  /** How long the oldest action in flight has been running (0: none). */
  oldestActionMs: number;
  /** How long the round in progress has been running (0: none). */
  roundMs: number;
}

export interface Liveness {
  ok: boolean;
  problems: string[];
  /** How long the longest-running thing has been running: the watchdog's measure. */
  stuckForMs: number;
}

export function liveness(
  progress: Progress,
  bounds: { roundMs: number; actionMs: number } = { roundMs: ROUND_STUCK_MS, actionMs: ACTION_STUCK_MS },
): Liveness {
  const problems: string[] = [];
  if (progress.roundMs > bounds.roundMs)
    problems.push(`loop: a scheduling round has been running for ${Math.round(progress.roundMs / 1000)} s`);
  if (progress.oldestActionMs > bounds.actionMs)
    problems.push(`action: one has been running for ${Math.round(progress.oldestActionMs / 1000)} s`);
  return { ok: problems.length === 0, problems, stuckForMs: Math.max(progress.roundMs, progress.oldestActionMs) };
}

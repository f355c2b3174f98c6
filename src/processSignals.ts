/**
 * The one owner of this process's stop signals (SIGTERM, SIGINT, SIGHUP) and of its 'exit'
 * hooks: every part of lexus registers and removes its handlers here, never with process.on,
 * so who gets a signal is decided in one place, in this order:
 *
 *   1. The newest claim (claimSignals) gets it, alone. An owner hands the signals over by its
 *      successor claiming them (the one before may release before or after: no gap either way).
 *      `lexus start`: the early stop while the application is assembled (src/app.ts), then the
 *      daemon's clean stop (src/daemon/run.ts). `lexus simulate` and `npm run bench`: the drop of
 *      their scratch database on an interrupt (src/db/scratchDatabase.ts).
 *   2. With no claim, a handler some code registered straight on `process` (not through here:
 *      a program that uses lexus as a library) has it: it is left to that handler.
 *   3. Else every fallback (onUnclaimedSignal) is told, oldest first: the embedded PostgreSQL's
 *      stop of a server this process started (src/db/embeddedPostgres.ts), which then ends the
 *      process as the signal would have.
 *
 * A signal no one registered for (none of the above) is not listened to at all: it ends the
 * process as Node's default does. The 'exit' hooks (onProcessExit) all run, oldest first.
 */

export type StopSignal = 'SIGTERM' | 'SIGINT' | 'SIGHUP';
type SignalHandler = (signal: NodeJS.Signals) => void;

interface Registration {
  signals: readonly StopSignal[];
  handler: SignalHandler;
}

/** Oldest first; the last one holding a signal gets it. */
const claims: Registration[] = [];
const fallbacks: Registration[] = [];
const exitHooks: (() => void)[] = [];
/** The signals `dispatch` listens to on `process` now. */
const listening = new Set<StopSignal>();

function dispatch(signal: NodeJS.Signals): void {
  const s = signal as StopSignal;
  const claim = claims.findLast((c) => c.signals.includes(s));
  if (claim) {
    claim.handler(signal);
    return;
  }
  // A handler on `process` besides this one owns this stop.
  if (process.listenerCount(signal) > 1) return;
  for (const fallback of fallbacks.filter((f) => f.signals.includes(s))) fallback.handler(signal);
}

function runExitHooks(): void {
  for (const hook of [...exitHooks]) hook();
}

/** Listens on `process` to exactly the signals someone registered for. */
function sync(): void {
  const wanted = new Set<StopSignal>([...claims, ...fallbacks].flatMap((r) => r.signals));
  for (const s of wanted) if (!listening.has(s)) process.on(s, dispatch);
  for (const s of [...listening]) if (!wanted.has(s)) process.off(s, dispatch);
  listening.clear();
  for (const s of wanted) listening.add(s);
}

function register(list: Registration[], signals: readonly StopSignal[], handler: SignalHandler): () => void {
  const registration: Registration = { signals, handler };
  list.push(registration);
  sync();
  let released = false;
  return () => {
    if (released) return;
    released = true;
    list.splice(list.indexOf(registration), 1);
    sync();
  };
}

/**
 * `handler` gets `signals` from now on, alone, until it releases them (the returned function)
 * or a newer claim takes them. Returns the release; releasing twice is harmless.
 */
export function claimSignals(signals: readonly StopSignal[], handler: SignalHandler): () => void {
  return register(claims, signals, handler);
}

/** `handler` gets `signals` only when nothing else in the process handles them (rule 3 above). */
export function onUnclaimedSignal(signals: readonly StopSignal[], handler: SignalHandler): () => void {
  return register(fallbacks, signals, handler);
}

/** `hook` runs when the process exits (synchronously: Node's 'exit'); returns its removal. */
export function onProcessExit(hook: () => void): () => void {
  if (exitHooks.length === 0) process.on('exit', runExitHooks);
  exitHooks.push(hook);
  let removed = false;
  return () => {
    if (removed) return;
    removed = true;
    exitHooks.splice(exitHooks.indexOf(hook), 1);
    if (exitHooks.length === 0) process.off('exit', runExitHooks);
  };
}

/**
 * The posting daemon: per account, join -> 24 h warm-up -> post, one action at a time, paced by
 * a random pause, accounts in parallel under a cap. Every rule is kept by the database (the
 * reservation checks them all in one statement); this loop only decides what to try next and
 * records what Telegram answered.
 *
 * Telegram's answers: what each one means is the table of answers.ts; `answer()` applies it in
 * one place: the hold it implies is kept in memory at once (holds only tighten), and its record
 * goes through the recorder, which keeps trying until the database takes it while the account
 * does nothing else.
 *
 * One driver per session: a process drives an account while it holds the account's advisory lock
 * (accountLocks.ts) and has confirmed that hold within the lease; past it, every session of the
 * process stops. A process taking an account over waits longer than the lease plus the time a
 * session takes to stop, and holds the account longer still when the previous driver left a call
 * unanswered (docs/reliability.md).
 *
 * Time comes from the injected clock only, and `tick()` is one scheduling round, so tests and
 * the simulator drive the same code on virtual time. `runDaemon` (run.ts) calls it every second.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { DataSource } from 'typeorm';
import { type Clock, HOUR_MS, MINUTE_MS, SECOND_MS, utcDayStart } from '../clock';
import type { DaemonSettings } from '../config';
import type { AccountLocks } from '../db/accountLocks';
import { withDeadline } from '../deadline';
import type { DaemonObserver } from '../health/metrics';
import type { Logger } from '../logger';
import { hashed, seeded } from '../random';
import {
  accountMayAct,
  beginCall,
  type DrivableAccount,
  endLease,
  loadDrivableAccounts,
  renewLease,
  setPlannedPost,
  takeOverAccount,
} from '../sql/accounts';
import type { AnswerPolicy, AnswerRecord, AnswerResult } from '../sql/answers';
import { claimJoinTarget, mayTryJoin } from '../sql/joining';
import type { PostSlot } from '../sql/posting';
import { dayLeft, describeSlot, nextChances, reservePostSlot } from '../sql/posting';
import { noticeRestore } from '../sql/restore';
import { SEND_DEADLINE_MS } from '../sql/rules';
import type { TelegramGateway, TelegramSession } from '../telegram/gateway';
import type { ChatIdentity, JoinOutcome } from '../telegram/outcomes';
import { type AnyOutcome, type Call, type Consequence, consequenceOf, MISCONFIGURED_RETRY_MS } from './answers';
import { chooseVariant, type MessageVariant } from './messages';
import { afterOpenTime, inPostingWindow, openParts, openTime, postingWindowAt } from './postingWindow';
import { AnswerRecorder } from './recorder';

/** Backoff after a transient failure: 30 s, doubling, at most 30 min. */
const BACKOFF_BASE_MS = 30 * SECOND_MS;
const BACKOFF_MAX_MS = 30 * MINUTE_MS;
/**
 * The longest a session takes to stop once told to (the gateway's disconnect deadline), the
 * longest one more renewal of the lease may take before it counts as failed, and a margin for the
 * offset between two hosts' clocks (NTP keeps it well under a second).
 */
export const SESSION_STOP_MS = 10 * SECOND_MS;
/** A stop's part after its grace: the sessions closing together, the leases ended, the locks let go. */
export const STOP_AFTER_GRACE_MS = 3 * SECOND_MS;
export const LOCK_CONFIRM_MS = 5 * SECOND_MS;
const LEASE_MARGIN_MS = 5 * SECOND_MS;
/**
 * A process that takes over an account whose previous driver left a Telegram call unanswered
 * (accounts.call_started_at) makes no call before this long after that call started: the
 * previous driver, cut off from the database, may still record Telegram's answer (a FloodWait,
 * a ban) when it is back. A partition longer than this, that began as Telegram answered with a
 * FloodWait, can cost one call inside the wait (Telegram answers it with the time left).
 */
export const UNANSWERED_CALL_HOLD_MS = 10 * MINUTE_MS;
/**
 * An account with nothing to do sleeps until the database says something becomes possible (a
 * warm-up ends, midnight, a FloodWait runs out), but looks again at least this often, so that
 * groups added meanwhile or a binding reset by hand are noticed.
 */
const IDLE_RECHECK_MS = 2 * 60 * MINUTE_MS;
const DEFAULT_REFRESH_MS = 5 * SECOND_MS;
/**
 * The accounts waiting for the posting window look again over this long after it opens, each at
 * its own phase (a hash of the account), so they do not all ask the database at once.
 */
const WINDOW_START_SPREAD_MS = 5 * MINUTE_MS;
/** Each planned gap is the even share of what is left, times a random factor in this range. */
const JITTER_MIN = 0.75;
const JITTER_SPAN = 0.5;

/**
 * The lease arithmetic (docs/reliability.md). A process renews its lease on its accounts every
 * `refreshEveryMs` (accounts.driven_until = the instant it asked + `leaseMs`, written only while
 * its lock connection holds the locks). Once the lease has run out it tries once more (at most
 * LOCK_CONFIRM_MS); failing that, it stops every session (at most SESSION_STOP_MS). So its
 * sessions are closed by driven_until + `afterLeaseMs`, and a process taking an account over
 * makes no call before that instant (clocks may differ by the margin).
 */
export function leaseTimes(refreshEveryMs: number): { leaseMs: number; afterLeaseMs: number } {
  return {
    leaseMs: Math.max(20 * SECOND_MS, 4 * refreshEveryMs),
    afterLeaseMs: LOCK_CONFIRM_MS + SESSION_STOP_MS + LEASE_MARGIN_MS,
  };
}

/** This process, as accounts.driven_by names it: host, pid and a tag of its own start. */
export function instanceName(): string {
  return `${hostname()}:${process.pid}:${randomBytes(2).toString('hex')}`;
}

export interface DaemonDeps {
  dataSource: DataSource;
  locks: AccountLocks;
  gateway: TelegramGateway;
  clock: Clock;
  log: Logger;
  settings: DaemonSettings;
  messages: MessageVariant[];
  /** [0, 1); injectable for deterministic runs. */
  random?: () => number;
  /**
   * How often a round re-reads the accounts and confirms its locks (clock time); default 5 s.
   * The lease is four times that, at least 20 s (leaseTimes).
   */
  refreshEveryMs?: number;
  /**
   * At most this many actions started per round (default: as many as the cap allows). The
   * simulator starts one at a time so that two actions never race, and a seed replays exactly.
   */
  maxStartsPerRound?: number;
  /** Told every answer Telegram gives (the metrics); optional. */
  observer?: DaemonObserver;
  /** This process's name in accounts.driven_by; default host:pid:tag (instanceName). */
  instance?: string;
}

interface AccountState {
  account: DrivableAccount;
  session: TelegramSession | undefined;
  /** The credentials the session was made with (a new login or proxy needs a new session). */
  connectedWith: string | undefined;
  nextActionAt: number;
  /**
   * Nothing is sent before this instant (ms): a FloodWait, a pause, a dead session (Infinity),
   * a takeover's hold. Only ever raised; every schedule respects it.
   */
  holdUntil: number;
  busy: boolean;
  failures: number;
  /** The account is no longer this process's (lock or lease lost, session dead): nothing more is sent. */
  lost: boolean;
  /** This account's own random numbers (pacing), so that accounts do not draw from one another's. */
  random: () => number;
  /** It sleeps with nothing to do and wakes only to look again (IDLE_RECHECK_MS). */
  resting: boolean;
  /**
   * The day's plan (posting window, spread): no post before nextPostAt, no join before
   * nextJoinAt; both made for one window and UTC day (planFor, planKey()); '' when none is made yet.
   */
  nextPostAt: number;
  nextJoinAt: number;
  planFor: string;
  /** The posts the plan counted on for the rest of the day (-1: no plan yet); more ready since makes the next one sooner. */
  planPosts: number;
  /** A group was bound to it since the plan was made: the plan looks whether it has more to post. */
  relook: boolean;
  /** Where in the first WINDOW_START_SPREAD_MS of a window this account starts, in [0, 1). */
  phase: number;
}

/** What the daemon knows of a call besides Telegram's answer. */
interface CallContext {
  targetId?: number;
  link?: string;
  slot?: PostSlot;
  message?: { text: string; photoPath: string | null; variant: string };
  chat?: ChatIdentity | null;
  /** The answer ends the account's call (its mark in the database goes with the record). */
  callStartedAt: Date | null;
}

const credentialsOf = (a: DrivableAccount) => JSON.stringify([a.sessionString, a.apiId, a.apiHash, a.proxy]);

const chatOf = (outcome: AnyOutcome): ChatIdentity | null => {
  if (outcome.kind === 'found') return outcome.chat;
  if (outcome.kind === 'sent') return outcome.chat ?? null;
  if ((outcome.kind === 'joined' || outcome.kind === 'already_member') && outcome.telegramId) {
    return { telegramId: outcome.telegramId, accessHash: outcome.accessHash ?? null, title: outcome.title };
  }
  return null;
};

export class Daemon {
  private readonly accounts = new Map<number, AccountState>();
  private readonly inflight = new Set<Promise<void>>();
  /** When each action in flight started (performance.now(): no clock change moves it), for the liveness check and the metrics. */
  private readonly actionStarts = new Map<Promise<void>, number>();
  /** When the tick in progress started (performance.now()); undefined between ticks. */
  private roundStartedAt: number | undefined;
  private readonly random: () => number;
  private readonly recorder: AnswerRecorder;
  private readonly refreshEveryMs: number;
  private readonly leaseMs: number;
  private readonly afterLeaseMs: number;
  readonly instance: string;
  private stopping = false;
  private databaseDown = false;
  private round: Promise<void> | undefined;
  private lastRefreshAt: number | undefined;
  /** When the locks were last confirmed (the instant the confirming query was sent), on which connection. */
  private leaseConfirmedAt: number | undefined;
  private leasePid: number | undefined;
  private leaseCheck: Promise<void> | undefined;
  /** Actions started since this process began. */
  actionsStarted = 0;
  /** Telegram's answers met since this process began (each record's id). */
  private answers = 0;
  /** When the last scheduling round finished (the health check reads it). */
  lastTickAt: Date | undefined;

  /** The pool its statements run on (the midnight job's too). */
  get dataSource(): DataSource {
    return this.deps.dataSource;
  }

  constructor(private readonly deps: DaemonDeps) {
    this.random = deps.random ?? Math.random;
    this.recorder = new AnswerRecorder({ dataSource: deps.dataSource, clock: deps.clock, log: deps.log });
    this.refreshEveryMs = deps.refreshEveryMs ?? DEFAULT_REFRESH_MS;
    ({ leaseMs: this.leaseMs, afterLeaseMs: this.afterLeaseMs } = leaseTimes(this.refreshEveryMs));
    this.instance = deps.instance ?? instanceName();
  }

  private get log(): Logger {
    return this.deps.log;
  }

  private now(): Date {
    return this.deps.clock.now();
  }

  private get policy(): AnswerPolicy {
    return { peerFloodPauseMs: this.deps.settings.peerFloodPauseMs, restriction: this.deps.settings.restriction };
  }

  /** Accounts this process drives now. */
  drivenAccounts(): string[] {
    return [...this.accounts.values()].map((s) => s.account.sessionName).sort();
  }

  /** Telegram's answers this process could not record yet, per account. */
  unrecordedAnswers(): { account: string; answers: string[] }[] {
    return this.recorder.unrecorded();
  }

  private pause(state: AccountState): number {
    const { min, max } = this.deps.settings.actionDelayMs;
    return min + Math.floor(state.random() * (max - min + 1));
  }

  /** The next action in `delayMs`, never before the account's hold. */
  private schedule(state: AccountState, delayMs = this.pause(state)): void {
    state.nextActionAt = Math.max(this.now().getTime() + delayMs, state.holdUntil);
  }

  private backoff(state: AccountState): void {
    state.failures++;
    const delay = Math.min(BACKOFF_BASE_MS * 2 ** (state.failures - 1), BACKOFF_MAX_MS);
    this.schedule(state, delay + Math.floor(state.random() * delay * 0.2));
  }

  /** Holds only tighten: nothing is sent before `until` (ms). */
  private hold(state: AccountState, until: number): void {
    state.holdUntil = Math.max(state.holdUntil, until);
    state.nextActionAt = Math.max(state.nextActionAt, state.holdUntil);
  }

  /**
   * One scheduling round: stop everything if the lease ran out, record the answers that wait,
   * take over accounts no process drives, drop the ones gone, and start an action for each
   * account whose pause is over. Does not wait for the actions (idle() does).
   */
  async tick(): Promise<void> {
    if (this.stopping) return;
    // How long this tick runs, the lease's check included, on a clock no time change moves.
    const began = performance.now();
    this.roundStartedAt ??= began;
    try {
      // Before anything, and even while a round hangs on the database: the lease.
      await this.keepLease();
      if (this.round) return;
      this.round = this.runRound().finally(() => {
        this.round = undefined;
      });
      await this.round;
    } finally {
      if (this.roundStartedAt === began) this.roundStartedAt = undefined;
    }
  }

  /**
   * A process that cannot vouch for its locks (its lock connection is gone, or it could not
   * confirm them for a lease) stops every session now: another process may take the accounts
   * once the lease and the time to stop have passed. Every tick checks it first; `lexus start`
   * also checks it every second on its own, so a round that hangs on the database cannot delay it.
   */
  keepLease(): Promise<void> {
    this.leaseCheck ??= this.checkLease().finally(() => {
      this.leaseCheck = undefined;
    });
    return this.leaseCheck;
  }

  private async checkLease(): Promise<void> {
    if (this.accounts.size === 0) return;
    const pid = this.deps.locks.holderPid;
    const lost = pid === undefined || pid !== this.leasePid;
    const sentAt = this.now();
    let expired = this.leaseConfirmedAt === undefined || sentAt.getTime() - this.leaseConfirmedAt > this.leaseMs;
    if (!lost && expired && pid !== undefined) {
      // Once more, within LOCK_CONFIRM_MS: the lease is renewed only while the locks are held.
      const ids = [...this.accounts.keys()];
      const until = new Date(sentAt.getTime() + this.leaseMs);
      const renewed = await withDeadline(
        renewLease(this.deps.dataSource, { accountIds: ids, lockHolderPid: pid, driver: this.instance, until }),
        LOCK_CONFIRM_MS,
      ).catch(() => []);
      if (renewed.length === ids.length) {
        this.leaseConfirmedAt = sentAt.getTime();
        expired = false;
      }
    }
    if (!lost && !expired) return;
    this.log.error(
      {
        event: 'lease.lost',
        accounts: this.drivenAccounts(),
        lease_ms: this.leaseMs,
        reason: lost ? 'lock connection lost' : 'lease not renewed',
      },
      `cannot vouch for this process's hold on its accounts (${lost ? 'its lock connection is gone' : `its lease could not be renewed for ${this.leaseMs / SECOND_MS} s`}): stopping every session`,
    );
    const states = [...this.accounts.values()];
    this.accounts.clear();
    await Promise.all(states.map((s) => this.stopSession(s)));
    await this.deps.locks.reset();
  }

  private async stopSession(state: AccountState): Promise<void> {
    state.lost = true;
    const session = state.session;
    state.session = undefined;
    await session?.disconnect();
  }

  private async runRound(): Promise<void> {
    const now = this.now();
    await this.recorder.flush();
    if (this.lastRefreshAt === undefined || now.getTime() - this.lastRefreshAt >= this.refreshEveryMs) {
      if (!(await this.refresh(now))) return;
      this.lastRefreshAt = now.getTime();
    }
    if (this.stopping) return;
    this.lastTickAt = now;
    if (!this.inWindow()) {
      // Outside the audience's hours: nothing starts; the accounts due wake when the window opens.
      const opens = this.nextOpening(now);
      for (const state of this.accounts.values()) {
        if (!state.busy && state.nextActionAt <= now.getTime())
          state.nextActionAt = Math.max(state.holdUntil, this.windowStartFor(state, opens));
      }
      return;
    }
    const due = [...this.accounts.values()]
      .filter((s) => !s.busy && s.nextActionAt <= now.getTime())
      .sort((x, y) => x.account.boundGroups - y.account.boundGroups || x.nextActionAt - y.nextActionAt);
    let starts = 0;
    for (const state of due) {
      if (
        this.inflight.size >= this.deps.settings.maxParallelAccounts ||
        this.stopping ||
        starts >= (this.deps.maxStartsPerRound ?? Infinity)
      )
        break;
      this.start(state);
      starts++;
      this.actionsStarted++;
    }
  }

  /** Confirms the locks (the lease), re-reads the accounts, takes over new ones and drops lost ones. */
  private async refresh(now: Date): Promise<boolean> {
    let drivable: DrivableAccount[];
    let held: number[];
    try {
      drivable = await loadDrivableAccounts(this.deps.dataSource);
      // A restore from a dump holds every post (the database does it); said once, by whoever sees it first.
      const restored = await noticeRestore(this.deps.dataSource, now);
      if (restored) {
        this.log.error(
          { event: 'db.restored', noticed_at: restored.toISOString() },
          "the database's tables are not the ones it had: it was restored from a dump, whose rows forget the posts made since; no post until a person checks and runs lexus repair counters",
        );
      }
      // The confirmation counts from when it was asked: the locks were held at some instant after.
      held = await this.deps.locks.acquire(drivable.map((a) => a.id));
      if (this.databaseDown) this.log.info({ event: 'db.back' }, 'database reachable again; carrying on');
      this.databaseDown = false;
    } catch (error) {
      if (!this.databaseDown)
        this.log.error(
          { event: 'db.down', error: (error as Error).message },
          'database unreachable; retrying until it is back',
        );
      this.databaseDown = true;
      return false;
    }
    if (this.stopping) return false;
    const byId = new Map(drivable.map((a) => [a.id, a]));
    const lockLost: AccountState[] = [];
    for (const [id, state] of this.accounts) {
      if (byId.has(id) && held.includes(id)) continue;
      if (!held.includes(id)) {
        // The lock is gone: another process may drive the account now. Its session stops at
        // once, even mid-action.
        this.log.warn(
          { event: 'account.lock_lost', account: state.account.sessionName },
          'lost this account to another process; stopping its session now',
        );
        this.accounts.delete(id);
        lockLost.push(state);
        continue;
      }
      // Banned or logged out meanwhile: given up once idle and with every answer recorded.
      if (!state.busy && !this.recorder.blocked(id)) await this.dropAccount(state, 'no longer drivable');
    }
    await Promise.all(lockLost.map((state) => this.stopSession(state)));
    // The database answers again: answers still unrecorded go first, before any takeover reads
    // (and would resolve) what they are about.
    if (this.recorder.unrecorded().length > 0) await this.recorder.flushNow();
    for (const id of held) {
      const account = byId.get(id);
      if (!account) continue;
      const state = this.accounts.get(id);
      if (state) {
        if (account.boundGroups > state.account.boundGroups && !state.busy) {
          // A group bound to it meanwhile (an import, a join of its own) may bring posts its day's
          // plan did not count on: it looks again within a pause, rather than at its next planned time.
          state.resting = false;
          state.relook = true;
          state.nextActionAt = Math.min(
            state.nextActionAt,
            Math.max(now.getTime() + this.pause(state), state.holdUntil),
          );
        }
        state.account = account;
        if (!state.busy && state.session && state.connectedWith !== credentialsOf(account)) {
          // A new login, proxy or API key: the old session goes.
          await state.session.disconnect();
          state.session = undefined;
        }
        continue;
      }
      // An account with an answer still unrecorded does nothing, not even be taken over.
      if (this.recorder.blocked(id)) continue;
      await this.takeOver(account, now);
    }
    return this.renew(now);
  }

  /**
   * Renews the lease on the accounts driven (refresh): their sessions may live until now + lease.
   * An account the renewal did not cover (its lock gone meanwhile) stops at once.
   */
  private async renew(now: Date): Promise<boolean> {
    const pid = this.deps.locks.holderPid;
    if (pid === undefined) return false;
    let renewed: number[];
    try {
      renewed = await renewLease(this.deps.dataSource, {
        accountIds: [...this.accounts.keys()],
        lockHolderPid: pid,
        driver: this.instance,
        until: new Date(now.getTime() + this.leaseMs),
      });
    } catch (error) {
      if (!this.databaseDown)
        this.log.error(
          { event: 'db.down', error: (error as Error).message },
          'database unreachable; retrying until it is back',
        );
      this.databaseDown = true;
      return false;
    }
    const unrenewed = [...this.accounts.values()].filter((state) => !renewed.includes(state.account.id));
    for (const state of unrenewed) this.accounts.delete(state.account.id);
    await Promise.all(unrenewed.map((state) => this.stopSession(state)));
    this.leaseConfirmedAt = now.getTime();
    this.leasePid = pid;
    return true;
  }

  private async takeOver(account: DrivableAccount, now: Date): Promise<void> {
    let unansweredCallAt: Date | null;
    let previous: { driver: string | null; until: Date | null };
    try {
      const found = await takeOverAccount(this.deps.dataSource, account.id, now);
      unansweredCallAt = found.unansweredCallAt;
      previous = { driver: found.previousDriver, until: found.previousLeaseUntil };
      if (found.abandonedSlots > 0) {
        this.log.warn(
          { event: 'post.unknown', account: account.sessionName, count: found.abandonedSlots },
          'a previous process stopped between sending and recording: those posts count as made and are not sent again',
        );
      }
    } catch (error) {
      this.log.error(
        { event: 'db.error', account: account.sessionName, error: (error as Error).message },
        'could not take the account over',
      );
      await this.deps.locks.release(account.id);
      return;
    }
    const state: AccountState = {
      account,
      session: undefined,
      connectedWith: undefined,
      nextActionAt: 0,
      holdUntil: 0,
      busy: false,
      failures: 0,
      lost: false,
      random: seeded(Math.floor(this.random() * 2 ** 32)),
      resting: false,
      // Its plan is made at its first action, in the window: at its phase within the first
      // share of what is left, never at once (a restart loop must not make it post at each
      // start; the database's spacing from its last post holds besides).
      nextPostAt: 0,
      nextJoinAt: 0,
      planFor: '',
      planPosts: -1,
      relook: false,
      phase: hashed('phase', account.id),
    };
    // No call before the process that had the account (if alive but cut off) has certainly
    // stopped its session: its lease, plus the time to find out and to stop.
    if (previous.until && previous.driver !== this.instance) {
      const safe = previous.until.getTime() + this.afterLeaseMs;
      this.hold(state, safe);
      if (safe > now.getTime()) {
        this.log.info(
          {
            event: 'account.lease_wait',
            account: account.sessionName,
            previous_driver: previous.driver,
            until: new Date(safe).toISOString(),
          },
          `another process (${previous.driver ?? 'unknown'}) may still have a session of this account: no call before its lease runs out`,
        );
      }
    }
    if (unansweredCallAt && unansweredCallAt.getTime() + UNANSWERED_CALL_HOLD_MS > now.getTime()) {
      this.hold(state, unansweredCallAt.getTime() + UNANSWERED_CALL_HOLD_MS);
      this.log.warn(
        {
          event: 'account.unanswered_call',
          account: account.sessionName,
          call_started_at: unansweredCallAt.toISOString(),
          until: new Date(unansweredCallAt.getTime() + UNANSWERED_CALL_HOLD_MS).toISOString(),
        },
        'the previous process left a Telegram call of this account unrecorded: holding it, in case that answer is still on its way',
      );
    }
    // Spread the first actions over the first pause, rather than all at once.
    this.schedule(state, Math.floor(state.random() * this.deps.settings.actionDelayMs.min));
    this.accounts.set(account.id, state);
    this.log.info({ event: 'account.driven', account: account.sessionName }, 'driving this account');
  }

  private async dropAccount(state: AccountState, why: string): Promise<void> {
    if (this.accounts.get(state.account.id) === state) this.accounts.delete(state.account.id);
    await this.stopSession(state);
    await endLease(this.deps.dataSource, [state.account.id], this.instance).catch(() => undefined);
    await this.deps.locks.release(state.account.id);
    this.log.info(
      { event: 'account.released', account: state.account.sessionName, reason: why },
      'no longer driving this account',
    );
  }

  private start(state: AccountState): void {
    state.busy = true;
    const action = this.act(state)
      .catch((error: unknown) => {
        // A database write failed (one before a Telegram call, or a read): Telegram's answers go
        // through the recorder and never end here. Try again later.
        this.log.error(
          { event: 'action.failed', account: state.account.sessionName, err: error },
          (error as Error).message,
        );
        this.backoff(state);
      })
      .finally(() => {
        state.busy = false;
        this.inflight.delete(action);
        this.actionStarts.delete(action);
      });
    this.inflight.add(action);
    this.actionStarts.set(action, performance.now());
  }

  /**
   * Whether an action may start now: the posting window is open, and stays open for as long as the
   * action may take (SEND_DEADLINE_MS: a post's two calls), so that what starts lands inside it.
   */
  private inWindow(): boolean {
    const { postingHours, timeZone } = this.deps.settings;
    const now = this.now();
    return (
      inPostingWindow(now, postingHours, timeZone) &&
      inPostingWindow(new Date(now.getTime() + SEND_DEADLINE_MS), postingHours, timeZone)
    );
  }

  /** When the next posting window opens in which an action may start (the current one has closed for them). */
  private nextOpening(now: Date): number {
    const w = this.window(now);
    return w.start > now.getTime() ? w.start : this.window(new Date(w.end)).start;
  }

  /** The posting window that contains `now`, else the next one. */
  private window(now: Date): { start: number; end: number } {
    return postingWindowAt(now, this.deps.settings.postingHours, this.deps.settings.timeZone);
  }

  /**
   * When an account waiting for the window that opens at `opens` looks again: at its phase within
   * the window's first minutes (its plan for the window is made then, see plan()).
   */
  private windowStartFor(state: AccountState, opens: number): number {
    return this.deps.settings.spread ? opens + Math.floor(state.phase * WINDOW_START_SPREAD_MS) : opens;
  }

  /**
   * The day's plan. Each post and join is planned after the last one at the even share of what is
   * left of the window (until its end, or the UTC midnight if that comes first: the day's budgets
   * are the UTC day's) for what is left to do, with some jitter. A new window (the account waited
   * for it) starts at the account's phase within the first share, so the fleet's posts spread
   * evenly over the window too, not only each account's.
   */
  private async plan(
    state: AccountState,
    what: 'post' | 'join' | 'window' | 'look',
    w = this.window(this.now()),
  ): Promise<void> {
    if (!this.deps.settings.spread) return;
    const { settings } = this.deps;
    // Until the plan is read, the cautious one: a spacing from now (a read that fails must not
    // leave a time in the past that lets the next actions go at once). Only looking changes nothing yet.
    const nowMs = this.now().getTime();
    if (what === 'post' || what === 'window')
      state.nextPostAt = Math.max(
        state.nextPostAt,
        nowMs + Math.max(settings.postSpacingMs, this.deps.settings.actionDelayMs.max),
      );
    if (what === 'join' || what === 'window')
      state.nextJoinAt = Math.max(
        state.nextJoinAt,
        nowMs + Math.max(settings.joinSpacingMs, this.deps.settings.actionDelayMs.max),
      );
    const from = Math.max(nowMs, w.start);
    // The day's budgets are the UTC day's: spread what is left of them over the window's open
    // time left in this UTC day (one part, or two when the window crosses UTC midnight).
    const dayEnd = utcDayStart(new Date(from)).getTime() + 24 * HOUR_MS;
    const parts = openParts(from, dayEnd, settings.postingHours, settings.timeZone);
    const horizon = parts.length ? parts[parts.length - 1]![1] : dayEnd;
    const left = await dayLeft(this.deps.dataSource, {
      accountId: state.account.id,
      niches: settings.niches,
      minGapMs: settings.groupMinGapMs,
      joinsPerDay: settings.joinsPerAccountPerDay,
      now: new Date(from),
      horizon: new Date(horizon),
      pace: settings,
    });
    // Joins over the open time whose groups, warmed up 24 h later, still have time for both their
    // posts that day (the gap between them); late in the day, over what is left.
    const open = openTime(parts);
    const joinOpen = open > settings.groupMinGapMs ? open - settings.groupMinGapMs : open;
    const jitter = () => JITTER_MIN + state.random() * JITTER_SPAN;
    const after = (delay: number) => afterOpenTime(parts, delay);
    const postShare = (n: number) => Math.max(settings.postSpacingMs, open / (n + 1));
    const joinShare = (n: number) => Math.max(settings.joinSpacingMs, joinOpen / (n + 1));
    // A new plan (a window opens, a UTC day starts within one, a process takes the account over)
    // starts at the account's phase within the first share after the plan's start, or one share
    // after its last post (join) if it made one since: a restart neither posts at once nor
    // starts the day over. A plan with nothing in sight yet keeps the phase (a group may come;
    // the reservation decides). After the day's last post or join, the next UTC day's plan is
    // made when it starts, at the phase: a window across UTC midnight does not see the whole
    // fleet post at 00:00.
    const plannedBefore = state.nextPostAt;
    if (what === 'window') {
      const planStart = Math.max(w.start, utcDayStart(new Date(from)).getTime());
      const resume = (last: Date | null, share: number) =>
        Math.max(
          from,
          last !== null && last.getTime() >= planStart ? last.getTime() + share : planStart + state.phase * share,
        );
      state.nextPostAt = resume(left.lastPostAt, postShare(Math.max(1, left.posts)));
      state.nextJoinAt = resume(left.lastJoinAt, joinShare(Math.max(1, left.joins)));
    } else if (what === 'post') {
      state.nextPostAt = left.posts > 0 ? after(postShare(left.posts) * jitter()) : dayEnd;
    } else if (what === 'join') {
      state.nextJoinAt = left.joins > 0 ? after(joinShare(left.joins) * jitter()) : dayEnd;
    }
    if ((what === 'join' || what === 'look') && left.posts > state.planPosts) {
      // More to post today than the plan counted on (groups bound or warmed up since, a hold
      // lifted): the next post comes at the even share of what there is now, one share after the
      // last post, or at the account's phase within a share from now; never later than planned.
      const share = postShare(left.posts);
      const last = left.lastPostAt?.getTime();
      const sooner = last !== undefined && last + share > from ? last + share : from + state.phase * share;
      state.nextPostAt = Math.min(state.nextPostAt, Math.max(from, sooner));
    }
    if (what !== 'join' || left.posts > state.planPosts) state.planPosts = left.posts;
    if (what === 'post' || what === 'window' || state.nextPostAt !== plannedBefore) {
      // For lexus status: when it posts next; with nothing left today, not before the next
      // day's window opens; none without a group to post in.
      const next = left.posts > 0 ? state.nextPostAt : left.groups > 0 ? this.window(new Date(dayEnd)).start : null;
      await setPlannedPost(this.deps.dataSource, state.account.id, next === null ? null : new Date(next)).catch(
        () => undefined,
      );
    }
  }

  /**
   * A new window, or a new UTC day within one (a window across UTC midnight), or no plan yet (a
   * takeover): the plan starts over at the account's phase. Marked made only once it is.
   */
  private async newWindow(state: AccountState, w: { start: number; end: number }): Promise<void> {
    const key = `${w.start}/${utcDayStart(this.now()).getTime()}`;
    if (state.planFor === key) return;
    if (this.deps.settings.spread) await this.plan(state, 'window', w);
    state.planFor = key;
  }

  /**
   * Nothing to do now: sleep until the database's next chance for this account (at least one
   * pause, at most IDLE_RECHECK_MS), with a little spread so that accounts waiting for the same
   * instant (midnight) do not all wake at once. Returns false when the chance is now.
   */
  private async rest(state: AccountState): Promise<boolean> {
    const now = this.now().getTime();
    const { settings } = this.deps;
    const chances = await nextChances(this.deps.dataSource, {
      accountId: state.account.id,
      niches: settings.niches,
      minGapMs: settings.groupMinGapMs,
      joinsPerDay: settings.joinsPerAccountPerDay,
      now: new Date(now),
      pace: settings,
    });
    // The database's next chance, not before the day's plan allows, and inside the window. A plan
    // that counted on no post today wakes at the chance itself, to plan the posts it brings.
    const planned = [
      chances.post === null
        ? Infinity
        : state.planPosts === 0
          ? chances.post.getTime()
          : Math.max(chances.post.getTime(), state.nextPostAt),
      chances.join === null ? Infinity : Math.max(chances.join.getTime(), state.nextJoinAt),
    ];
    let next = Math.min(...planned);
    if (next !== Infinity && !inPostingWindow(new Date(next), settings.postingHours, settings.timeZone)) {
      next = Math.max(next, this.windowStartFor(state, this.window(new Date(next)).start));
    }
    const chance = next === Infinity ? null : new Date(next);
    if (state.resting && chance !== null && chance.getTime() <= now) {
      state.resting = false;
      return false;
    }
    const spread = Math.floor(state.random() * settings.actionDelayMs.min);
    const wake = chance === null ? Infinity : chance.getTime() + spread;
    // Waking at the chance itself is an ordinary action; waking at the cap only looks again.
    state.resting = wake > now + IDLE_RECHECK_MS;
    this.schedule(state, Math.max(this.pause(state), Math.min(wake, now + IDLE_RECHECK_MS) - now));
    return true;
  }

  /** Actions in flight now. */
  busyActions(): number {
    return this.inflight.size;
  }

  /**
   * How long the oldest action in flight and the round in progress have been running (ms; 0 when
   * none): the liveness check's and the watchdog's view of whether this process makes progress.
   */
  progress(): { oldestActionMs: number; roundMs: number } {
    const now = performance.now();
    const oldest = Math.min(Infinity, ...this.actionStarts.values());
    return {
      oldestActionMs: oldest === Infinity ? 0 : now - oldest,
      roundMs: this.roundStartedAt === undefined ? 0 : now - this.roundStartedAt,
    };
  }

  /** When the next account not acting now is due, or a record is to be tried again (ms since the epoch). */
  nextWakeAt(): number | undefined {
    const times = [...this.accounts.values()].filter((s) => !s.busy).map((s) => s.nextActionAt);
    const retry = this.recorder.nextTryAt();
    if (retry !== undefined) times.push(retry);
    return times.length ? Math.min(...times) : undefined;
  }

  /** Resolves when one of the actions in flight ends (at once when none is). */
  async anyActionEnds(): Promise<void> {
    if (this.inflight.size > 0) await Promise.race([...this.inflight]);
  }

  /** Waits for the actions in flight. */
  async idle(): Promise<void> {
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
  }

  /**
   * Whether this account may make a Telegram call now, as far as this process knows: it is still
   * this process's (lock held, lease within its time), no answer of it is unrecorded, no hold.
   * Asked right before every call to the gateway.
   */
  private async mayCall(state: AccountState): Promise<boolean> {
    // A lease run out meanwhile is renewed first (or every session stops): keepLease decides.
    if (!this.leased()) await this.keepLease();
    return (
      this.leased() &&
      !state.lost &&
      !this.recorder.blocked(state.account.id) &&
      this.now().getTime() >= state.holdUntil &&
      this.deps.locks.holds(state.account.id)
    );
  }

  /** The lease, as this process last confirmed it, still runs. */
  private leased(): boolean {
    return (
      this.leaseConfirmedAt !== undefined &&
      this.now().getTime() - this.leaseConfirmedAt <= this.leaseMs &&
      this.deps.locks.holderPid === this.leasePid
    );
  }

  /** One action of one account: a post if a group is ready, else a join if there is budget. */
  private async act(state: AccountState): Promise<void> {
    const { account } = state;
    const now = this.now();
    const pid = this.deps.locks.holderPid;
    if (pid === undefined || !this.deps.locks.holds(account.id)) return;
    if (this.recorder.blocked(account.id)) {
      // An earlier answer is not recorded yet: nothing else until it is (the round retries it).
      state.nextActionAt = Math.max(this.recorder.nextTryAt(account.id) ?? now.getTime(), state.holdUntil);
      return;
    }
    if (now.getTime() < state.holdUntil) {
      state.nextActionAt = state.holdUntil;
      return;
    }
    // Woken only to look again: one question, and back to sleep unless something changed.
    if (state.resting && (await this.rest(state))) return;
    const { mayAct, floodWaitEnded } = await accountMayAct(this.deps.dataSource, account.id, now);
    if (floodWaitEnded)
      this.log.info({ event: 'account.flood_wait_over', account: account.sessionName }, 'FloodWait over; acting again');
    if (!mayAct) {
      await this.rest(state);
      return;
    }
    // The day's plan: a post when its time has come, else a join when its own has.
    await this.newWindow(state, this.window(now));
    if (this.deps.settings.spread && now.getTime() < state.nextPostAt && (state.relook || state.planPosts === 0)) {
      state.relook = false;
      await this.plan(state, 'look');
    }
    const postDue = now.getTime() >= state.nextPostAt;
    const joinDue = now.getTime() >= state.nextJoinAt;
    if (!postDue && !joinDue) {
      await this.rest(state);
      return;
    }
    const session = await this.connected(state, pid);
    // The window may have closed while it connected: nothing starts (the round outside the window
    // sets its next look at the window's opening).
    if (!session || !this.inWindow()) return;
    if (postDue) {
      for (const niche of this.deps.settings.niches) {
        if (!(await this.mayCall(state))) return;
        const slot = await reservePostSlot(this.deps.dataSource, {
          accountId: account.id,
          niche,
          minGapMs: this.deps.settings.groupMinGapMs,
          lockHolderPid: pid,
          startsCall: true,
          now: this.now(),
          pace: this.deps.settings,
        });
        if (slot) {
          const outcome = await this.post(state, session, slot);
          await this.plan(state, 'post');
          // A group refused it: another group soon tells whether the account itself is restricted.
          if (outcome && consequenceOf('post', outcome).group.kind === 'refused')
            state.nextPostAt = Math.min(state.nextPostAt, this.now().getTime() + this.pause(state));
          return;
        }
      }
    }
    if (!joinDue) {
      await this.rest(state);
      return;
    }
    if (!(await this.mayCall(state))) return;
    if (await this.join(state, session, pid)) await this.plan(state, 'join');
  }

  private async connected(state: AccountState, pid: number): Promise<TelegramSession | undefined> {
    if (state.session) return state.session;
    const { account } = state;
    const callAt = this.now();
    if (!(await beginCall(this.deps.dataSource, account.id, callAt, pid))) {
      this.schedule(state);
      return undefined;
    }
    const session = this.deps.gateway.session({
      sessionName: account.sessionName,
      sessionString: account.sessionString,
      apiId: account.apiId,
      apiHash: account.apiHash,
      proxy: account.proxy,
    });
    // Kept at once, so that losing the account closes a session still connecting too.
    state.session = session;
    const outcome = await session.connect();
    if (outcome.kind === 'connected' && (await this.mayCall(state)) && state.session === session) {
      state.connectedWith = credentialsOf(account);
    } else {
      if (state.session === session) state.session = undefined;
      await session.disconnect();
    }
    await this.answer(state, 'connect', outcome, { callStartedAt: callAt });
    return state.session && !state.lost ? state.session : undefined;
  }

  /** A slot reserved but nothing sent (our side failed, or the account was lost meanwhile): it goes back. */
  private async giveBack(state: AccountState, slot: PostSlot, why: string, callAt: Date): Promise<void> {
    await this.answer(
      state,
      'post',
      { kind: 'transient', error: why, uncertain: false },
      { targetId: slot.targetId, link: slot.link, slot, callStartedAt: callAt },
    );
  }

  /** Sends the post of a reserved slot; what Telegram answered (undefined when nothing was sent). */
  private async post(state: AccountState, session: TelegramSession, slot: PostSlot): Promise<AnyOutcome | undefined> {
    const callAt = slot.reservedAt;
    let variant: MessageVariant;
    try {
      variant = chooseVariant(this.deps.messages, slot.lastMessage, slot.targetId);
      await describeSlot(this.deps.dataSource, slot.id, variant.text, variant.photoPath);
    } catch (error) {
      await this.giveBack(state, slot, `nothing sent: ${(error as Error).message}`, callAt);
      return undefined;
    }
    if (!(await this.mayCall(state))) {
      await this.giveBack(state, slot, 'nothing sent: the account was taken over by another process', callAt);
      return undefined;
    }
    const group = { link: slot.link, telegramId: slot.telegramId, accessHash: slot.accessHash };
    let photoPath = variant.photoPath;
    let outcome = await session.post(group, { text: variant.text, photoPath });
    if (outcome.kind === 'media_forbidden' && photoPath && (await this.mayCall(state))) {
      // Text only in this group: once more without the photo.
      this.log.info(
        { event: 'post.text_only', account: state.account.sessionName, target: slot.link },
        'the group takes no photos; sending the text alone',
      );
      photoPath = null;
      outcome = await session.post(group, { text: variant.text, photoPath });
    }
    await this.answer(state, 'post', outcome, {
      targetId: slot.targetId,
      link: slot.link,
      slot,
      chat: chatOf(outcome),
      callStartedAt: callAt,
      message: { text: variant.text, photoPath, variant: variant.name },
    });
    return outcome;
  }

  /** A join, if the budget allows and a group waits; true when Telegram was asked. */
  private async join(state: AccountState, session: TelegramSession, pid: number): Promise<boolean> {
    const { account } = state;
    const ds = this.deps.dataSource;
    const now = this.now();
    if (!(await mayTryJoin(ds, account.id, this.deps.settings.joinsPerAccountPerDay, now, this.deps.settings))) {
      await this.rest(state);
      return false;
    }
    const claim = await claimJoinTarget(ds, account.id, this.deps.settings.niches, now, pid);
    if (!claim) {
      await this.rest(state);
      return false;
    }
    const ctx = { targetId: claim.targetId, link: claim.link };
    let callAt = this.now();
    if (!(await this.mayCall(state)) || !(await beginCall(ds, account.id, callAt, pid))) return false;
    // The chat first, where Telegram tells it: a second link of a chat we have is never joined.
    const found = await session.lookup({ link: claim.link });
    if (found.kind !== 'found') {
      await this.answer(state, 'lookup', found, { ...ctx, callStartedAt: callAt });
      return true;
    }
    if (found.member && found.chat) {
      await this.answer(
        state,
        'join',
        {
          kind: 'already_member',
          telegramId: found.chat.telegramId,
          title: found.chat.title,
          accessHash: found.chat.accessHash,
        },
        {
          ...ctx,
          chat: found.chat,
          callStartedAt: callAt,
        },
      );
      return true;
    }
    if (found.chat) {
      const learnt = await this.answer(state, 'lookup', found, { ...ctx, chat: found.chat, callStartedAt: callAt });
      if (!learnt || learnt.duplicateOf !== null) return true;
    }
    // The join waits for the window if it closed during the lookup (the claim stays with this
    // account); an invite to a chat we are not in tells no chat, and waits the same.
    if (!this.inWindow()) {
      if (!found.chat) await this.answer(state, 'lookup', found, { ...ctx, callStartedAt: callAt });
      return true;
    }
    if (!(await this.mayCall(state))) return true;
    if (found.chat) {
      callAt = this.now();
      if (!(await beginCall(ds, account.id, callAt, pid))) return true;
    }
    const outcome: JoinOutcome = await session.join({ link: claim.link });
    await this.answer(state, 'join', outcome, { ...ctx, chat: chatOf(outcome), callStartedAt: callAt });
    return true;
  }

  /**
   * Telegram answered `call` with `outcome`: its consequence (answers.ts), applied in one place.
   * The hold it implies is taken in memory at once; the record goes through the recorder, and
   * what follows from the database's side (the wait in force, a restriction, a duplicate chat)
   * is applied once it is recorded. Returns the record's result, or undefined while it waits.
   */
  private async answer(
    state: AccountState,
    call: Call,
    outcome: AnyOutcome,
    ctx: CallContext,
  ): Promise<AnswerResult | undefined> {
    const at = this.now();
    const { account } = state;
    const c = consequenceOf(call, outcome, {
      link: ctx.link,
      peerFloodPauseHours: this.deps.settings.peerFloodPauseMs / 3_600_000,
    });
    const error = 'error' in outcome ? outcome.error : null;
    this.observe(call, outcome, c);
    if (c.account.kind === 'flood_wait') this.hold(state, at.getTime() + c.account.seconds * SECOND_MS);
    if (c.account.kind === 'limited') this.hold(state, at.getTime() + this.deps.settings.peerFloodPauseMs);
    if (c.account.kind === 'dead') {
      this.hold(state, Infinity);
      await this.stopSession(state);
    }
    const record: AnswerRecord = {
      answerId: `${this.instance}:${++this.answers}`,
      accountId: account.id,
      at,
      call,
      outcome: outcome.kind,
      error,
      consequence: c,
      policy: this.policy,
      callStartedAt: ctx.callStartedAt,
      ...(ctx.targetId === undefined ? {} : { targetId: ctx.targetId }),
      ...(ctx.slot ? { slotId: ctx.slot.id } : {}),
      ...(ctx.chat ? { chat: ctx.chat } : {}),
      ...(ctx.message ? { message: { text: ctx.message.text, photoPath: ctx.message.photoPath } } : {}),
    };
    const fields = {
      account: account.sessionName,
      outcome: outcome.kind,
      ...(ctx.link ? { target: ctx.link } : {}),
      ...(ctx.slot ? { post_id: ctx.slot.id } : {}),
      ...(error ? { error } : {}),
    };
    let recorded: AnswerResult | undefined;
    const what = `${call} ${ctx.link ?? ''} ${error ?? outcome.kind}`.replace(/\s+/g, ' ').trim();
    const ok = await this.recorder.record(account.sessionName, record, what, (result) => {
      recorded = result;
      this.afterRecord(state, c, result, { ...fields, ...(ctx.message ? { variant: ctx.message.variant } : {}) });
    });
    if (!ok) {
      // Nothing else for this account until the record goes through; the round retries it.
      state.nextActionAt = Math.max(this.recorder.nextTryAt(account.id) ?? at.getTime(), state.holdUntil);
      return undefined;
    }
    return recorded;
  }

  /** What follows once an answer is recorded: the logs, the wait in force, the next action. */
  private afterRecord(
    state: AccountState,
    c: Consequence,
    result: AnswerResult,
    fields: Record<string, unknown>,
  ): void {
    const { account } = state;
    if (result.holdUntil) this.hold(state, result.holdUntil.getTime());
    const holdFields = result.holdUntil ? { until: result.holdUntil.toISOString() } : {};
    const extra =
      c.account.kind === 'flood_wait'
        ? { wait_s: c.account.seconds }
        : c.account.kind === 'limited'
          ? { wait_s: this.deps.settings.peerFloodPauseMs / SECOND_MS }
          : {};
    if (c.log.event !== 'account.connected' || state.session)
      this.log[c.log.level]({ event: c.log.event, ...fields, ...extra, ...holdFields }, c.log.message);
    if (result.restricted) {
      this.log.warn(
        {
          event: 'account.restricted',
          account: account.sessionName,
          refusals: result.restricted.refusals,
          ...holdFields,
        },
        `Telegram restricts this account: ${result.restricted.refusals} groups refused it in a row; paused, and those groups are reopened for it`,
      );
    }
    if (result.duplicateOf) {
      this.log.warn(
        { event: 'group.duplicate', ...fields, same_chat_as: result.duplicateOf },
        `${String(fields.target)} is the same chat as ${result.duplicateOf}: closed as its duplicate, never joined or posted to through this link`,
      );
    }
    if (result.absorbed) {
      this.log.warn(
        { event: 'group.duplicate', target: result.absorbed, same_chat_as: fields.target },
        `${result.absorbed} is the same chat as ${String(fields.target)}: closed as its duplicate`,
      );
    }
    if (result.bound === false)
      this.log.warn(
        { event: 'group.bind_refused', ...fields },
        `joined ${String(fields.target)}, but the database refuses to bind it to this account`,
      );
    if (c.account.kind === 'dead') {
      this.log.error(
        { event: 'account.session_dead', account: account.sessionName, error: fields.error },
        `the session is dead: account stopped; log it in again with lexus login ${account.sessionName}`,
      );
      void this.dropAccount(state, 'session dead');
      return;
    }
    switch (c.next) {
      case 'pace':
        if (c.slot.kind === 'sent' || c.group.kind === 'bind') state.failures = 0;
        this.schedule(state);
        break;
      case 'backoff':
        this.backoff(state);
        break;
      case 'later':
        this.schedule(state, MISCONFIGURED_RETRY_MS);
        break;
      case 'hold':
        this.schedule(state, 0);
        break;
      default:
        break;
    }
  }

  private observe(call: Call, outcome: AnyOutcome, c: Consequence): void {
    const observer = this.deps.observer;
    if (!observer) return;
    if (call === 'connect') observer.connectOutcome(outcome.kind);
    else if (call === 'post') observer.postOutcome(outcome.kind);
    else if (call === 'join' || outcome.kind !== 'found') observer.joinOutcome(outcome.kind);
    if (c.account.kind === 'flood_wait') observer.floodWait();
  }

  /**
   * Stops: no new action, the ones in flight finish and Telegram's answers are recorded (at most
   * `graceMs` for both), sessions disconnect together, and the accounts are given up. Returns
   * false when an action was still running, or an answer unrecorded, at the deadline.
   */
  async stop(graceMs: number): Promise<boolean> {
    this.stopping = true;
    // One deadline for all of it, a round that hangs on the database included.
    const deadline = Date.now() + graceMs;
    let timer: NodeJS.Timeout | undefined;
    const finished = await Promise.race([
      (async () => {
        await this.round?.catch(() => undefined);
        await this.idle();
        // Answers still unrecorded: keep trying until the deadline.
        while (this.recorder.unrecorded().length > 0 && Date.now() < deadline) {
          await this.recorder.flushNow();
          if (this.recorder.unrecorded().length > 0) await new Promise((resolve) => setTimeout(resolve, 500));
        }
        return this.recorder.unrecorded().length === 0;
      })(),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), graceMs);
      }),
    ]);
    clearTimeout(timer);
    const unrecorded = this.recorder.unrecorded();
    if (unrecorded.length > 0) {
      this.log.error(
        { event: 'answer.lost_at_stop', unrecorded },
        "stopping with Telegram's answers unrecorded (the database did not take them); the next process holds these accounts a while",
      );
    }
    const states = [...this.accounts.values()];
    this.accounts.clear();
    // After the grace, one short deadline for all of what is left: the sessions disconnect
    // together, then the leases end and the locks go. A session that does not close by then is
    // cut when the process exits; its lease was not ended, so the next process waits for it.
    const margin = Date.now() + STOP_AFTER_GRACE_MS;
    const left = () => Math.max(0, margin - Date.now());
    const closed = await withDeadline(Promise.all(states.map((s) => this.stopSession(s))), left()).then(
      () => true,
      () => false,
    );
    // Every session is closed: the lease ends now, and the next process need not wait for it;
    // except on an account whose action is still running or whose answer is unrecorded.
    const done = closed
      ? states.filter((s) => !s.busy && !this.recorder.blocked(s.account.id)).map((s) => s.account.id)
      : [];
    await withDeadline(endLease(this.deps.dataSource, done, this.instance), Math.min(LOCK_CONFIRM_MS, left())).catch(
      () => undefined,
    );
    await withDeadline(this.deps.locks.close(), left()).catch(() => undefined);
    if (!closed)
      this.log.warn(
        { event: 'daemon.sessions_not_closed', accounts: states.map((s) => s.account.sessionName) },
        `sessions still closing ${STOP_AFTER_GRACE_MS / 1000} s after the grace: left to the exit`,
      );
    return finished && closed;
  }
}

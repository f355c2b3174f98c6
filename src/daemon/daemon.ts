/**
 * The posting daemon: per account, join -> 24 h warm-up -> post, one action at a time, paced by
 * a random pause, accounts in parallel under a cap. Every rule is kept by the database (the
 * reservation checks them all in one statement); this loop only decides what to try next and
 * records what Telegram answered.
 *
 * Time comes from the injected clock only, and `tick()` is one scheduling round, so tests and
 * the simulator drive the same code on virtual time. `runDaemon` (run.ts) calls it every second.
 */
import type { DaemonObserver } from '../health/metrics';
import type { DataSource } from 'typeorm';
import { HOUR_MS, MINUTE_MS, SECOND_MS, type Clock } from '../clock';
import type { DaemonSettings } from '../config';
import { AccountLocks } from '../db/accountLocks';
import {
  accountMayAct,
  banAccount,
  claimJoinTarget,
  closeTarget,
  describeSlot,
  joinBudgetUsed,
  loadDrivableAccounts,
  markAbandonedSlotsUnknown,
  markJoinRequested,
  nextChanceAt,
  postponeJoin,
  recordJoinAttempt,
  releaseJoinClaim,
  setAccountStatusReason,
  setTargetIdentity,
  setTargetSlowMode,
  type DrivableAccount,
} from '../db/daemonQueries';
import { DbManager, SlotAlreadySettledError, type PostSlot, type SettleOutcome } from '../db/DbManager';
import type { Logger } from '../logger';
import type { TelegramGateway, TelegramSession } from '../telegram/gateway';
import type { JoinOutcome, PostOutcome } from '../telegram/outcomes';
import { chooseVariant, type MessageVariant } from './messages';
import { inQuietHours } from './quietHours';
import { seeded } from '../random';

/** Backoff after a transient failure: 30 s, doubling, at most 30 min. */
const BACKOFF_BASE_MS = 30 * SECOND_MS;
const BACKOFF_MAX_MS = 30 * MINUTE_MS;
/** A join request is asked again (by the same account) after this long. */
const JOIN_REQUEST_RETRY_MS = 12 * HOUR_MS;
/** Our side cannot act for this account (credentials, proxy): look again after this long. */
const MISCONFIGURED_RETRY_MS = HOUR_MS;
/** A group whose post failed (not its own refusal) is left alone this long, so others go first. */
const GROUP_RETRY_MS = 30 * MINUTE_MS;
/** A group that refused our message as it is (media, length): left alone this long. */
const GROUP_REFUSED_MS = 6 * HOUR_MS;
/**
 * A process that takes an account over waits this long before its first action: the process
 * that had it (if alive but cut off) notices the lost lock within a round or two and stops its
 * session first, so Telegram never sees the session twice (AUTH_KEY_DUPLICATED).
 */
const TAKEOVER_GRACE_MS = 15 * SECOND_MS;
/**
 * An account with nothing to do sleeps until the database says something becomes possible (a
 * warm-up ends, midnight, a FloodWait runs out), but looks again at least this often, so that
 * groups added meanwhile or a binding reset by hand are noticed.
 */
const IDLE_RECHECK_MS = 2 * HOUR_MS;
const DEFAULT_REFRESH_MS = 5 * SECOND_MS;

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
   * How often a round re-reads the accounts and checks its locks (clock time); default 5 s,
   * well within the 15 s a process taking an account over waits. Rounds in between only start
   * the actions due.
   */
  refreshEveryMs?: number;
  /**
   * At most this many actions started per round (default: as many as the cap allows). The
   * simulator starts one at a time so that two actions never race, and a seed replays exactly.
   */
  maxStartsPerRound?: number;
  /** Told every answer Telegram gives (the metrics); optional. */
  observer?: DaemonObserver;
}

interface AccountState {
  account: DrivableAccount;
  session: TelegramSession | undefined;
  /** The credentials the session was made with (a new login or proxy needs a new session). */
  connectedWith: string | undefined;
  nextActionAt: number;
  busy: boolean;
  failures: number;
  /** The lock was lost while an action ran: the account is dropped when it ends. */
  lost: boolean;
  /** This account's own random numbers (pacing), so that accounts do not draw from one another's. */
  random: () => number;
  /** It sleeps with nothing to do and wakes only to look again (IDLE_RECHECK_MS). */
  resting: boolean;
}

const credentialsOf = (a: DrivableAccount) => JSON.stringify([a.sessionString, a.apiId, a.apiHash, a.proxy]);

/** Errors that mean "the database is not reachable right now", worth trying again. */
function isConnectionError(error: unknown): boolean {
  const code = (error as { code?: string }).code ?? (error as { driverError?: { code?: string } }).driverError?.code ?? '';
  const message = error instanceof Error ? error.message : String(error);
  return /^(08|57P0)/.test(code) || /^E(CONN|PIPE|TIMEDOUT|HOSTUNREACH)/.test(code) || /Connection terminated|connection timeout|not queryable|timeout exceeded/i.test(message);
}

export class Daemon {
  readonly db: DbManager;
  private readonly accounts = new Map<number, AccountState>();
  private readonly inflight = new Set<Promise<void>>();
  private readonly random: () => number;
  private stopping = false;
  private databaseDown = false;
  private round: Promise<void> | undefined;
  private lastRefreshAt: number | undefined;
  /** Actions started since this process began. */
  actionsStarted = 0;
  /** When the last scheduling round finished (the health check reads it). */
  lastTickAt: Date | undefined;

  constructor(private readonly deps: DaemonDeps) {
    this.db = new DbManager(deps.dataSource, { clock: deps.clock });
    this.random = deps.random ?? Math.random;
  }

  private get log(): Logger {
    return this.deps.log;
  }

  private now(): Date {
    return this.deps.clock.now();
  }

  /** Accounts this process drives now. */
  drivenAccounts(): string[] {
    return [...this.accounts.values()].map((s) => s.account.sessionName).sort();
  }

  private pause(state: AccountState): number {
    const { min, max } = this.deps.settings.actionDelayMs;
    return min + Math.floor(state.random() * (max - min + 1));
  }

  private schedule(state: AccountState, delayMs = this.pause(state)): void {
    state.nextActionAt = this.now().getTime() + delayMs;
  }

  private backoff(state: AccountState): void {
    state.failures++;
    const delay = Math.min(BACKOFF_BASE_MS * 2 ** (state.failures - 1), BACKOFF_MAX_MS);
    this.schedule(state, delay + Math.floor(state.random() * delay * 0.2));
  }

  /**
   * One scheduling round: take over accounts no process drives, drop the ones gone, and start
   * an action for each account whose pause is over. Does not wait for the actions (idle() does).
   */
  async tick(): Promise<void> {
    if (this.stopping || this.round) return;
    this.round = this.runRound().finally(() => {
      this.round = undefined;
    });
    return this.round;
  }

  private async runRound(): Promise<void> {
    const now = this.now();
    if (this.lastRefreshAt === undefined || now.getTime() - this.lastRefreshAt >= (this.deps.refreshEveryMs ?? DEFAULT_REFRESH_MS)) {
      if (!(await this.refresh(now))) return;
      this.lastRefreshAt = now.getTime();
    }
    if (this.stopping) return;
    this.lastTickAt = now;
    if (this.deps.settings.quietHours && inQuietHours(now, this.deps.settings.quietHours, this.deps.settings.timeZone)) return;
    const due = [...this.accounts.values()]
      .filter((s) => !s.busy && s.nextActionAt <= now.getTime())
      .sort((x, y) => x.account.boundGroups - y.account.boundGroups || x.nextActionAt - y.nextActionAt);
    let starts = 0;
    for (const state of due) {
      if (this.inflight.size >= this.deps.settings.maxParallelAccounts || this.stopping || starts >= (this.deps.maxStartsPerRound ?? Infinity)) break;
      this.start(state);
      starts++;
      this.actionsStarted++;
    }
  }

  /** Re-reads the accounts, checks the locks, takes over new accounts and drops lost ones. */
  private async refresh(now: Date): Promise<boolean> {
    let drivable: DrivableAccount[];
    let held: number[];
    try {
      drivable = await loadDrivableAccounts(this.deps.dataSource);
      held = await this.deps.locks.acquire(drivable.map((a) => a.id));
      if (this.databaseDown) this.log.info({ event: 'db.back' }, 'database reachable again; carrying on');
      this.databaseDown = false;
    } catch (error) {
      if (!this.databaseDown) this.log.error({ event: 'db.down', error: (error as Error).message }, 'database unreachable; retrying until it is back');
      this.databaseDown = true;
      return false;
    }
    if (this.stopping) return false;
    const byId = new Map(drivable.map((a) => [a.id, a]));
    for (const [id, state] of this.accounts) {
      if (byId.has(id) && held.includes(id)) continue;
      if (state.busy) {
        // The lock is gone (or the account is): its session stops at once, even mid-action,
        // since another process may drive the account now.
        if (!held.includes(id) && !state.lost) {
          state.lost = true;
          this.log.warn({ event: 'account.lock_lost', account: state.account.sessionName }, 'lost this account to another process; stopping its session now');
          await state.session?.disconnect();
          state.session = undefined;
        }
        continue;
      }
      await this.dropAccount(state, held.includes(id) ? 'no longer drivable' : 'its lock was lost');
    }
    for (const id of held) {
      const account = byId.get(id);
      if (!account) continue;
      const state = this.accounts.get(id);
      if (state) {
        state.account = account;
        if (!state.busy && state.session && state.connectedWith !== credentialsOf(account)) {
          // A new login, proxy or API key: the old session goes.
          await state.session.disconnect();
          state.session = undefined;
        }
        continue;
      }
      await this.takeOver(account, now);
    }
    return true;
  }

  private async takeOver(account: DrivableAccount, now: Date): Promise<void> {
    try {
      const abandoned = await markAbandonedSlotsUnknown(this.deps.dataSource, account.id, now);
      if (abandoned > 0) {
        this.log.warn(
          { event: 'post.unknown', account: account.sessionName, count: abandoned },
          'a previous process stopped between sending and recording: those posts count as made and are not sent again',
        );
      }
    } catch (error) {
      this.log.error({ event: 'db.error', account: account.sessionName, error: (error as Error).message }, 'could not take the account over');
      await this.deps.locks.release(account.id);
      return;
    }
    // Spread the first actions over the first pause, rather than all at once.
    const state: AccountState = {
      account, session: undefined, connectedWith: undefined, nextActionAt: 0, busy: false, failures: 0, lost: false,
      random: seeded(Math.floor(this.random() * 2 ** 32)),
      resting: false,
    };
    this.schedule(state, TAKEOVER_GRACE_MS + Math.floor(state.random() * this.deps.settings.actionDelayMs.min));
    this.accounts.set(account.id, state);
    this.log.info({ event: 'account.driven', account: account.sessionName }, 'driving this account');
  }

  private async dropAccount(state: AccountState, why: string): Promise<void> {
    this.accounts.delete(state.account.id);
    await state.session?.disconnect();
    await this.deps.locks.release(state.account.id);
    this.log.info({ event: 'account.released', account: state.account.sessionName, reason: why }, 'no longer driving this account');
  }

  private start(state: AccountState): void {
    state.busy = true;
    const action = this.act(state)
      .catch((error: unknown) => {
        this.log.error({ event: 'action.failed', account: state.account.sessionName, err: error }, (error as Error).message);
        this.backoff(state);
      })
      .finally(async () => {
        state.busy = false;
        if (state.lost && this.accounts.get(state.account.id) === state) await this.dropAccount(state, 'its lock was lost');
        this.inflight.delete(action);
      });
    this.inflight.add(action);
  }

  /**
   * Nothing to do now: sleep until the database's next chance for this account (at least one
   * pause, at most IDLE_RECHECK_MS), with a little spread so that accounts waiting for the same
   * instant (midnight) do not all wake at once. Returns false when the chance is now.
   */
  private async rest(state: AccountState): Promise<boolean> {
    const now = this.now().getTime();
    const { settings } = this.deps;
    const chance = await nextChanceAt(this.deps.dataSource, {
      accountId: state.account.id,
      niches: settings.niches,
      minGapMs: settings.groupMinGapMs,
      joinsPerDay: settings.joinsPerAccountPerDay,
      now: new Date(now),
    });
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

  /** When the next account not acting now is due (ms since the epoch); undefined when none is. */
  nextWakeAt(): number | undefined {
    const times = [...this.accounts.values()].filter((s) => !s.busy).map((s) => s.nextActionAt);
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

  /** One action of one account: a post if a group is ready, else a join if there is budget. */
  private async act(state: AccountState): Promise<void> {
    const { account } = state;
    const now = this.now();
    const pid = this.deps.locks.holderPid;
    if (!this.deps.locks.holds(account.id) || pid === undefined) return;
    // Woken only to look again: one question, and back to sleep unless something changed.
    if (state.resting && (await this.rest(state))) return;
    const { mayAct, floodWaitEnded } = await accountMayAct(this.deps.dataSource, account.id, now);
    if (floodWaitEnded) this.log.info({ event: 'account.flood_wait_over', account: account.sessionName }, 'FloodWait over; acting again');
    if (!mayAct) {
      await this.rest(state);
      return;
    }
    const session = await this.connected(state);
    if (!session) return;
    for (const niche of this.deps.settings.niches) {
      const slot = await this.db.reservePostSlot({ accountId: account.id, niche, minGapMs: this.deps.settings.groupMinGapMs, lockHolderPid: pid });
      if (slot) {
        await this.post(state, session, slot, niche);
        return;
      }
    }
    if (state.lost) return;
    await this.join(state, session);
  }

  private async connected(state: AccountState): Promise<TelegramSession | undefined> {
    if (state.session) return state.session;
    const { account } = state;
    const session = this.deps.gateway.session({
      sessionName: account.sessionName,
      sessionString: account.sessionString,
      apiId: account.apiId,
      apiHash: account.apiHash,
      proxy: account.proxy,
    });
    const outcome = await session.connect();
    this.deps.observer?.connectOutcome(outcome.kind);
    const fields = { account: account.sessionName, outcome: outcome.kind };
    switch (outcome.kind) {
      case 'connected':
        state.session = session;
        state.connectedWith = credentialsOf(account);
        this.log.info({ event: 'account.connected', ...fields }, 'connected to Telegram');
        return session;
      case 'session_dead':
        await this.sessionDead(state, outcome.error);
        return undefined;
      case 'account_flood_wait':
        await this.floodWait(state, outcome.seconds, outcome.error);
        return undefined;
      case 'account_limited':
        await this.limited(state, outcome.error);
        return undefined;
      case 'misconfigured':
        this.log.error({ event: 'account.misconfigured', ...fields, error: outcome.error }, `cannot connect: ${outcome.error}`);
        this.schedule(state, MISCONFIGURED_RETRY_MS);
        return undefined;
      default:
        this.log.warn({ event: 'account.connect_failed', ...fields, error: 'error' in outcome ? outcome.error : undefined }, 'could not connect; will retry');
        await session.disconnect();
        this.backoff(state);
        return undefined;
    }
  }

  private async post(state: AccountState, session: TelegramSession, slot: PostSlot, niche: string): Promise<void> {
    const ds = this.deps.dataSource;
    let variant: MessageVariant;
    try {
      variant = chooseVariant(this.deps.messages, slot.lastMessage, slot.targetId);
      await describeSlot(ds, slot.id, variant.text, variant.photoPath);
    } catch (error) {
      // Nothing was sent: the slot goes back.
      await this.settleSlot(slot, { outcome: 'not_sent', status: 'error', errorMessage: (error as Error).message });
      throw error;
    }
    if (state.lost) {
      await this.settleSlot(slot, { outcome: 'not_sent', status: 'skipped', errorMessage: 'the account was taken over by another process' });
      return;
    }
    let outcome: PostOutcome = await session.post({ link: slot.link }, { text: variant.text, photoPath: variant.photoPath });
    if (outcome.kind === 'media_forbidden' && variant.photoPath) {
      // Text only in this group: once more without the photo.
      this.log.info({ event: 'post.text_only', account: state.account.sessionName, target: slot.link }, 'the group takes no photos; sending the text alone');
      await describeSlot(ds, slot.id, variant.text, null);
      outcome = await session.post({ link: slot.link }, { text: variant.text, photoPath: null });
    }
    await this.settle(state, slot, niche, variant, outcome);
  }

  /** Settles a slot, through a brief outage; a slot another process settled meanwhile is left as it is. */
  private async settleSlot(slot: PostSlot, result: SettleOutcome): Promise<void> {
    try {
      await this.persistently(() => this.db.settlePost(slot.id, result));
    } catch (error) {
      if (!(error instanceof SlotAlreadySettledError)) throw error;
      this.log.warn({ event: 'post.settled_elsewhere', post_id: slot.id, outcome: result.outcome }, 'the post was settled by another process meanwhile');
    }
  }

  /** The group takes no post from us before `ms` from now (slow mode, or a failure that is not its fault). */
  private async holdGroup(slot: PostSlot, ms: number): Promise<void> {
    const now = this.now();
    await this.persistently(() => setTargetSlowMode(this.deps.dataSource, slot.targetId, new Date(now.getTime() + ms), now));
  }

  /**
   * What Telegram's answer to a post means. Its consequence (a FloodWait, a closed group, a slow
   * mode, a banned account) is stored first, so that a failure to record the post itself can
   * never make the daemon act against the answer.
   */
  private async settle(state: AccountState, slot: PostSlot, niche: string, variant: MessageVariant, outcome: PostOutcome): Promise<void> {
    const now = this.now();
    const ds = this.deps.dataSource;
    const fields = { account: state.account.sessionName, target: slot.link, niche, post_id: slot.id, outcome: outcome.kind };
    this.deps.observer?.postOutcome(outcome.kind);
    const notSent = (status: 'error' | 'flood_wait' | 'skipped', error: string) => this.settleSlot(slot, { outcome: 'not_sent', status, errorMessage: error });
    switch (outcome.kind) {
      case 'sent':
        // The post went out: its record must not be lost to a brief database outage.
        await this.settleSlot(slot, { outcome: 'sent' });
        state.failures = 0;
        this.log.info({ event: 'post.sent', ...fields, variant: variant.name }, `posted to ${slot.link}`);
        this.schedule(state);
        return;
      case 'account_flood_wait':
        await this.floodWait(state, outcome.seconds, outcome.error);
        await notSent('flood_wait', outcome.error);
        return;
      case 'group_slow_mode':
        await this.holdGroup(slot, outcome.seconds * SECOND_MS);
        await notSent('skipped', outcome.error);
        this.log.info({ event: 'group.slow_mode', ...fields, wait_s: outcome.seconds }, `slow mode in ${slot.link}: it waits ${outcome.seconds} s`);
        this.schedule(state);
        return;
      case 'group_refuses':
        await this.persistently(() => closeTarget(ds, slot.targetId, 'banned', `${outcome.reason}: ${outcome.error}`, now));
        await notSent('error', outcome.error);
        this.log.warn({ event: 'group.banned', ...fields, reason: outcome.reason, error: outcome.error }, `${slot.link} refuses us (${outcome.reason}); never tried again`);
        this.schedule(state);
        return;
      case 'link_dead':
        await this.persistently(() => closeTarget(ds, slot.targetId, 'error', outcome.error, now));
        await notSent('error', outcome.error);
        this.log.warn({ event: 'group.dead_link', ...fields, error: outcome.error }, `${slot.link} leads nowhere; never tried again`);
        this.schedule(state);
        return;
      case 'session_dead':
        await this.sessionDead(state, outcome.error);
        await notSent('error', outcome.error);
        return;
      case 'account_limited':
        await this.limited(state, outcome.error);
        await notSent('error', outcome.error);
        return;
      case 'transient':
        if (outcome.uncertain) {
          await this.settleSlot(slot, { outcome: 'unknown', errorMessage: outcome.error });
          this.log.warn({ event: 'post.unknown', ...fields, error: outcome.error }, 'the post may or may not have gone out; it counts as made and is not sent again');
        } else {
          // Not this group's fault, maybe; it waits a while so the account goes on with others.
          await this.holdGroup(slot, GROUP_RETRY_MS);
          await notSent('error', outcome.error);
          this.log.warn({ event: 'post.failed', ...fields, error: outcome.error }, 'could not post; will retry later');
        }
        this.backoff(state);
        return;
      default:
        // media_forbidden after the text-only retry, message_invalid, misconfigured, too_many_channels.
        await this.holdGroup(slot, GROUP_REFUSED_MS);
        await notSent('error', outcome.error);
        this.log.error({ event: 'post.refused', ...fields, error: outcome.error, variant: variant.name }, `could not post: ${outcome.error}`);
        this.backoff(state);
    }
  }

  private async join(state: AccountState, session: TelegramSession): Promise<void> {
    const { account } = state;
    const ds = this.deps.dataSource;
    const now = this.now();
    const budget = await joinBudgetUsed(ds, account.id, now);
    if (budget.tooManyChannelsRecently || budget.joinsToday >= this.deps.settings.joinsPerAccountPerDay) {
      await this.rest(state);
      return;
    }
    const pid = this.deps.locks.holderPid;
    if (pid === undefined) return;
    const claim = await claimJoinTarget(ds, account.id, this.deps.settings.niches, now, pid);
    if (!claim) {
      await this.rest(state);
      return;
    }
    const outcome: JoinOutcome = await session.join({ link: claim.link });
    const done = this.now();
    const fields = { account: account.sessionName, target: claim.link, outcome: outcome.kind };
    this.deps.observer?.joinOutcome(outcome.kind);
    try {
      await this.handleJoin(state, claim, outcome, done, fields);
    } finally {
      await recordJoinAttempt(ds, account.id, claim.targetId, outcome.kind, 'error' in outcome ? outcome.error : null, done).catch((error: unknown) =>
        this.log.warn({ event: 'db.error', ...fields, error: (error as Error).message }, 'could not record the join attempt'),
      );
    }
  }

  private async handleJoin(
    state: AccountState,
    claim: { targetId: number; link: string },
    outcome: JoinOutcome,
    done: Date,
    fields: { account: string; target: string; outcome: string },
  ): Promise<void> {
    const { account } = state;
    const ds = this.deps.dataSource;
    switch (outcome.kind) {
      case 'joined':
      case 'already_member':
        if (await this.db.assignGroup(claim.link, account.id, done)) {
          await setTargetIdentity(ds, claim.targetId, outcome.telegramId, outcome.title, done);
          state.failures = 0;
          this.log.info({ event: 'group.joined', ...fields }, `joined ${claim.link}; silent for 24 h`);
        } else {
          this.log.warn({ event: 'group.bind_refused', ...fields }, `joined ${claim.link}, but the database refuses to bind it to this account`);
        }
        this.schedule(state);
        return;
      case 'join_request_pending':
        await markJoinRequested(ds, claim.targetId, account.id, new Date(done.getTime() + JOIN_REQUEST_RETRY_MS), done);
        this.log.info({ event: 'group.join_requested', ...fields }, `asked to join ${claim.link}; an admin must approve`);
        this.schedule(state);
        return;
      case 'link_dead':
        await closeTarget(ds, claim.targetId, 'error', outcome.error, done);
        this.log.warn({ event: 'group.dead_link', ...fields, error: outcome.error }, `${claim.link} leads nowhere; never tried again`);
        this.schedule(state);
        return;
      case 'group_refuses':
        await closeTarget(ds, claim.targetId, 'banned', `${outcome.reason}: ${outcome.error}`, done);
        this.log.warn({ event: 'group.banned', ...fields, reason: outcome.reason, error: outcome.error }, `${claim.link} refuses us (${outcome.reason}); no account tries it again`);
        this.schedule(state);
        return;
      case 'too_many_channels':
        await releaseJoinClaim(ds, claim.targetId, account.id, done);
        this.log.warn({ event: 'account.too_many_channels', ...fields }, 'the account is in too many chats; it stops joining, another account may take the group');
        this.schedule(state);
        return;
      case 'account_flood_wait':
        await releaseJoinClaim(ds, claim.targetId, account.id, done);
        await this.floodWait(state, outcome.seconds, outcome.error);
        return;
      case 'account_limited':
        await releaseJoinClaim(ds, claim.targetId, account.id, done);
        await this.limited(state, outcome.error);
        return;
      case 'session_dead':
        await releaseJoinClaim(ds, claim.targetId, account.id, done);
        await this.sessionDead(state, outcome.error);
        return;
      default:
        // transient (the join may have happened: the same account asks again), misconfigured, ...
        await postponeJoin(ds, claim.targetId, new Date(done.getTime() + 10 * MINUTE_MS), done);
        this.log.warn({ event: 'group.join_failed', ...fields, error: 'error' in outcome ? outcome.error : undefined }, `could not join ${claim.link}; will retry`);
        this.backoff(state);
    }
  }

  /**
   * Runs a database write again while the database is briefly unreachable (up to about a
   * minute). If it never succeeds the slot stays 'pending', and whoever drives the account next
   * marks it 'unknown': counted, never re-sent.
   */
  private async persistently<T>(write: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await write();
      } catch (error) {
        if (attempt >= 6 || this.stopping || !isConnectionError(error)) throw error;
        this.log.warn({ event: 'db.retry', attempt, error: (error as Error).message }, 'database write failed; trying again');
        await new Promise((resolve) => setTimeout(resolve, 1000 * 2 ** (attempt - 1)));
      }
    }
  }

  private async floodWait(state: AccountState, seconds: number, error: string): Promise<void> {
    const now = this.now();
    // Kept in memory first: whatever happens to the database write, this process waits.
    state.nextActionAt = Math.max(state.nextActionAt, now.getTime() + seconds * SECOND_MS);
    const until = await this.persistently(() => this.db.setAccountFloodWait(state.account.id, new Date(now.getTime() + seconds * SECOND_MS)));
    this.deps.observer?.floodWait();
    this.log.warn({ event: 'account.flood_wait', account: state.account.sessionName, wait_s: seconds, until: until.toISOString(), error }, `FloodWait: ${seconds} s`);
    state.nextActionAt = Math.max(until.getTime(), now.getTime());
  }

  private async limited(state: AccountState, error: string): Promise<void> {
    const now = this.now();
    const pause = this.deps.settings.peerFloodPauseMs;
    state.nextActionAt = now.getTime() + pause;
    await this.persistently(() => this.db.setAccountFloodWait(state.account.id, new Date(now.getTime() + pause)));
    await setAccountStatusReason(this.deps.dataSource, state.account.id, `limited by Telegram (${error})`, now);
    this.log.warn(
      { event: 'account.limited', account: state.account.sessionName, wait_s: pause / SECOND_MS, error },
      `Telegram limits this account (${error}); paused for ${pause / HOUR_MS} h`,
    );
    state.nextActionAt = now.getTime() + pause;
  }

  private async sessionDead(state: AccountState, error: string): Promise<void> {
    state.nextActionAt = Infinity;
    await this.persistently(() => banAccount(this.deps.dataSource, state.account.id, `session dead: ${error}`, this.now()));
    this.log.error(
      { event: 'account.session_dead', account: state.account.sessionName, error },
      `the session is dead (${error}): account stopped; log it in again with lexus login ${state.account.sessionName}`,
    );
    await this.dropAccount(state, 'session dead');
  }

  /**
   * Stops: no new action, the ones in flight finish (at most `graceMs`), sessions disconnect and
   * the accounts are given up. Returns false when an action was still running at the deadline.
   */
  async stop(graceMs: number): Promise<boolean> {
    this.stopping = true;
    await this.round?.catch(() => undefined);
    let timer: NodeJS.Timeout | undefined;
    const finished = await Promise.race([
      this.idle().then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), graceMs);
      }),
    ]);
    clearTimeout(timer);
    for (const state of this.accounts.values()) await state.session?.disconnect();
    this.accounts.clear();
    await this.deps.locks.close();
    return finished;
  }
}

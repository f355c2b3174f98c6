/**
 * The posting daemon: per account, join -> 24 h warm-up -> post, one action at a time, paced by
 * a random pause, accounts in parallel under a cap. Every rule is kept by the database (the
 * reservation checks them all in one statement); this loop only decides what to try next and
 * records what Telegram answered.
 *
 * Time comes from the injected clock only, and `tick()` is one scheduling round, so tests and
 * the simulator drive the same code on virtual time. `runDaemon` (run.ts) calls it every second.
 */
import type { DataSource } from 'typeorm';
import type { Clock } from '../clock';
import type { DaemonSettings } from '../config';
import { AccountLocks } from '../db/accountLocks';
import {
  accountMayAct,
  banAccount,
  claimJoinTarget,
  closeTarget,
  describeSlot,
  joinBudgetUsed,
  lastMessageSentTo,
  loadDrivableAccounts,
  markAbandonedSlotsUnknown,
  markJoinRequested,
  postponeJoin,
  recordJoinAttempt,
  releaseJoinClaim,
  setAccountStatusReason,
  setTargetIdentity,
  setTargetSlowMode,
  type DrivableAccount,
} from '../db/daemonQueries';
import { DbManager, type PostSlot } from '../db/DbManager';
import type { Logger } from '../logger';
import type { TelegramGateway, TelegramSession } from '../telegram/gateway';
import type { JoinOutcome, PostOutcome } from '../telegram/outcomes';
import { chooseVariant, type MessageVariant } from './messages';
import { inQuietHours } from './quietHours';

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
/** Backoff after a transient failure: 30 s, doubling, at most 30 min. */
const BACKOFF_BASE_MS = 30 * SECOND;
const BACKOFF_MAX_MS = 30 * MINUTE;
/** A join request is asked again (by the same account) after this long. */
const JOIN_REQUEST_RETRY_MS = 12 * HOUR;
/** Our side cannot act for this account (credentials, proxy): look again after this long. */
const MISCONFIGURED_RETRY_MS = HOUR;

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
}

interface AccountState {
  account: DrivableAccount;
  session: TelegramSession | undefined;
  nextActionAt: number;
  busy: boolean;
  failures: number;
}

export class Daemon {
  readonly db: DbManager;
  private readonly accounts = new Map<number, AccountState>();
  private readonly inflight = new Set<Promise<void>>();
  private readonly random: () => number;
  private stopping = false;
  private databaseDown = false;
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

  private pause(): number {
    const { min, max } = this.deps.settings.actionDelayMs;
    return min + Math.floor(this.random() * (max - min + 1));
  }

  private schedule(state: AccountState, delayMs = this.pause()): void {
    state.nextActionAt = this.now().getTime() + delayMs;
  }

  private backoff(state: AccountState): void {
    state.failures++;
    const delay = Math.min(BACKOFF_BASE_MS * 2 ** (state.failures - 1), BACKOFF_MAX_MS);
    this.schedule(state, delay + Math.floor(this.random() * delay * 0.2));
  }

  /**
   * One scheduling round: take over accounts no process drives, drop the ones gone, and start
   * an action for each account whose pause is over. Does not wait for the actions (idle() does).
   */
  async tick(): Promise<void> {
    if (this.stopping) return;
    const now = this.now();
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
      return;
    }
    const byId = new Map(drivable.map((a) => [a.id, a]));
    for (const [id, state] of this.accounts) {
      if (byId.has(id) && held.includes(id)) continue;
      if (state.busy) continue;
      await this.dropAccount(state, 'no longer driven by this process');
    }
    for (const id of held) {
      const account = byId.get(id);
      if (!account) continue;
      const state = this.accounts.get(id);
      if (state) {
        if (state.account.sessionString !== account.sessionString && !state.busy) {
          // A new login: the old session is gone.
          await state.session?.disconnect();
          state.session = undefined;
        }
        state.account = account;
        continue;
      }
      await this.takeOver(account, now);
    }
    this.lastTickAt = now;
    if (this.deps.settings.quietHours && inQuietHours(now, this.deps.settings.quietHours, this.deps.settings.timeZone)) return;
    const due = [...this.accounts.values()]
      .filter((s) => !s.busy && s.nextActionAt <= now.getTime())
      .sort((x, y) => x.account.boundGroups - y.account.boundGroups || x.nextActionAt - y.nextActionAt);
    for (const state of due) {
      if (this.inflight.size >= this.deps.settings.maxParallelAccounts || this.stopping) break;
      this.start(state);
    }
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
    const state: AccountState = { account, session: undefined, nextActionAt: 0, busy: false, failures: 0 };
    this.schedule(state, Math.floor(this.random() * this.deps.settings.actionDelayMs.min));
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
      .finally(() => {
        state.busy = false;
        this.inflight.delete(action);
      });
    this.inflight.add(action);
  }

  /** When the next account is due (ms since the epoch); undefined when none is driven. */
  nextWakeAt(): number | undefined {
    const times = [...this.accounts.values()].map((s) => s.nextActionAt);
    return times.length ? Math.min(...times) : undefined;
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
    if (!(await accountMayAct(this.deps.dataSource, account.id, now))) {
      this.schedule(state);
      return;
    }
    // A FloodWait whose time has passed: the account is back to 'active'.
    if (await this.db.clearAccountFloodWait(account.id)) {
      this.log.info({ event: 'account.flood_wait_over', account: account.sessionName }, 'FloodWait over; acting again');
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
    const fields = { account: account.sessionName, outcome: outcome.kind };
    switch (outcome.kind) {
      case 'connected':
        state.session = session;
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
    const variant = chooseVariant(this.deps.messages, await lastMessageSentTo(ds, slot.targetId), slot.targetId);
    await describeSlot(ds, slot.id, variant.text, variant.photoPath);
    let outcome: PostOutcome = await session.post({ link: slot.link }, { text: variant.text, photoPath: variant.photoPath });
    if (outcome.kind === 'media_forbidden' && variant.photoPath) {
      // Text only in this group: once more without the photo.
      this.log.info({ event: 'post.text_only', account: state.account.sessionName, target: slot.link }, 'the group takes no photos; sending the text alone');
      await describeSlot(ds, slot.id, variant.text, null);
      outcome = await session.post({ link: slot.link }, { text: variant.text, photoPath: null });
    }
    await this.settle(state, slot, niche, variant, outcome);
  }

  private async settle(state: AccountState, slot: PostSlot, niche: string, variant: MessageVariant, outcome: PostOutcome): Promise<void> {
    const now = this.now();
    const fields = { account: state.account.sessionName, target: slot.link, niche, post_id: slot.id, outcome: outcome.kind };
    const notSent = (status: 'error' | 'flood_wait' | 'skipped', error: string) => this.db.settlePost(slot.id, { outcome: 'not_sent', status, errorMessage: error });
    switch (outcome.kind) {
      case 'sent':
        // The post went out: its record must not be lost to a brief database outage.
        await this.persistently(() => this.db.settlePost(slot.id, { outcome: 'sent' }));
        state.failures = 0;
        this.log.info({ event: 'post.sent', ...fields, variant: variant.name }, `posted to ${slot.link}`);
        this.schedule(state);
        return;
      case 'account_flood_wait':
        await notSent('flood_wait', outcome.error);
        await this.floodWait(state, outcome.seconds, outcome.error);
        return;
      case 'group_slow_mode':
        await notSent('skipped', outcome.error);
        await setTargetSlowMode(this.deps.dataSource, slot.targetId, new Date(now.getTime() + outcome.seconds * SECOND), now);
        this.log.info({ event: 'group.slow_mode', ...fields, wait_s: outcome.seconds }, `slow mode in ${slot.link}: it waits ${outcome.seconds} s`);
        this.schedule(state);
        return;
      case 'group_refuses':
        await notSent('error', outcome.error);
        await closeTarget(this.deps.dataSource, slot.targetId, 'banned', `${outcome.reason}: ${outcome.error}`, now);
        this.log.warn({ event: 'group.banned', ...fields, reason: outcome.reason, error: outcome.error }, `${slot.link} refuses us (${outcome.reason}); never tried again`);
        this.schedule(state);
        return;
      case 'link_dead':
        await notSent('error', outcome.error);
        await closeTarget(this.deps.dataSource, slot.targetId, 'error', outcome.error, now);
        this.log.warn({ event: 'group.dead_link', ...fields, error: outcome.error }, `${slot.link} leads nowhere; never tried again`);
        this.schedule(state);
        return;
      case 'session_dead':
        await notSent('error', outcome.error);
        await this.sessionDead(state, outcome.error);
        return;
      case 'account_limited':
        await notSent('error', outcome.error);
        await this.limited(state, outcome.error);
        return;
      case 'transient':
        if (outcome.uncertain) {
          await this.db.settlePost(slot.id, { outcome: 'unknown', errorMessage: outcome.error });
          this.log.warn({ event: 'post.unknown', ...fields, error: outcome.error }, 'the post may or may not have gone out; it counts as made and is not sent again');
        } else {
          await notSent('error', outcome.error);
          this.log.warn({ event: 'post.failed', ...fields, error: outcome.error }, 'could not post; will retry later');
        }
        this.backoff(state);
        return;
      default:
        // media_forbidden after the text-only retry, message_invalid, misconfigured, too_many_channels.
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
      this.schedule(state);
      return;
    }
    const claim = await claimJoinTarget(ds, account.id, this.deps.settings.niches, now);
    if (!claim) {
      this.schedule(state);
      return;
    }
    const outcome: JoinOutcome = await session.join({ link: claim.link });
    const done = this.now();
    await recordJoinAttempt(ds, account.id, claim.targetId, outcome.kind, 'error' in outcome ? outcome.error : null, done);
    const fields = { account: account.sessionName, target: claim.link, outcome: outcome.kind };
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
        await postponeJoin(ds, claim.targetId, new Date(done.getTime() + 10 * MINUTE), done);
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
        if (attempt >= 6 || this.stopping) throw error;
        this.log.warn({ event: 'db.retry', attempt, error: (error as Error).message }, 'database write failed; trying again');
        await new Promise((resolve) => setTimeout(resolve, 1000 * 2 ** (attempt - 1)));
      }
    }
  }

  private async floodWait(state: AccountState, seconds: number, error: string): Promise<void> {
    const now = this.now();
    const until = await this.db.setAccountFloodWait(state.account.id, new Date(now.getTime() + seconds * SECOND));
    this.log.warn({ event: 'account.flood_wait', account: state.account.sessionName, wait_s: seconds, until: until.toISOString(), error }, `FloodWait: ${seconds} s`);
    state.nextActionAt = Math.max(until.getTime(), now.getTime());
  }

  private async limited(state: AccountState, error: string): Promise<void> {
    const now = this.now();
    const pause = this.deps.settings.peerFloodPauseMs;
    await this.db.setAccountFloodWait(state.account.id, new Date(now.getTime() + pause));
    await setAccountStatusReason(this.deps.dataSource, state.account.id, `limited by Telegram (${error})`, now);
    this.log.warn(
      { event: 'account.limited', account: state.account.sessionName, wait_s: pause / SECOND, error },
      `Telegram limits this account (${error}); paused for ${pause / HOUR} h`,
    );
    state.nextActionAt = now.getTime() + pause;
  }

  private async sessionDead(state: AccountState, error: string): Promise<void> {
    await banAccount(this.deps.dataSource, state.account.id, `session dead: ${error}`, this.now());
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

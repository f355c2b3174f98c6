/**
 * The seed's data-layer API (SPEC.md, "Data-layer API"), made race-free.
 *
 * A thin layer over the query folder (src/sql/): each method is one operation there, whose SQL
 * reads in full; the rules themselves (what "ready", "may post", "under the limit" mean) are the
 * predicates of src/sql/rules.ts. "Now" comes from the injected Clock and reaches the SQL as the
 * parameter :now, never as now().
 *
 * Posting goes through two steps, so that limits hold before anything is sent:
 *   reservePostSlot  one statement: checks every rule on locked rows and counts the post
 *                    against both daily limits, with a 'pending' history row;
 *   settlePost       sent -> 'success' and last_post_at; not sent -> the slot is given back;
 *                    unknown -> the slot stays spent.
 */
import type { DataSource, QueryRunner } from 'typeorm';
import { type Clock, systemClock, utcDayStart } from '../clock';
import { normalizeGroupLink } from '../links';
import { clearPassedFloodWait, holdAccount } from '../sql/accounts';
import { bindGroup } from '../sql/groups';
import {
  type CounterResetResult,
  loadReadyGroups,
  type PostSlot,
  type RecordPostInput,
  type ReserveSlotInput,
  readyGroupsStatement,
  recordPost,
  reservePostSlot,
  reserveStatement,
  resetDailyCounters,
  type SettleOutcome,
  settlePostSlot,
} from '../sql/posting';
import { DEFAULT_NICHE, NO_PACE, type Pace } from '../sql/rules';
import type { Target } from './entities';

export interface DbManagerOptions {
  clock?: Clock;
  /** The daemon's pace (a new account's ramp-up, the spacing of posts); default none. */
  pace?: Pace;
}

export interface AssignGroupOptions {
  /** Niche of the target if it has to be created; default 'ukraine_cars'. */
  niche?: string;
}

export type { CounterResetResult, PostSlot, RecordPostInput, ReserveSlotInput, SettleOutcome } from '../sql/posting';
export { NotFoundError, SlotAlreadySettledError } from './errors';

export class DbManager {
  readonly clock: Clock;
  readonly pace: Pace;
  /** Where statements run: the pool, or the QueryRunner of the transaction this manager is in. */
  private readonly runner: DataSource | QueryRunner;

  /** The UTC day (ms) getGroupsReadyForPosting last reset stale counters for. */
  private countersResetFor: number | undefined;

  constructor(
    readonly dataSource: DataSource,
    options: DbManagerOptions = {},
    runner?: QueryRunner,
  ) {
    this.clock = options.clock ?? systemClock;
    this.pace = options.pace ?? NO_PACE;
    this.runner = runner ?? dataSource;
  }

  /**
   * Runs `work` in one transaction, with a DbManager whose every method takes part in it.
   * Nested calls join the outer transaction. Never talk to Telegram inside it: a reservation
   * is only counted once committed, and rows stay locked until then.
   */
  async inTransaction<T>(work: (db: DbManager) => Promise<T>): Promise<T> {
    return this.transaction((runner) =>
      work(new DbManager(this.dataSource, { clock: this.clock, pace: this.pace }, runner)),
    );
  }

  private async transaction<T>(work: (runner: QueryRunner) => Promise<T>): Promise<T> {
    if (this.runner !== this.dataSource) return work(this.runner as QueryRunner);
    return this.dataSource.transaction((manager) => work(manager.queryRunner as QueryRunner));
  }

  /**
   * Binds a group to the account that has just joined it (rule 1) and starts its warm-up
   * (rule 2); creates the target if missing. False when another account holds the group, or it
   * is closed; true when it is now bound to this account. (src/sql/groups.ts bindGroup.)
   */
  async assignGroup(
    groupLink: string,
    accountId: number,
    joinedAt?: Date,
    options: AssignGroupOptions = {},
  ): Promise<boolean> {
    const now = this.clock.now();
    return bindGroup(this.runner, {
      link: normalizeGroupLink(groupLink),
      niche: options.niche ?? DEFAULT_NICHE,
      accountId,
      joinedAt: joinedAt ?? now,
      now,
    });
  }

  /**
   * Groups that pass every rule now (SPEC.md): niche matches; status 'joined'; bound; warm-up
   * over; under 2 posts today; the bound account active, under 20 posts today and not in a
   * FloodWait. Never-posted groups first, then the oldest last_post_at. Each target comes with
   * its `assignedAccount`. Stale counters are reset first, and count as 0 regardless.
   */
  async getGroupsReadyForPosting(niche: string = DEFAULT_NICHE, limit?: number): Promise<Target[]> {
    // Once per UTC day is enough: a stale counter reads as 0 meanwhile (rules.ts).
    const day = utcDayStart(this.clock.now()).getTime();
    if (this.countersResetFor !== day) {
      await this.resetDailyCountersIfNeeded();
      this.countersResetFor = day;
    }
    return loadReadyGroups(this.dataSource, this.runner, {
      niche,
      now: this.clock.now(),
      pace: this.pace,
      ...(limit === undefined ? {} : { limit }),
    });
  }

  /** getGroupsReadyForPosting's statement (the benchmark explains it). */
  readyStatement(niche: string = DEFAULT_NICHE, limit?: number): [string, Record<string, unknown>] {
    return readyGroupsStatement(this.dataSource, {
      niche,
      now: this.clock.now(),
      pace: this.pace,
      ...(limit === undefined ? {} : { limit }),
    });
  }

  /**
   * Reserves one post for (account, group) if every rule holds at this instant, in one
   * statement, counted against both daily limits with a 'pending' history row; null when no
   * slot is free. (src/sql/posting.ts reservePostSlot.)
   */
  async reservePostSlot(input: ReserveSlotInput): Promise<PostSlot | null> {
    return reservePostSlot(this.runner, { ...input, now: this.clock.now(), pace: this.pace });
  }

  /** reservePostSlot's statement and its parameters (the benchmark explains it). */
  reserveStatement(input: ReserveSlotInput): [string, Record<string, unknown>] {
    return reserveStatement({ ...input, now: this.clock.now(), pace: this.pace });
  }

  /**
   * Settles a reserved slot. 'sent': history 'success', the group's last_post_at. 'not_sent':
   * history gets the given status and the slot is given back to both counters (unless a new
   * UTC day has reset them since). 'unknown': history 'unknown', the slot stays spent and
   * last_post_at is set, as the post may have gone out. Throws if the slot is not pending.
   */
  async settlePost(slotId: number, result: SettleOutcome): Promise<void> {
    await settlePostSlot(this.runner, slotId, result, this.clock.now());
  }

  /**
   * The seed's record_post, for callers that post outside the reserve/settle flow: a history
   * row and, for 'success', both daily counters and last_post_at, in one transaction. Returns
   * the history row's id. (src/sql/posting.ts recordPost.)
   */
  async recordPost(input: RecordPostInput): Promise<number> {
    const now = this.clock.now();
    return this.transaction((runner) => recordPost(runner, input, now));
  }

  /**
   * Rule 4: Telegram told the account to wait until `waitUntil`. Status 'flood_wait' (a banned
   * account stays banned); a longer wait already set is never shortened. Returns the wait now
   * in force.
   */
  async setAccountFloodWait(accountId: number, waitUntil: Date): Promise<Date> {
    return holdAccount(this.runner, { accountId, until: waitUntil, now: this.clock.now() });
  }

  /**
   * Ends a FloodWait whose time has passed: status back to 'active'. A wait still running is
   * not cut short (returns false); so is an account with nothing to clear. Returns true when
   * it cleared a wait.
   */
  async clearAccountFloodWait(accountId: number): Promise<boolean> {
    return clearPassedFloodWait(this.runner, accountId, this.clock.now());
  }

  /**
   * Rule 3's midnight: counters last reset before today's UTC midnight go back to 0, skipping
   * rows a reservation holds (a stale counter reads as 0 anyway). (src/sql/posting.ts.)
   */
  async resetDailyCountersIfNeeded(): Promise<CounterResetResult> {
    return resetDailyCounters(this.runner, this.clock.now());
  }
}

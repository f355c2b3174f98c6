/**
 * The seed's data-layer API (SPEC.md, "Data-layer API"), made race-free.
 *
 * Each method is one database operation whose SQL reads in full below; the rules themselves
 * (what "ready", "may post", "under the limit" mean) are the predicates of rules.ts. "Now" comes
 * from the injected Clock and reaches the SQL as the parameter :now, never as now().
 *
 * Posting goes through two steps, so that limits hold before anything is sent:
 *   reservePostSlot  one statement: checks every rule on locked rows and counts the post
 *                    against both daily limits, with a 'pending' history row;
 *   settlePost       sent -> 'success' and last_post_at; not sent -> the slot is given back;
 *                    unknown -> the slot stays spent.
 */
import type { DataSource, QueryRunner } from 'typeorm';
import { systemClock, utcDayStart, type Clock } from '../clock';
import { normalizeGroupLink } from '../links';
import {
  COUNTED_POST_STATUSES_SQL,
  DEFAULT_NICHE,
  NO_PACE,
  paceParams,
  type Pace,
  READY_ORDER_SQL,
  TODAY_UTC_SQL,
  WARMUP_HOURS,
  ACCOUNT_COUNT_ONE_POST_SQL,
  GROUP_COUNT_ONE_POST_SQL,
  accountMayPostSql,
  targetGapKeptSql,
  targetHeldSql,
  targetMayReceivePostFromSql,
} from '../sql/rules';
import { Account, Target, type PostStatus } from './entities';
import { NotFoundError } from './errors';
import { hydrate, selectColumns } from './hydrate';
import { accountLockHeldSql } from './accountLocks';
import { sqlTime } from './postgresTypes';
import { holdAccount, CLEAR_PASSED_FLOOD_WAIT_SQL } from '../sql/accounts';
import { settlePostSlot, type SettleOutcome } from '../sql/posting';
import { sql } from './sql';

export interface DbManagerOptions {
  clock?: Clock;
  /** The daemon's pace (a new account's ramp-up, the spacing of posts); default none. */
  pace?: Pace;
}

export interface AssignGroupOptions {
  /** Niche of the target if it has to be created; default 'ukraine_cars'. */
  niche?: string;
}

export interface ReserveSlotInput {
  accountId: number;
  /** The group to post to; without it, the account's ready group that waited longest. */
  targetId?: number;
  /** Only a group of this niche; default 'ukraine_cars'. */
  niche?: string;
  /** Only a group whose last post is at least this old (the daemon's spacing); default 0. */
  minGapMs?: number;
  /**
   * The backend pid of the connection holding this account's advisory lock (accountLocks.ts):
   * the reservation is refused unless that connection still holds it, so a process that lost
   * the account to another one cannot post from it any more.
   */
  lockHolderPid?: number;
  messageContent?: string | null;
  photoPath?: string | null;
  /**
   * The daemon sends right after: the account's call mark (accounts.call_started_at) is set in
   * the same statement, and cleared when the answer is recorded.
   */
  startsCall?: boolean;
}

/** A post slot counted against both daily limits, to be settled once the send is over. */
export interface PostSlot {
  /** The post_history row that stands for this attempt (status 'pending'). */
  id: number;
  accountId: number;
  targetId: number;
  link: string;
  /** The group's stored peer (the chat's id and the account's access hash), when known. */
  telegramId: string | null;
  accessHash: string | null;
  reservedAt: Date;
  /** The text last sent (or maybe sent) to this group before, so that the next one differs. */
  lastMessage: string | null;
}

export type { SettleOutcome } from '../sql/posting';
export { NotFoundError, SlotAlreadySettledError } from './errors';

export interface RecordPostInput {
  accountId: number;
  targetId: number;
  messageContent?: string | null;
  photoPath?: string | null;
  status?: Exclude<PostStatus, 'pending'>;
  errorMessage?: string | null;
}

export interface CounterResetResult {
  accounts: number;
  targets: number;
}


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
    return this.transaction((runner) => work(new DbManager(this.dataSource, { clock: this.clock, pace: this.pace }, runner)));
  }

  private async transaction<T>(work: (runner: QueryRunner) => Promise<T>): Promise<T> {
    if (this.runner !== this.dataSource) return work(this.runner as QueryRunner);
    return this.dataSource.transaction((manager) => work(manager.queryRunner as QueryRunner));
  }

  private now(): string {
    return sqlTime(this.clock.now());
  }

  /**
   * Binds a group to the account that has just joined it (rule 1) and starts its warm-up
   * (rule 2): status 'joined', warmup_ends_at = joined_at + 24 h. Creates the target if missing.
   *
   * Returns false when the group is bound to another account, banned, or was ever joined or
   * posted to by another account (its account was deleted, or the old system's history says
   * so); true when it is now bound to this account. Binding it again to the same account
   * changes nothing: the warm-up never restarts. One statement, so of two concurrent calls for
   * one new group from different accounts exactly one wins.
   */
  async assignGroup(groupLink: string, accountId: number, joinedAt?: Date, options: AssignGroupOptions = {}): Promise<boolean> {
    const link = normalizeGroupLink(groupLink);
    const now = this.now();
    const { rows } = await sql<{ id: number }>(
      this.runner,
      `INSERT INTO targets AS t
              (link, niche, status, assigned_account_id, joined_at, warmup_ends_at, created_at, updated_at)
       VALUES (:link, :niche, 'joined', :accountId, CAST(:joinedAt AS timestamp),
               CAST(:joinedAt AS timestamp) + interval '${WARMUP_HOURS} hours', CAST(:now AS timestamp), CAST(:now AS timestamp))
       ON CONFLICT (link) DO UPDATE SET
         status = 'joined',
         status_reason = NULL,
         join_claimed_by = NULL,
         join_retry_at = NULL,
         join_uncertain = false,
         assigned_account_id = EXCLUDED.assigned_account_id,
         -- Newly bound: the warm-up starts now. Already bound to this account: it never restarts.
         joined_at = CASE WHEN t.assigned_account_id IS NULL THEN EXCLUDED.joined_at
                          ELSE COALESCE(t.joined_at, EXCLUDED.joined_at) END,
         warmup_ends_at = CASE WHEN t.assigned_account_id IS NULL THEN EXCLUDED.warmup_ends_at
                               ELSE COALESCE(t.warmup_ends_at, t.joined_at + interval '${WARMUP_HOURS} hours', EXCLUDED.warmup_ends_at) END,
         updated_at = EXCLUDED.updated_at
       WHERE t.status IS DISTINCT FROM 'banned' AND t.status IS DISTINCT FROM 'duplicate'
         AND (t.assigned_account_id = EXCLUDED.assigned_account_id
              -- Unbound: only a group no other account of ours holds (no join, no post, no claim) is free.
              OR NOT ${targetHeldSql('t', 'EXCLUDED.assigned_account_id')})
       RETURNING t.id`,
      { link, niche: options.niche ?? DEFAULT_NICHE, accountId, joinedAt: joinedAt ? sqlTime(joinedAt) : now, now },
    );
    return rows.length === 1;
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
    const [text, params] = this.readyStatement(niche, limit);
    const { rows } = await sql<Record<string, unknown>>(this.runner, text, params);
    return rows.map((row) => {
      const target = hydrate(this.dataSource, Target, row, 't_');
      target.assignedAccount = hydrate(this.dataSource, Account, row, 'a_');
      return target;
    });
  }

  /**
   * getGroupsReadyForPosting's statement (the benchmark explains it). The niche's bound, joined
   * groups are read in serving order from their index (targets_ready_by_niche_idx), and each one
   * is checked, with its account looked up by primary key, in a LATERAL subquery (OFFSET 0 keeps
   * it there): the planner, which cannot know how many groups the rules keep, then counts on
   * one row per group rather than on a handful for the whole niche, and never prefers to check
   * and sort them all. With a limit, the scan stops at the limit-th ready group, so a million
   * groups cost what the first few dozen do.
   */
  readyStatement(niche: string = DEFAULT_NICHE, limit?: number): [string, Record<string, unknown>] {
    return [
      `SELECT ${selectColumns(this.dataSource, Target, 't', 't_')}, ${selectColumns(this.dataSource, Account, 'a', 'a_')}
         FROM targets t
        CROSS JOIN LATERAL (
              SELECT * FROM accounts a
               WHERE a.id = t.assigned_account_id AND ${targetMayReceivePostFromSql('t', 'a')} AND ${accountMayPostSql('a')}
              OFFSET 0) a
        WHERE t.niche = :niche AND t.status = 'joined' AND t.assigned_account_id IS NOT NULL
        ORDER BY ${READY_ORDER_SQL('t')}
        ${limit === undefined ? '' : 'LIMIT CAST(:limit AS integer)'}`,
      { niche, now: this.now(), ...paceParams(this.pace), ...(limit === undefined ? {} : { limit }) },
    ];
  }

  /**
   * Reserves one post for (account, group) if every rule holds at this instant, in one
   * statement: the account and group rows are locked, the rules re-checked on their latest
   * versions, both daily counters incremented (reset first if stale), and a 'pending' history
   * row written. Returns null when no slot is free. Under any number of concurrent callers at
   * most 2 posts per group and 20 per account per UTC day are ever reserved, and only by the
   * bound account.
   */
  async reservePostSlot(input: ReserveSlotInput): Promise<PostSlot | null> {
    const [text, params] = this.reserveStatement(input);
    const { rows } = await sql<{
      id: number; account_id: number; target_id: number; link: string; telegram_id: string | null; peer_access_hash: string | null;
      created_at: Date; last_message: string | null;
    }>(this.runner, text, params);
    const row = rows[0];
    if (!row) return null;
    return {
      id: row.id, accountId: row.account_id, targetId: row.target_id, link: row.link, telegramId: row.telegram_id, accessHash: row.peer_access_hash,
      reservedAt: row.created_at, lastMessage: row.last_message,
    };
  }

  /** reservePostSlot's statement and its parameters (the benchmark explains it). */
  reserveStatement(input: ReserveSlotInput): [string, Record<string, unknown>] {
    return [
      `WITH slot AS (
           SELECT a.id AS account_id, t.id AS target_id, t.link, t.telegram_id, t.peer_access_hash
             FROM accounts a
             JOIN targets t ON ${targetMayReceivePostFromSql('t', 'a')}
            WHERE a.id = :accountId
              AND t.niche = :niche
              AND ${targetGapKeptSql('t')}
              ${input.targetId === undefined ? '' : 'AND t.id = :targetId'}
              ${input.lockHolderPid === undefined ? '' : `AND ${accountLockHeldSql('a')}`}
              AND ${accountMayPostSql('a')}
            ORDER BY ${READY_ORDER_SQL('t')}
            LIMIT 1
            FOR UPDATE OF a, t
         ), count_for_account AS (
           UPDATE accounts
              SET ${ACCOUNT_COUNT_ONE_POST_SQL}, last_post_at = CAST(:now AS timestamp), updated_at = CAST(:now AS timestamp),
                  call_started_at = CASE WHEN :startsCall THEN CAST(:now AS timestamp) ELSE call_started_at END
             FROM slot
            WHERE accounts.id = slot.account_id
         ), count_for_group AS (
           UPDATE targets
              SET ${GROUP_COUNT_ONE_POST_SQL}, updated_at = CAST(:now AS timestamp)
             FROM slot
            WHERE targets.id = slot.target_id
         )
         INSERT INTO post_history (account_id, target_id, message_content, photo_path, status, created_at)
         SELECT slot.account_id, slot.target_id, :messageContent, :photoPath, 'pending', CAST(:now AS timestamp)
           FROM slot
         RETURNING id, account_id, target_id, created_at,
                   (SELECT link FROM slot) AS link, (SELECT telegram_id FROM slot) AS telegram_id,
                   (SELECT peer_access_hash FROM slot) AS peer_access_hash,
                   (SELECT h.message_content FROM post_history h
                     WHERE h.target_id = post_history.target_id AND h.status IN ${COUNTED_POST_STATUSES_SQL} AND h.message_content IS NOT NULL
                     ORDER BY h.created_at DESC, h.id DESC LIMIT 1) AS last_message`,
      {
        accountId: input.accountId,
        niche: input.niche ?? DEFAULT_NICHE,
        minGapMs: Math.max(0, Math.round(input.minGapMs ?? 0)),
        ...(input.lockHolderPid === undefined ? {} : { lockHolderPid: input.lockHolderPid }),
        ...(input.targetId === undefined ? {} : { targetId: input.targetId }),
        messageContent: input.messageContent ?? null,
        photoPath: input.photoPath ?? null,
        startsCall: input.startsCall ?? false,
        ...paceParams(this.pace),
        now: this.now(),
      },
    ];
  }

  /**
   * Settles a reserved slot. 'sent': history 'success', the group's last_post_at. 'not_sent':
   * history gets the given status and the slot is given back to both counters (unless a new
   * UTC day has reset them since). 'unknown': history 'unknown', the slot stays spent and
   * last_post_at is set, as the post may have gone out. Throws if the slot is not pending.
   * (One statement: settleQueries.ts.)
   */
  async settlePost(slotId: number, result: SettleOutcome): Promise<void> {
    await settlePostSlot(this.runner, slotId, result, this.clock.now());
  }

  /**
   * The seed's record_post, for callers that post outside the reserve/settle flow: a history
   * row and, for 'success', both daily counters (reset first if stale) and last_post_at, in one
   * transaction. Returns the history row's id. A 'success' from an account the group is not
   * bound to is refused by the database (rule 1).
   */
  async recordPost(input: RecordPostInput): Promise<number> {
    const status = input.status ?? 'success';
    const params = {
      accountId: input.accountId,
      targetId: input.targetId,
      messageContent: input.messageContent ?? null,
      photoPath: input.photoPath ?? null,
      status,
      errorMessage: input.errorMessage ?? null,
      now: this.now(),
    };
    return this.transaction(async (runner) => {
      if (status === 'success') {
        await sql(runner, `SELECT 1 FROM accounts a, targets t WHERE a.id = :accountId AND t.id = :targetId FOR UPDATE OF a, t`, params);
      }
      const { rows } = await sql<{ id: number }>(
        runner,
        `INSERT INTO post_history (account_id, target_id, message_content, photo_path, status, error_message, created_at)
         VALUES (:accountId, :targetId, :messageContent, :photoPath, :status, :errorMessage, CAST(:now AS timestamp))
         RETURNING id`,
        params,
      );
      if (status === 'success') {
        await sql(
          runner,
          `UPDATE accounts SET ${ACCOUNT_COUNT_ONE_POST_SQL}, updated_at = CAST(:now AS timestamp) WHERE id = :accountId`,
          params,
        );
        await sql(
          runner,
          `UPDATE targets
              SET ${GROUP_COUNT_ONE_POST_SQL}, last_post_at = CAST(:now AS timestamp), updated_at = CAST(:now AS timestamp)
            WHERE id = :targetId`,
          params,
        );
      }
      return rows[0]!.id;
    });
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
    const { rows } = await sql<{ cleared: boolean }>(
      this.runner,
      `WITH cleared AS (${CLEAR_PASSED_FLOOD_WAIT_SQL})
       SELECT EXISTS (SELECT 1 FROM cleared) AS cleared FROM accounts WHERE id = :accountId`,
      { accountId, now: this.now() },
    );
    const row = rows[0];
    if (!row) throw new NotFoundError(`account ${accountId} does not exist`);
    return row.cleared;
  }

  /**
   * Rule 3's midnight: counters last reset before today's UTC midnight go back to 0. One
   * statement per table, touching only counters that are not already 0; idempotent and safe to
   * run concurrently. Rows locked by a reservation at that moment are skipped rather than
   * waited for (waiting could deadlock with it): every method that reads the counters treats a
   * stale one as 0 anyway, so correctness never depends on this having run, and the
   * reservation resets the counter itself. Statuses are left alone: a banned account stays banned.
   */
  async resetDailyCountersIfNeeded(): Promise<CounterResetResult> {
    const now = this.now();
    const accounts = await sql(
      this.runner,
      `UPDATE accounts
          SET daily_posts_count = 0, last_stats_reset = CAST(:now AS timestamp), updated_at = CAST(:now AS timestamp)
        WHERE id IN (SELECT id FROM accounts
                      WHERE daily_posts_count <> 0
                        AND (last_stats_reset IS NULL OR last_stats_reset < ${TODAY_UTC_SQL})
                      FOR UPDATE SKIP LOCKED)`,
      { now },
    );
    const targets = await sql(
      this.runner,
      `UPDATE targets
          SET daily_posts_in_group = 0, last_group_stats_reset = CAST(:now AS timestamp), updated_at = CAST(:now AS timestamp)
        WHERE id IN (SELECT id FROM targets
                      WHERE daily_posts_in_group <> 0
                        AND (last_group_stats_reset IS NULL OR last_group_stats_reset < ${TODAY_UTC_SQL})
                      FOR UPDATE SKIP LOCKED)`,
      { now },
    );
    return { accounts: accounts.rowCount, targets: targets.rowCount };
  }
}

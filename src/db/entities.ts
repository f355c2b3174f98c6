/**
 * The seed's three tables as TypeORM entities. Column names, types, defaults, the unique
 * constraints and the foreign-key actions are the seed's DDL (SPEC.md) to the letter; property
 * names are camelCase. All timestamps are `timestamp without time zone` holding UTC (see
 * postgresTypes.ts for how that survives any host TZ).
 *
 * The schema itself is created by migrations (src/db/migrations), never by `synchronize`.
 */
import { EntitySchema } from 'typeorm';
import { WARMUP_MS } from '../sql/rules';

export type AccountStatus = 'active' | 'banned' | 'flood_wait';
/**
 * The seed's, plus 'requested' (a join request waits for an admin's approval) and 'duplicate'
 * (the chat another row stands for, reached through a second link: never joined or posted to).
 */
/**
 * What holds a group's posts until next_post_allowed_at: Telegram's slow mode, its posts failing,
 * our message refused by it, or its reopening after an account's restriction.
 */
export type GroupHoldKind = 'slow_mode' | 'failing' | 'refuses_message' | 'restriction';
export type TargetStatus = 'new' | 'joined' | 'error' | 'banned' | 'requested' | 'duplicate';
/**
 * 'success', 'error', 'flood_wait', 'skipped' are the seed's. The daemon adds two for its
 * reserve-then-settle flow: 'pending' (slot reserved, not settled yet) and 'unknown' (the
 * process stopped between sending and settling: the slot stays spent).
 */
export type PostStatus = 'success' | 'error' | 'flood_wait' | 'skipped' | 'pending' | 'unknown';

export class Account {
  id!: number;
  phone!: string | null;
  sessionString!: string | null;
  sessionName!: string;
  status!: AccountStatus | string;
  nextAllowedActionTime!: Date | null;
  dailyPostsCount!: number;
  lastStatsReset!: Date | null;
  createdAt!: Date;
  updatedAt!: Date;
  /** Added by the daemon (not in the seed): the account's own API credentials and proxy. */
  apiId!: number | null;
  apiHash!: string | null;
  proxy!: string | null;
  /** SHA-256 of the session the last import brought in (see the ImportedSessionHash migration). */
  importedSessionSha256!: string | null;
  /** Why the account stopped (dead session, Telegram's limits), for ops. */
  statusReason!: string | null;
  /** A Telegram call whose answer is not recorded yet started then (null: none). */
  callStartedAt!: Date | null;
  /** The lease: which process drives the account, and until when it may have a live session. */
  drivenBy!: string | null;
  drivenUntil!: Date | null;
  /** Telegram last limited the account (PEER_FLOOD, a restriction) from, until. */
  limitedSince!: Date | null;
  limitedUntil!: Date | null;
  /** When a daemon first drove it (its ramp-up counts from there); seasoned: no ramp-up. */
  firstDrivenAt!: Date | null;
  seasoned!: boolean;
  /** When the daemon plans its next post. */
  nextPostPlannedAt!: Date | null;
  /** When it last reserved a post (the pace: the next waits LEXUS_POST_SPACING_MIN). */
  lastPostAt!: Date | null;
  /** Why its own settings cannot be used (its proxy, half its API credentials): not driven until fixed. */
  configProblem!: string | null;
  /** Telegram's last answer to connecting it, and when. */
  lastConnectAt!: Date | null;
  lastConnectOutcome!: string | null;
  targets?: Target[];

  /** Whether Telegram's FloodWait is still running at `now`. */
  isInFloodWait(now: Date): boolean {
    return this.nextAllowedActionTime !== null && this.nextAllowedActionTime.getTime() > now.getTime();
  }
}

export class Target {
  id!: number;
  /** BIGINT: node-postgres returns it as a string to keep every digit. */
  telegramId!: string | null;
  link!: string;
  title!: string | null;
  niche!: string;
  status!: TargetStatus | string;
  assignedAccountId!: number | null;
  assignedAccount?: Account | null;
  joinedAt!: Date | null;
  warmupEndsAt!: Date | null;
  lastPostAt!: Date | null;
  dailyPostsInGroup!: number;
  lastGroupStatsReset!: Date | null;
  createdAt!: Date;
  updatedAt!: Date;
  /** Added by the daemon: why the group stopped, its hold (and of which kind), the account joining it. */
  statusReason!: string | null;
  nextPostAllowedAt!: Date | null;
  postHoldKind!: GroupHoldKind | null;
  joinClaimedBy!: number | null;
  joinClaimer?: Account | null;
  refusedAccount?: Account | null;
  joinRetryAt!: Date | null;
  /** The claiming account's join may have happened (its answer was lost): the claim stays with it. */
  joinUncertain!: boolean;
  /** With telegramId: the stored peer of the bound account. */
  peerAccessHash!: string | null;
  /** When the group closed, and which account it refused (restriction check). */
  closedAt!: Date | null;
  refusedAccountId!: number | null;
  /** When and how often a refusal of this group was reopened as its account's restriction. */
  reopenedAt!: Date | null;
  reopenCount!: number;

  /** The seed's is_warmup_finished(): the 24 h of silence after joining are over at `now`. */
  isWarmupFinished(now: Date): boolean {
    // As rules.targetWarmupOverSql: the later of warmup_ends_at and joined_at + 24 h.
    const ends = Math.max(
      this.warmupEndsAt?.getTime() ?? -Infinity,
      this.joinedAt ? this.joinedAt.getTime() + WARMUP_MS : -Infinity,
    );
    return ends !== -Infinity && ends <= now.getTime();
  }
}

export class PostHistory {
  id!: number;
  accountId!: number | null;
  targetId!: number | null;
  account?: Account | null;
  target?: Target | null;
  messageContent!: string | null;
  photoPath!: string | null;
  status!: PostStatus | string;
  errorMessage!: string | null;
  createdAt!: Date;
}

/**
 * Indexes the migrations create (partial and ordered ones TypeORM cannot describe). Named here
 * only so that TypeORM's schema comparison knows them; `synchronize: false` leaves them to the
 * migrations.
 */
function migrationIndexes(...names: string[]) {
  return names.map((name) => ({ name, columns: [] as string[], synchronize: false }));
}

const createdAt = { name: 'created_at', type: 'timestamp', nullable: true, default: () => 'now()' } as const;
const updatedAt = { name: 'updated_at', type: 'timestamp', nullable: true, default: () => 'now()' } as const;

export const AccountSchema = new EntitySchema<Account>({
  name: 'Account',
  target: Account,
  tableName: 'accounts',
  columns: {
    id: { type: 'int', primary: true, generated: 'increment' },
    phone: { type: 'varchar', length: 20, nullable: true },
    sessionString: { name: 'session_string', type: 'text', nullable: true },
    sessionName: { name: 'session_name', type: 'varchar', length: 255, unique: true },
    status: { type: 'varchar', length: 50, nullable: true, default: 'active' },
    nextAllowedActionTime: { name: 'next_allowed_action_time', type: 'timestamp', nullable: true },
    dailyPostsCount: { name: 'daily_posts_count', type: 'int', nullable: true, default: 0 },
    lastStatsReset: { name: 'last_stats_reset', type: 'timestamp', nullable: true },
    createdAt,
    updatedAt,
    apiId: { name: 'api_id', type: 'int', nullable: true },
    apiHash: { name: 'api_hash', type: 'varchar', length: 64, nullable: true },
    proxy: { type: 'text', nullable: true },
    importedSessionSha256: { name: 'imported_session_sha256', type: 'varchar', length: 64, nullable: true },
    statusReason: { name: 'status_reason', type: 'text', nullable: true },
    callStartedAt: { name: 'call_started_at', type: 'timestamp', nullable: true },
    drivenBy: { name: 'driven_by', type: 'varchar', length: 255, nullable: true },
    drivenUntil: { name: 'driven_until', type: 'timestamp', nullable: true },
    limitedSince: { name: 'limited_since', type: 'timestamp', nullable: true },
    limitedUntil: { name: 'limited_until', type: 'timestamp', nullable: true },
    firstDrivenAt: { name: 'first_driven_at', type: 'timestamp', nullable: true },
    seasoned: { type: 'boolean', default: false },
    nextPostPlannedAt: { name: 'next_post_planned_at', type: 'timestamp', nullable: true },
    lastPostAt: { name: 'last_post_at', type: 'timestamp', nullable: true },
    configProblem: { name: 'config_problem', type: 'text', nullable: true },
    lastConnectAt: { name: 'last_connect_at', type: 'timestamp', nullable: true },
    lastConnectOutcome: { name: 'last_connect_outcome', type: 'varchar', length: 50, nullable: true },
  },
  relations: {
    targets: { type: 'one-to-many', target: 'Target', inverseSide: 'assignedAccount' },
  },
  indices: migrationIndexes('accounts_counter_to_reset_idx'),
});

export const TargetSchema = new EntitySchema<Target>({
  name: 'Target',
  target: Target,
  tableName: 'targets',
  columns: {
    id: { type: 'int', primary: true, generated: 'increment' },
    telegramId: { name: 'telegram_id', type: 'bigint', nullable: true },
    link: { type: 'varchar', length: 500, unique: true },
    title: { type: 'varchar', length: 500, nullable: true },
    niche: { type: 'varchar', length: 100 },
    status: { type: 'varchar', length: 50, nullable: true, default: 'new' },
    assignedAccountId: { name: 'assigned_account_id', type: 'int', nullable: true },
    joinedAt: { name: 'joined_at', type: 'timestamp', nullable: true },
    warmupEndsAt: { name: 'warmup_ends_at', type: 'timestamp', nullable: true },
    lastPostAt: { name: 'last_post_at', type: 'timestamp', nullable: true },
    dailyPostsInGroup: { name: 'daily_posts_in_group', type: 'int', nullable: true, default: 0 },
    lastGroupStatsReset: { name: 'last_group_stats_reset', type: 'timestamp', nullable: true },
    createdAt,
    updatedAt,
    statusReason: { name: 'status_reason', type: 'text', nullable: true },
    nextPostAllowedAt: { name: 'next_post_allowed_at', type: 'timestamp', nullable: true },
    postHoldKind: { name: 'post_hold_kind', type: 'varchar', length: 20, nullable: true },
    joinClaimedBy: { name: 'join_claimed_by', type: 'int', nullable: true },
    joinRetryAt: { name: 'join_retry_at', type: 'timestamp', nullable: true },
    joinUncertain: { name: 'join_uncertain', type: 'boolean', default: false },
    peerAccessHash: { name: 'peer_access_hash', type: 'varchar', length: 32, nullable: true },
    closedAt: { name: 'closed_at', type: 'timestamp', nullable: true },
    refusedAccountId: { name: 'refused_account_id', type: 'int', nullable: true },
    reopenedAt: { name: 'reopened_at', type: 'timestamp', nullable: true },
    reopenCount: { name: 'reopen_count', type: 'int', default: 0 },
  },
  relations: {
    assignedAccount: {
      type: 'many-to-one',
      target: 'Account',
      joinColumn: { name: 'assigned_account_id', foreignKeyConstraintName: 'targets_assigned_account_id_fkey' },
      onDelete: 'SET NULL',
      nullable: true,
    },
    joinClaimer: {
      type: 'many-to-one',
      target: 'Account',
      joinColumn: { name: 'join_claimed_by', foreignKeyConstraintName: 'targets_join_claimed_by_fkey' },
      onDelete: 'SET NULL',
      nullable: true,
    },
    refusedAccount: {
      type: 'many-to-one',
      target: 'Account',
      joinColumn: { name: 'refused_account_id', foreignKeyConstraintName: 'targets_refused_account_id_fkey' },
      onDelete: 'SET NULL',
      nullable: true,
    },
  },
  indices: migrationIndexes(
    'targets_ready_by_niche_idx',
    'targets_ready_by_account_idx',
    'targets_counter_to_reset_idx',
    'targets_join_queue_idx',
    'targets_join_claims_idx',
    'targets_one_row_per_chat_idx',
    'targets_refusals_idx',
  ),
});

export const PostHistorySchema = new EntitySchema<PostHistory>({
  name: 'PostHistory',
  target: PostHistory,
  tableName: 'post_history',
  columns: {
    id: { type: 'int', primary: true, generated: 'increment' },
    accountId: { name: 'account_id', type: 'int', nullable: true },
    targetId: { name: 'target_id', type: 'int', nullable: true },
    messageContent: { name: 'message_content', type: 'text', nullable: true },
    photoPath: { name: 'photo_path', type: 'varchar', length: 500, nullable: true },
    status: { type: 'varchar', length: 50, nullable: true, default: 'success' },
    errorMessage: { name: 'error_message', type: 'text', nullable: true },
    createdAt,
  },
  relations: {
    account: {
      type: 'many-to-one',
      target: 'Account',
      onDelete: 'CASCADE',
      nullable: true,
      joinColumn: { name: 'account_id', foreignKeyConstraintName: 'post_history_account_id_fkey' },
    },
    target: {
      type: 'many-to-one',
      target: 'Target',
      onDelete: 'CASCADE',
      nullable: true,
      joinColumn: { name: 'target_id', foreignKeyConstraintName: 'post_history_target_id_fkey' },
    },
  },
  indices: migrationIndexes(
    'post_history_account_time_idx',
    'post_history_target_time_idx',
    'post_history_pending_idx',
    'post_history_success_time_idx',
  ),
});

export const entitySchemas = [AccountSchema, TargetSchema, PostHistorySchema];

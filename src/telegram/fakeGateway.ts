/**
 * A Telegram that lives in memory, for the daemon's tests and `lexus simulate`: the same
 * gateway interface, scriptable per account, group and call, with a record of every call.
 * The daemon only gets it when asked to simulate.
 *
 * Without a script it behaves like a polite, working Telegram: sessions connect (but a session
 * already connected elsewhere gets AUTH_KEY_DUPLICATED, as on the real one), joins succeed
 * (a second join says already_member), posts to a group the account is in are sent, and a post
 * to a group it is not in is refused; a caption over 1024 or a text over 4096 characters is
 * refused as Telegram does.
 *
 * Telegram's answers have consequences, as on the real one: after a FloodWait the account gets
 * FLOOD_WAIT with the time left until it is over, after a slow mode the group too, and a group
 * that refused an account keeps refusing it. Every call made against such a decision is listed
 * by violations(), for the simulator's checks.
 *
 * A group is a chat, not a link: two links may lead to one chat (alias()), whose members, slow
 * mode and refusals are the chat's. A chat has an id and, per account, an access hash (the
 * "stored peer"); a post that names them reaches the chat even after its username changed
 * (rename()), one that does not is looked up by its link first (counted in `lookups`). An
 * account restricted for spam (restrict()) is refused by every group while it lasts, which is
 * the account's state, not the groups' decision.
 */
import { createHash } from 'node:crypto';
import { type Clock, systemClock } from '../clock';
import type { AccountCredentials, GroupRef, OutgoingMessage, TelegramGateway, TelegramSession } from './gateway';
import type { ChatIdentity, ConnectOutcome, Failure, JoinOutcome, LookupOutcome, PostOutcome } from './outcomes';

export type FakeOp = 'connect' | 'lookup' | 'join' | 'post';

export interface FakeCall {
  at: Date;
  account: string;
  op: FakeOp | 'disconnect';
  link?: string;
  /** The chat the link leads to (its canonical link; fakeTelegramId(chat) is its id). */
  chat?: string;
  message?: OutgoingMessage;
  outcome?: ConnectOutcome | LookupOutcome | JoinOutcome | PostOutcome;
  /** The post reached the group (a 'sent', or an uncertain failure scripted as delivered). */
  delivered?: boolean;
  /** A join that made the account a member (joined, already in, or a lost answer scripted as joined). */
  joinedChat?: boolean;
  /** Lookups of the link this call made on the way (a post without a stored peer). */
  lookups?: number;
  /** The refusal came from the account's restriction (restrict()), not from the group. */
  restricted?: boolean;
}

export interface FakeViolation {
  at: Date;
  account: string;
  link?: string;
  what: 'action during a FloodWait' | 'post during slow mode' | 'call to a group that refused this account';
}

type OutcomeOf<Op extends FakeOp> = Op extends 'connect'
  ? ConnectOutcome
  : Op extends 'lookup'
    ? LookupOutcome
    : Op extends 'join'
      ? JoinOutcome
      : PostOutcome;

/** A scripted answer; a function may return undefined to let the default behaviour answer. */
export interface FakeRule<Op extends FakeOp = FakeOp> {
  op: Op;
  account?: string;
  link?: string;
  /** How many calls it answers; default every one. */
  times?: number;
  /**
   * The call took effect although the answer says otherwise (a lost answer): for a post, the
   * message reached the group; for a join, the account is a member.
   */
  delivers?: boolean;
  outcome: OutcomeOf<Op> | ((call: FakeCall) => OutcomeOf<Op> | undefined);
}

export interface FakeTelegramOptions {
  clock?: Clock;
  /** Time each call takes, in ms; default 0. */
  latencyMs?: number | ((op: FakeOp, account: string) => number);
  /** How to wait that time; the simulator passes its virtual clock's sleep. */
  sleep?: (ms: number) => Promise<void>;
  /** Every account counts as a member of every group (trying the daemon on real data). */
  membersEverywhere?: boolean;
}

const realSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

const digitsOf = (text: string, count: number): string =>
  (BigInt(`0x${createHash('sha256').update(text).digest('hex').slice(0, 15)}`) % 10n ** BigInt(count))
    .toString()
    .padStart(count, '0');

/** A stable fake chat id for a link: "-100" and ten digits, like a supergroup's. */
export function fakeTelegramId(link: string): string {
  return `-100${digitsOf(link, 10)}`;
}

/** The access hash an account reaches a chat with (a different one per account, as on Telegram). */
export function fakeAccessHash(account: string, chat: string): string {
  return digitsOf(`${account} ${chat}`, 15);
}

const isInvite = (link: string) => link.startsWith('https://t.me/+');

/** A post names its chat's id and access hash (every fake chat is a supergroup, which needs both). */
const hasStoredPeer = (group: GroupRef) => Boolean(group.telegramId && group.accessHash);

export class FakeTelegram implements TelegramGateway {
  readonly calls: FakeCall[] = [];
  private readonly rules: (FakeRule & { left: number })[] = [];
  /** Accounts in each chat, by the chat's canonical link. */
  private readonly memberships = new Map<string, Set<string>>();
  /** Link -> the canonical link of the chat it leads to (alias()). */
  private readonly aliases = new Map<string, string>();
  /** Links that lead nowhere any more (the group changed its username). */
  private readonly renamed = new Set<string>();
  /** Account -> periods [from, until) in ms when Telegram restricts it for spam. */
  private readonly restrictions = new Map<string, { from: number; until: number }[]>();
  /** Live (connected) sessions per account name. */
  private readonly live = new Map<string, number>();
  private nextMessageId = 1;
  /** Until when each account must wait (FloodWait), each group (slow mode), in ms. */
  private readonly accountWaits = new Map<string, number>();
  private readonly groupWaits = new Map<string, number>();
  /** Chats that refused an account, as "account chat". */
  private readonly refusals = new Set<string>();
  private readonly violationList: FakeViolation[] = [];
  readonly clock: Clock;

  constructor(private readonly options: FakeTelegramOptions = {}) {
    this.clock = options.clock ?? systemClock;
  }

  /** Adds a scripted answer; the earliest matching rule with calls left answers. */
  on<Op extends FakeOp>(rule: FakeRule<Op>): this {
    this.rules.push({ ...(rule as unknown as FakeRule), left: rule.times ?? Infinity });
    return this;
  }

  /** Puts an account in a group, as if it had joined before. */
  addMember(link: string, account: string): this {
    const chat = this.chatOf(link);
    const members = this.memberships.get(chat) ?? new Set<string>();
    members.add(account);
    this.memberships.set(chat, members);
    return this;
  }

  isMember(link: string, account: string): boolean {
    return (
      (this.options.membersEverywhere ?? false) || (this.memberships.get(this.chatOf(link))?.has(account) ?? false)
    );
  }

  /** `link` leads to the same chat as `to` (a second username, an invite link). */
  alias(link: string, to: string): this {
    this.aliases.set(link, this.chatOf(to));
    return this;
  }

  /** The chat a link leads to, as its canonical link. */
  chatOf(link: string): string {
    return this.aliases.get(link) ?? link;
  }

  /** What Telegram tells of a chat to this account. */
  identity(link: string, account: string): ChatIdentity {
    const chat = this.chatOf(link);
    return { telegramId: fakeTelegramId(chat), accessHash: fakeAccessHash(account, chat), title: `Group ${chat}` };
  }

  /** The group's username changes: its old link leads nowhere, its stored peer still works. */
  rename(link: string): this {
    this.renamed.add(link);
    return this;
  }

  /** Telegram restricts the account for spam from `from` until `until`: every group refuses it meanwhile. */
  restrict(account: string, from: Date, until: Date): this {
    this.restrictions.set(account, [
      ...(this.restrictions.get(account) ?? []),
      { from: from.getTime(), until: until.getTime() },
    ]);
    return this;
  }

  private restricted(account: string, at: number): boolean {
    return (this.restrictions.get(account) ?? []).some((r) => r.from <= at && at < r.until);
  }

  /** The posts that reached their group (including uncertain ones scripted as delivered). */
  sent(): FakeCall[] {
    return this.calls.filter((c) => c.op === 'post' && c.delivered);
  }

  /** Calls made against Telegram's decisions (a FloodWait, a slow mode, a refusal). */
  violations(): FakeViolation[] {
    return [...this.violationList];
  }

  session(account: AccountCredentials): TelegramSession {
    return new FakeSession(this, account.sessionName);
  }

  /** @internal */
  async answer<Op extends FakeOp>(
    op: Op,
    account: string,
    group: GroupRef | undefined,
    message: OutgoingMessage | undefined,
    fallback: () => OutcomeOf<Op>,
  ): Promise<OutcomeOf<Op>> {
    const call: FakeCall = {
      at: this.clock.now(),
      account,
      op,
      ...(group ? { link: group.link, chat: this.chatOf(group.link) } : {}),
      ...(message ? { message } : {}),
      ...(op === 'post' && group && !hasStoredPeer(group) ? { lookups: 1 } : {}),
    };
    this.calls.push(call);
    const latency =
      typeof this.options.latencyMs === 'function'
        ? this.options.latencyMs(op, account)
        : (this.options.latencyMs ?? 0);
    if (latency > 0) await (this.options.sleep ?? realSleep)(latency);
    const at = call.at.getTime();
    let outcome: OutcomeOf<Op> | undefined = this.enforced(op, call, group, at) as OutcomeOf<Op> | undefined;
    let delivers = false;
    if (!outcome) {
      for (const rule of this.rules) {
        if (rule.left <= 0 || rule.op !== op) continue;
        if (rule.account !== undefined && rule.account !== account) continue;
        if (rule.link !== undefined && rule.link !== group?.link) continue;
        const scripted = typeof rule.outcome === 'function' ? rule.outcome(call) : rule.outcome;
        if (scripted === undefined) continue;
        rule.left--;
        outcome = scripted as OutcomeOf<Op>;
        delivers = rule.delivers ?? false;
        break;
      }
    }
    outcome ??= fallback();
    call.outcome = outcome;
    call.delivered = op === 'post' && (outcome.kind === 'sent' || delivers);
    if (op === 'join' && group && (outcome.kind === 'joined' || outcome.kind === 'already_member' || delivers)) {
      this.addMember(group.link, account);
      call.joinedChat = true;
    }
    this.remember(account, group, outcome, at);
    return outcome;
  }

  /** Telegram's standing decisions: a call against one is answered as Telegram would, and listed. */
  private enforced(
    op: FakeOp,
    call: FakeCall,
    group: GroupRef | undefined,
    at: number,
  ): ConnectOutcome | LookupOutcome | JoinOutcome | PostOutcome | undefined {
    const { account } = call;
    const accountWait = this.accountWaits.get(account) ?? 0;
    if (accountWait > at) {
      this.violationList.push({
        at: new Date(at),
        account,
        ...(group ? { link: group.link } : {}),
        what: 'action during a FloodWait',
      });
      const seconds = Math.ceil((accountWait - at) / 1000);
      return { kind: 'account_flood_wait', seconds, error: `FLOOD_WAIT_${seconds}` };
    }
    if (!group) return undefined;
    const chat = this.chatOf(group.link);
    if (this.refusals.has(`${account} ${chat}`)) {
      this.violationList.push({
        at: new Date(at),
        account,
        link: group.link,
        what: 'call to a group that refused this account',
      });
      return { kind: 'group_refuses', reason: 'banned', error: 'USER_BANNED_IN_CHANNEL' };
    }
    if ((op === 'post' || op === 'join') && this.restricted(account, at)) {
      call.restricted = true;
      return op === 'post'
        ? { kind: 'group_refuses', reason: 'banned', error: 'USER_BANNED_IN_CHANNEL' }
        : { kind: 'group_refuses', reason: 'read_only', error: 'CHAT_WRITE_FORBIDDEN' };
    }
    if (op === 'lookup' && this.renamed.has(group.link)) return { kind: 'link_dead', error: 'USERNAME_NOT_OCCUPIED' };
    if (op === 'join' && this.renamed.has(group.link)) return { kind: 'link_dead', error: 'USERNAME_NOT_OCCUPIED' };
    if (op === 'post' && !hasStoredPeer(group) && this.renamed.has(group.link)) {
      return {
        kind: 'transient',
        error: 'cannot find the group by its link (USERNAME_NOT_OCCUPIED)',
        uncertain: false,
      };
    }
    if (op === 'post' && hasStoredPeer(group)) {
      const id = this.identity(group.link, account);
      if (group.telegramId !== id.telegramId || group.accessHash !== id.accessHash)
        return { kind: 'peer_invalid', error: 'CHANNEL_INVALID' };
    }
    const groupWait = this.groupWaits.get(chat) ?? 0;
    if (op === 'post' && groupWait > at) {
      this.violationList.push({ at: new Date(at), account, link: group.link, what: 'post during slow mode' });
      const seconds = Math.ceil((groupWait - at) / 1000);
      return { kind: 'group_slow_mode', seconds, error: `SLOWMODE_WAIT_${seconds}` };
    }
    return undefined;
  }

  private remember(
    account: string,
    group: GroupRef | undefined,
    outcome: ConnectOutcome | LookupOutcome | JoinOutcome | PostOutcome,
    at: number,
  ): void {
    if (outcome.kind === 'account_flood_wait')
      this.accountWaits.set(account, Math.max(this.accountWaits.get(account) ?? 0, at + outcome.seconds * 1000));
    if (!group) return;
    const chat = this.chatOf(group.link);
    if (outcome.kind === 'group_slow_mode')
      this.groupWaits.set(chat, Math.max(this.groupWaits.get(chat) ?? 0, at + outcome.seconds * 1000));
    // A refusal that comes from the account's restriction is not the group's decision.
    if (outcome.kind === 'group_refuses' && outcome.reason !== 'removed' && !this.restricted(account, at)) {
      this.refusals.add(`${account} ${chat}`);
      this.memberships.get(chat)?.delete(account);
    }
  }

  /** @internal */
  defaultConnect(account: string, alreadyLive: boolean): ConnectOutcome {
    if (alreadyLive) return { kind: 'session_dead', error: 'AUTH_KEY_DUPLICATED' };
    return { kind: 'connected', userId: fakeTelegramId(account).slice(4), username: null };
  }

  /** @internal */
  defaultLookup(account: string, link: string): LookupOutcome {
    const member = this.isMember(link, account);
    // As on Telegram: an invite link tells the chat only to its members.
    return { kind: 'found', chat: isInvite(link) && !member ? null : this.identity(link, account), member };
  }

  /** @internal */
  defaultJoin(account: string, link: string): JoinOutcome {
    const { telegramId, title, accessHash } = this.identity(link, account);
    if (this.isMember(link, account)) return { kind: 'already_member', telegramId, title, accessHash };
    this.addMember(link, account);
    return { kind: 'joined', telegramId, title, accessHash };
  }

  /** @internal */
  defaultPost(account: string, group: GroupRef, message: OutgoingMessage): PostOutcome {
    if (!this.isMember(group.link, account))
      return { kind: 'group_refuses', reason: 'removed', error: 'CHAT_GUEST_SEND_FORBIDDEN' };
    if (message.photoPath && message.text.length > 1024)
      return { kind: 'message_invalid', error: 'MEDIA_CAPTION_TOO_LONG' };
    if (message.text.length > 4096) return { kind: 'message_invalid', error: 'MESSAGE_TOO_LONG' };
    const messageId = this.nextMessageId++;
    return hasStoredPeer(group)
      ? { kind: 'sent', messageId }
      : { kind: 'sent', messageId, chat: this.identity(group.link, account) };
  }

  /** @internal */
  goLive(account: string): boolean {
    const count = this.live.get(account) ?? 0;
    this.live.set(account, count + 1);
    return count > 0;
  }

  /** @internal */
  goOffline(account: string): void {
    const count = this.live.get(account) ?? 0;
    if (count <= 1) this.live.delete(account);
    else this.live.set(account, count - 1);
  }
}

class FakeSession implements TelegramSession {
  private connected = false;

  constructor(
    private readonly telegram: FakeTelegram,
    readonly sessionName: string,
  ) {}

  private notConnected<T>(): T {
    const failure: Failure = { kind: 'transient', error: 'not connected', uncertain: false };
    return failure as T;
  }

  async connect(): Promise<ConnectOutcome> {
    if (this.connected) return { kind: 'connected', userId: fakeTelegramId(this.sessionName).slice(4), username: null };
    const outcome = await this.telegram.answer('connect', this.sessionName, undefined, undefined, () => {
      const duplicated = this.telegram.goLive(this.sessionName);
      if (duplicated) this.telegram.goOffline(this.sessionName);
      else this.connected = true;
      return this.telegram.defaultConnect(this.sessionName, duplicated);
    });
    if (outcome.kind === 'connected' && !this.connected) {
      // A scripted success: count this session as live too.
      this.telegram.goLive(this.sessionName);
      this.connected = true;
    }
    return outcome;
  }

  async lookup(group: GroupRef): Promise<LookupOutcome> {
    return this.telegram.answer('lookup', this.sessionName, group, undefined, () =>
      this.connected ? this.telegram.defaultLookup(this.sessionName, group.link) : this.notConnected<LookupOutcome>(),
    );
  }

  async join(group: GroupRef): Promise<JoinOutcome> {
    return this.telegram.answer('join', this.sessionName, group, undefined, () =>
      this.connected ? this.telegram.defaultJoin(this.sessionName, group.link) : this.notConnected<JoinOutcome>(),
    );
  }

  async post(group: GroupRef, message: OutgoingMessage): Promise<PostOutcome> {
    return this.telegram.answer('post', this.sessionName, group, message, () =>
      this.connected ? this.telegram.defaultPost(this.sessionName, group, message) : this.notConnected<PostOutcome>(),
    );
  }

  async disconnect(): Promise<void> {
    if (!this.connected) return;
    this.connected = false;
    this.telegram.goOffline(this.sessionName);
    this.telegram.calls.push({ at: this.telegram.clock.now(), account: this.sessionName, op: 'disconnect' });
  }
}

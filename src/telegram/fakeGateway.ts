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
 */
import { createHash } from 'node:crypto';
import { systemClock, type Clock } from '../clock';
import type { AccountCredentials, GroupRef, OutgoingMessage, TelegramGateway, TelegramSession } from './gateway';
import type { ConnectOutcome, JoinOutcome, PostOutcome } from './outcomes';

export type FakeOp = 'connect' | 'join' | 'post';

export interface FakeCall {
  at: Date;
  account: string;
  op: FakeOp | 'disconnect';
  link?: string;
  message?: OutgoingMessage;
  outcome?: ConnectOutcome | JoinOutcome | PostOutcome;
  /** The post reached the group (a 'sent', or an uncertain failure scripted as delivered). */
  delivered?: boolean;
}

export interface FakeViolation {
  at: Date;
  account: string;
  link?: string;
  what: 'action during a FloodWait' | 'post during slow mode' | 'call to a group that refused this account';
}

type OutcomeOf<Op extends FakeOp> = Op extends 'connect' ? ConnectOutcome : Op extends 'join' ? JoinOutcome : PostOutcome;

/** A scripted answer; a function may return undefined to let the default behaviour answer. */
export interface FakeRule<Op extends FakeOp = FakeOp> {
  op: Op;
  account?: string;
  link?: string;
  /** How many calls it answers; default every one. */
  times?: number;
  /** For a post: the message reached the group although the answer says otherwise (a lost answer). */
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

/** A stable fake chat id for a link: "-100" and ten digits, like a supergroup's. */
export function fakeTelegramId(link: string): string {
  const digits = BigInt(`0x${createHash('sha256').update(link).digest('hex').slice(0, 12)}`) % 10_000_000_000n;
  return `-100${digits.toString().padStart(10, '0')}`;
}

export class FakeTelegram implements TelegramGateway {
  readonly calls: FakeCall[] = [];
  private readonly rules: (FakeRule & { left: number })[] = [];
  /** Accounts in each group, by link. */
  private readonly memberships = new Map<string, Set<string>>();
  /** Live (connected) sessions per account name. */
  private readonly live = new Map<string, number>();
  private nextMessageId = 1;
  /** Until when each account must wait (FloodWait), each group (slow mode), in ms. */
  private readonly accountWaits = new Map<string, number>();
  private readonly groupWaits = new Map<string, number>();
  /** Groups that refused an account, as "account link". */
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
    const members = this.memberships.get(link) ?? new Set<string>();
    members.add(account);
    this.memberships.set(link, members);
    return this;
  }

  isMember(link: string, account: string): boolean {
    return (this.options.membersEverywhere ?? false) || (this.memberships.get(link)?.has(account) ?? false);
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
  async answer<Op extends FakeOp>(op: Op, account: string, group: GroupRef | undefined, message: OutgoingMessage | undefined, fallback: () => OutcomeOf<Op>): Promise<OutcomeOf<Op>> {
    const call: FakeCall = {
      at: this.clock.now(),
      account,
      op,
      ...(group ? { link: group.link } : {}),
      ...(message ? { message } : {}),
    };
    this.calls.push(call);
    const latency = typeof this.options.latencyMs === 'function' ? this.options.latencyMs(op, account) : (this.options.latencyMs ?? 0);
    if (latency > 0) await (this.options.sleep ?? realSleep)(latency);
    const at = call.at.getTime();
    let outcome: OutcomeOf<Op> | undefined = this.enforced(op, account, group, at) as OutcomeOf<Op> | undefined;
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
    this.remember(account, group, outcome, at);
    return outcome;
  }

  /** Telegram's standing decisions: a call against one is answered as Telegram would, and listed. */
  private enforced(op: FakeOp, account: string, group: GroupRef | undefined, at: number): ConnectOutcome | JoinOutcome | PostOutcome | undefined {
    const accountWait = this.accountWaits.get(account) ?? 0;
    if (accountWait > at) {
      this.violationList.push({ at: new Date(at), account, ...(group ? { link: group.link } : {}), what: 'action during a FloodWait' });
      const seconds = Math.ceil((accountWait - at) / 1000);
      return { kind: 'account_flood_wait', seconds, error: `FLOOD_WAIT_${seconds}` };
    }
    if (!group) return undefined;
    if (this.refusals.has(`${account} ${group.link}`)) {
      this.violationList.push({ at: new Date(at), account, link: group.link, what: 'call to a group that refused this account' });
      return { kind: 'group_refuses', reason: 'banned', error: 'USER_BANNED_IN_CHANNEL' };
    }
    const groupWait = this.groupWaits.get(group.link) ?? 0;
    if (op === 'post' && groupWait > at) {
      this.violationList.push({ at: new Date(at), account, link: group.link, what: 'post during slow mode' });
      const seconds = Math.ceil((groupWait - at) / 1000);
      return { kind: 'group_slow_mode', seconds, error: `SLOWMODE_WAIT_${seconds}` };
    }
    return undefined;
  }

  private remember(account: string, group: GroupRef | undefined, outcome: ConnectOutcome | JoinOutcome | PostOutcome, at: number): void {
    if (outcome.kind === 'account_flood_wait') this.accountWaits.set(account, Math.max(this.accountWaits.get(account) ?? 0, at + outcome.seconds * 1000));
    if (!group) return;
    if (outcome.kind === 'group_slow_mode') this.groupWaits.set(group.link, Math.max(this.groupWaits.get(group.link) ?? 0, at + outcome.seconds * 1000));
    if (outcome.kind === 'group_refuses' && outcome.reason !== 'removed') {
      this.refusals.add(`${account} ${group.link}`);
      this.memberships.get(group.link)?.delete(account);
    }
  }

  /** @internal */
  defaultConnect(account: string, alreadyLive: boolean): ConnectOutcome {
    if (alreadyLive) return { kind: 'session_dead', error: 'AUTH_KEY_DUPLICATED' };
    return { kind: 'connected', userId: fakeTelegramId(account).slice(4), username: null };
  }

  /** @internal */
  defaultJoin(account: string, link: string): JoinOutcome {
    const telegramId = fakeTelegramId(link);
    const title = `Group ${link}`;
    if (this.isMember(link, account)) return { kind: 'already_member', telegramId, title };
    this.addMember(link, account);
    return { kind: 'joined', telegramId, title };
  }

  /** @internal */
  defaultPost(account: string, link: string, message: OutgoingMessage): PostOutcome {
    if (!this.isMember(link, account)) return { kind: 'group_refuses', reason: 'removed', error: 'CHAT_GUEST_SEND_FORBIDDEN' };
    if (message.photoPath && message.text.length > 1024) return { kind: 'message_invalid', error: 'MEDIA_CAPTION_TOO_LONG' };
    if (message.text.length > 4096) return { kind: 'message_invalid', error: 'MESSAGE_TOO_LONG' };
    return { kind: 'sent', messageId: this.nextMessageId++ };
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
    return { kind: 'transient', error: 'not connected', uncertain: false } as T;
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

  async join(group: GroupRef): Promise<JoinOutcome> {
    const outcome = await this.telegram.answer('join', this.sessionName, group, undefined, () =>
      this.connected ? this.telegram.defaultJoin(this.sessionName, group.link) : this.notConnected<JoinOutcome>(),
    );
    // A scripted success makes the account a member too.
    if (outcome.kind === 'joined' || outcome.kind === 'already_member') this.telegram.addMember(group.link, this.sessionName);
    return outcome;
  }

  async post(group: GroupRef, message: OutgoingMessage): Promise<PostOutcome> {
    return this.telegram.answer('post', this.sessionName, group, message, () =>
      this.connected ? this.telegram.defaultPost(this.sessionName, group.link, message) : this.notConnected<PostOutcome>(),
    );
  }

  async disconnect(): Promise<void> {
    if (!this.connected) return;
    this.connected = false;
    this.telegram.goOffline(this.sessionName);
    this.telegram.calls.push({ at: this.telegram.clock.now(), account: this.sessionName, op: 'disconnect' });
  }
}

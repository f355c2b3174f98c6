/**
 * A Telegram that lives in memory, for the daemon's tests and `lexus simulate`: the same
 * gateway interface, scriptable per account, group and call, with a record of every call.
 * The daemon only gets it when asked to simulate.
 *
 * Without a script it behaves like a polite, working Telegram: sessions connect (but a session
 * already connected elsewhere gets AUTH_KEY_DUPLICATED, as on the real one), joins succeed
 * (a second join says already_member), posts to a group the account is in are sent, and a post
 * to a group it is not in is refused.
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
}

type OutcomeOf<Op extends FakeOp> = Op extends 'connect' ? ConnectOutcome : Op extends 'join' ? JoinOutcome : PostOutcome;

/** A scripted answer; a function may return undefined to let the default behaviour answer. */
export interface FakeRule<Op extends FakeOp = FakeOp> {
  op: Op;
  account?: string;
  link?: string;
  /** How many calls it answers; default every one. */
  times?: number;
  outcome: OutcomeOf<Op> | ((call: FakeCall) => OutcomeOf<Op> | undefined);
}

export interface FakeTelegramOptions {
  clock?: Clock;
  /** Time each call takes, in ms; default 0. */
  latencyMs?: number | ((op: FakeOp, account: string) => number);
  /** How to wait that time; the simulator passes its virtual clock's sleep. */
  sleep?: (ms: number) => Promise<void>;
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
    return this.memberships.get(link)?.has(account) ?? false;
  }

  /** The posts that went out. */
  sent(): FakeCall[] {
    return this.calls.filter((c) => c.op === 'post' && c.outcome?.kind === 'sent');
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
    let outcome: OutcomeOf<Op> | undefined;
    for (const rule of this.rules) {
      if (rule.left <= 0 || rule.op !== op) continue;
      if (rule.account !== undefined && rule.account !== account) continue;
      if (rule.link !== undefined && rule.link !== group?.link) continue;
      const scripted = typeof rule.outcome === 'function' ? rule.outcome(call) : rule.outcome;
      if (scripted === undefined) continue;
      rule.left--;
      outcome = scripted as OutcomeOf<Op>;
      break;
    }
    outcome ??= fallback();
    call.outcome = outcome;
    return outcome;
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
  defaultPost(account: string, link: string): PostOutcome {
    if (!this.isMember(link, account)) return { kind: 'group_refuses', reason: 'removed', error: 'CHAT_GUEST_SEND_FORBIDDEN' };
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
      this.connected ? this.telegram.defaultPost(this.sessionName, group.link) : this.notConnected<PostOutcome>(),
    );
  }

  async disconnect(): Promise<void> {
    if (!this.connected) return;
    this.connected = false;
    this.telegram.goOffline(this.sessionName);
    this.telegram.calls.push({ at: this.telegram.clock.now(), account: this.sessionName, op: 'disconnect' });
  }
}

/**
 * One simulated `lexus start` process: its own pool, its own lock connection, the real Daemon
 * (made as `lexus start` makes it: src/app.ts's assembleDaemon), and a view of the fake Telegram
 * that takes time (virtual), remembers which process made each call, and can die mid-call like
 * a killed process.
 */
import type { DataSource } from 'typeorm';
import { assembleDaemon } from '../app';
import type { DaemonSettings, PostgresConnection } from '../config';
import type { Daemon } from '../daemon/daemon';
import type { MessageVariant } from '../daemon/messages';
import type { AccountLocks } from '../db/accountLocks';
import { createDataSource } from '../db/database';
import type { Logger } from '../logger';
import { hashed, seeded } from '../random';
import type { FakeTelegram } from '../telegram/fakeGateway';
import type {
  AccountCredentials,
  GroupRef,
  OutgoingMessage,
  TelegramGateway,
  TelegramSession,
} from '../telegram/gateway';
import type { ConnectOutcome } from '../telegram/outcomes';
import { DbLink } from './dbLink';
import type { VirtualClock } from './virtualClock';

/** Which process had a live session of which account: the "one session, one process" check. */
export class SessionLedger {
  private readonly live = new Map<string, string>();
  readonly overlaps: { at: Date; account: string; replicas: [string, string] }[] = [];

  /** A call (connect, join, post) by `replica` for `account`. */
  use(at: Date, account: string, replica: string): void {
    const holder = this.live.get(account);
    if (holder !== undefined && holder !== replica) this.overlaps.push({ at, account, replicas: [holder, replica] });
  }

  connected(account: string, replica: string): void {
    this.live.set(account, replica);
  }

  disconnected(account: string, replica: string): void {
    if (this.live.get(account) === replica) this.live.delete(account);
  }
}

const never = <T>() => new Promise<T>(() => undefined);

/** The fake Telegram as one process sees it. */
export class ReplicaGateway implements TelegramGateway {
  private readonly sessions = new Set<TelegramSession>();
  /** Virtual sleeps (call latency) in progress: the simulation waits for them. */
  sleeping = 0;
  /** The process died: every call from it hangs for ever, as a dead process makes none. */
  crashed = false;
  private die!: () => void;
  /** Resolves when the process dies. */
  readonly died = new Promise<void>((resolve) => {
    this.die = resolve;
  });
  private calls = 0;

  constructor(
    private readonly fake: FakeTelegram,
    private readonly clock: VirtualClock,
    readonly replica: string,
    private readonly ledger: SessionLedger,
    private readonly seed: number,
    /** Asked after each post went out: true makes this process die before it records it. */
    private readonly crashNow: () => boolean,
    /** Told of each answer before the daemon sees it (a fault may start while a call is in flight). */
    private readonly afterAnswer: (replica: string) => Promise<void> = async () => undefined,
  ) {}

  private async latency(account: string): Promise<void> {
    // 0.3 to 1.5 s per call, as a proxy and Telegram's servers take.
    const ms = 300 + Math.floor(hashed(this.seed, 'latency', this.replica, account, this.calls++) * 1200);
    this.sleeping++;
    try {
      await this.clock.sleep(ms);
    } finally {
      this.sleeping--;
    }
  }

  session(credentials: AccountCredentials): TelegramSession {
    const inner = this.fake.session(credentials);
    const account = credentials.sessionName;
    this.sessions.add(inner);
    const call = async <T>(make: () => Promise<T>): Promise<T> => {
      if (this.crashed) return never();
      await this.latency(account);
      if (this.crashed) return never();
      this.ledger.use(this.clock.now(), account, this.replica);
      const outcome = await make();
      await this.afterAnswer(this.replica);
      return outcome;
    };
    return {
      sessionName: account,
      connect: () =>
        call(async () => {
          const outcome: ConnectOutcome = await inner.connect();
          if (outcome.kind === 'connected') this.ledger.connected(account, this.replica);
          return outcome;
        }),
      lookup: (group: GroupRef) => call(() => inner.lookup(group)),
      join: (group: GroupRef) => call(() => inner.join(group)),
      post: (group: GroupRef, message: OutgoingMessage) =>
        call(async () => {
          const outcome = await inner.post(group, message);
          if (this.crashNow()) {
            this.crashed = true;
            this.die();
            return never();
          }
          return outcome;
        }),
      disconnect: async () => {
        if (this.crashed) return;
        this.ledger.disconnected(account, this.replica);
        await inner.disconnect();
      },
    };
  }

  /** The dead process's connections close (its sockets go with it). */
  dropConnections(): void {
    for (const session of this.sessions) {
      this.ledger.disconnected(session.sessionName, this.replica);
      void session.disconnect();
    }
    this.sessions.clear();
  }
}

export interface ReplicaOptions {
  name: string;
  connection: PostgresConnection;
  fake: FakeTelegram;
  clock: VirtualClock;
  ledger: SessionLedger;
  settings: DaemonSettings;
  messages: MessageVariant[];
  log: Logger;
  seed: number;
  crashNow: () => boolean;
  afterAnswer?: (replica: string) => Promise<void>;
  /** Its link to the database starts cut (an outage of every process is going on). */
  startCut?: boolean;
  /** How often its rounds re-read accounts and locks (virtual time). */
  refreshEveryMs: number;
}

export class Replica {
  state: 'running' | 'stopping' | 'gone' = 'running';
  lastRoundAt = -Infinity;
  stopped: Promise<void> | undefined;
  /** A new process was started in its place. */
  replaced = false;
  /** How its clean stop went. */
  stopResult: string | undefined;

  private constructor(
    readonly name: string,
    readonly dataSource: DataSource,
    readonly locks: AccountLocks,
    readonly gateway: ReplicaGateway,
    readonly daemon: Daemon,
    /** Its own way to the database, which a partition or an outage cuts. */
    readonly link: DbLink,
  ) {}

  static async start(o: ReplicaOptions): Promise<Replica> {
    const link = await DbLink.open(o.connection);
    const connection = { ...o.connection, host: '127.0.0.1', port: link.port };
    const dataSource = createDataSource(connection, {
      poolSize: o.settings.maxParallelAccounts + 3,
      applicationName: `lexus simulate ${o.name}`,
    });
    await dataSource.initialize();
    if (o.startCut) link.cut();
    const gateway = new ReplicaGateway(o.fake, o.clock, o.name, o.ledger, o.seed, o.crashNow, o.afterAnswer);
    // The Daemon and its locks as `lexus start` makes them, on this process's link, clock and fake.
    const { daemon, locks } = assembleDaemon({
      dataSource,
      connection,
      gateway,
      clock: o.clock,
      log: o.log.child({ replica: o.name }),
      settings: o.settings,
      messages: o.messages,
      random: seeded(o.seed),
      refreshEveryMs: o.refreshEveryMs,
      maxStartsPerRound: 1,
      instance: o.name,
    });
    return new Replica(o.name, dataSource, locks, gateway, daemon, link);
  }

  /** Every action in flight is waiting for Telegram (virtual time): nothing runs in this process. */
  quiet(): boolean {
    if (this.state === 'gone' || this.gateway.crashed) return true;
    const busy = this.daemon.busyActions();
    // A stop with nothing left in flight is closing its sessions and connections: wait for it.
    if (this.state === 'stopping' && busy === 0) return false;
    return busy <= this.gateway.sleeping;
  }

  /** A kill -9: no more code runs, sockets close, the database sees the connections go. */
  async crash(): Promise<void> {
    this.state = 'gone';
    this.gateway.crashed = true;
    this.gateway.dropConnections();
    await this.locks.close();
    await this.dataSource.destroy().catch(() => undefined);
    await this.link.close();
  }

  /** SIGTERM: the daemon's own clean stop; `stopped` resolves when it is over. */
  stop(graceMs: number): void {
    this.state = 'stopping';
    this.stopped = this.daemon
      .stop(graceMs)
      .then((clean) => {
        this.stopResult = clean ? 'clean' : 'an action was still running at the deadline';
      })
      .catch((error: unknown) => {
        this.stopResult = `failed: ${(error as Error).message}`;
      })
      .finally(async () => {
        await this.dataSource.destroy().catch(() => undefined);
        await this.link.close();
        this.state = 'gone';
      });
  }
}

/**
 * `lexus simulate`: the real daemon (loop, scheduler, DbManager, PostgreSQL) against the fake
 * Telegram on virtual time, so that a week passes in seconds. One or more daemon processes
 * ("replicas") share a fresh database; chaos.ts decides what goes wrong; invariants.ts checks
 * afterwards, from the history and Telegram's record, that no rule was broken.
 *
 * Time only moves when every process is waiting for Telegram or has nothing to do; then the
 * clock jumps to the next thing due (a call's answer, an account's next action, midnight, a
 * fault), waking one sleeper at a time. So the run is the same run at any speed.
 */
import type { DataSource } from 'typeorm';
import { DAY_MS, HOUR_MS, MINUTE_MS, SECOND_MS } from '../clock';
import type { DaemonSettings, PostgresConnection } from '../config';
import type { MessageVariant } from '../daemon/messages';
import type { PostingHours } from '../daemon/postingWindow';
import { midnight } from '../daemon/run';
import { createDataSource, runMigrations } from '../db/database';
import { sqlTime } from '../db/postgresTypes';
import type { Logger } from '../logger';
import { hashed } from '../random';
import {
  analyzeAccountsAndTargets,
  countClosedAliases,
  insertAliasGroups,
  insertSimulatedAccounts,
  insertSimulatedGroups,
  loadAccountNames,
  loadGroupLinks,
  markAllAccountsSeasoned,
  turnOffSynchronousCommit,
  vacuumAnalyzeTables,
} from '../sql/simulation';
import { FakeTelegram } from '../telegram/fakeGateway';
import { type ChaosLevel, type ChaosPlan, planChaos, scriptTelegram } from './chaos';
import type { DbLink } from './dbLink';
import { checkInvariants, type InvariantCheck } from './invariants';
import { Replica, SessionLedger } from './replica';
import { type DayReport, dayReport, type HourPoint, hourly, type Pacing, pacing } from './report';
import { VirtualClock } from './virtualClock';

/**
 * A process runs a round at least this often (the real daemon: every second). Enough to take
 * accounts over after a crash; the run stays fast.
 */
const ROUND_EVERY_MS = 5 * MINUTE_MS;
/**
 * A process re-reads its accounts and renews its lease at most this often, at a round (the real
 * daemon: every 5 s, for a lease of 20 s). The lease is four of these (daemon.ts leaseTimes):
 * 8 min, so a process taking over after a crash waits minutes, not seconds.
 */
const REFRESH_EVERY_MS = 2 * MINUTE_MS;
/** A crashed or stopped process is back after this long (a supervisor's restart). */
const RESTART_AFTER_MS = 45 * SECOND_MS;
/** A day's line is printed this long after its midnight, once the actions of its last minute have ended. */
const DAY_REPORT_DELAY_MS = 5 * MINUTE_MS;
/**
 * How often, in virtual time, the tables are vacuumed and analyzed. On a live server autovacuum
 * does this within minutes of a few hundred updates; a simulated week passes in a minute, far too
 * fast for it, and stale statistics (taken when no group was joined yet) or dead rows would make
 * the planner read the wrong index and the run measure a database nobody runs.
 */
const MAINTENANCE_EVERY_MS = 3 * HOUR_MS;

/** What is simulated: the fleet, how long, what goes wrong, how many processes. */
export interface SimulationShape {
  accounts: number;
  groups: number;
  days: number;
  seed: number;
  chaos: ChaosLevel;
  replicas: number;
  /** The accounts ran before (lexus import --seasoned): full budgets at once, no ramp-up. */
  seasoned?: boolean;
}

export interface SimulationOptions extends SimulationShape {
  /** A fresh, empty database (it is migrated and filled here). */
  connection: PostgresConnection;
  settings: DaemonSettings;
  messages: MessageVariant[];
  /** The daemons' own log (silent by default). */
  log: Logger;
  /** UTC midnight the run starts at; default 2026-03-02. */
  start?: Date;
  /** Called as each simulated day ends. */
  onDay?: (day: DayReport, elapsedMs: number) => void;
}

export interface SimulationEvent {
  at: string;
  what: string;
}

/** How often each fault of the run happened (planned, and met). */
export interface FaultCounts {
  /** Database outages of every process, started while a Telegram call was in flight. */
  dbOutages: number;
  /** One process cut off from the database while one of its calls was in flight. */
  partitions: number;
  /** Joins that happened although their answer was a timeout. */
  lostJoins: number;
  /** Second links of a chat, and how many of them the daemon closed as duplicates. */
  aliases: number;
  aliasesClosed: number;
  /** Groups renamed, and posts that reached a renamed group through its stored peer. */
  renames: number;
  postsAfterRename: number;
  /** Accounts restricted for spam, and the refusals they met. */
  restrictedAccounts: number;
  restrictedRefusals: number;
  crashes: number;
  restarts: number;
}

export interface SimulationResult {
  options: SimulationShape & { start: string; postingHours: PostingHours; timeZone: string; spread: boolean };
  days: DayReport[];
  totals: {
    joins: number;
    posts: number;
    maxPosts: number;
    utilization: number | null;
    floodWaits: number;
    groupBans: number;
    sessionsLost: number;
    telegramCalls: number;
    /** Calls to Telegram (lookups inside posts included) per join that made us a member or post that landed. */
    callsPerAction: number | null;
  };
  faults: FaultCounts;
  /** Where in the audience's day the posts went, and how bunched they were. */
  pacing: Pacing;
  invariants: InvariantCheck[];
  violations: number;
  hourly: HourPoint[];
  events: SimulationEvent[];
  wallMs: number;
}

/** Accounts sim_001..., groups @ua_cars_00001..., straight into the fresh database. */
async function populate(
  ds: DataSource,
  accounts: number,
  groups: number,
  now: Date,
): Promise<{ accounts: string[]; links: string[] }> {
  const width = (n: number) => Math.max(3, String(n).length);
  await insertSimulatedAccounts(ds, { n: accounts, width: width(accounts), now: sqlTime(now) });
  await insertSimulatedGroups(ds, { n: groups, width: width(groups) + 1, now: sqlTime(now) });
  // Fresh statistics, as autovacuum would gather them on a live database.
  await analyzeAccountsAndTargets(ds);
  return { accounts: await loadAccountNames(ds), links: await loadGroupLinks(ds) };
}

export async function simulate(options: SimulationOptions): Promise<SimulationResult> {
  const started = Date.now();
  const startMs = (options.start ?? new Date('2026-03-02T00:00:00Z')).getTime();
  const endMs = startMs + options.days * DAY_MS;
  const clock = new VirtualClock(new Date(startMs));
  const settings: DaemonSettings = { ...options.settings, niches: ['ukraine_cars'] };

  const admin = createDataSource(options.connection, { poolSize: 2, applicationName: 'lexus simulate' });
  await admin.initialize();
  const replicas: Replica[] = [];
  try {
    await runMigrations(admin);
    // A scratch database: commits need not wait for the disk (nothing here outlives the run).
    await turnOffSynchronousCommit(admin);
    const population = await populate(admin, options.accounts, options.groups, clock.now());
    if (options.seasoned) await markAllAccountsSeasoned(admin);
    const window = { hours: settings.postingHours, timeZone: settings.timeZone };
    const fake = new FakeTelegram({ clock });
    const plan: ChaosPlan = planChaos(
      options.chaos,
      options.seed,
      population.accounts,
      population.links,
      startMs,
      endMs,
    );
    // Second links of some groups' chats: rows of their own, as an operator's list would have them.
    if (plan.aliases.size > 0)
      await insertAliasGroups(admin, { links: [...plan.aliases.keys()], now: sqlTime(clock.now()) });
    scriptTelegram(fake, plan);
    const ledger = new SessionLedger();
    const events: SimulationEvent[] = [];
    const event = (what: string) => events.push({ at: clock.now().toISOString(), what });

    // Faults in time order: crashes arm the next post of any process; restarts stop one; database
    // faults arm the next answer of any process (an outage cuts every process off, a partition
    // the one whose call is in flight); renames change a group's username.
    const crashes = [...plan.crashes];
    const restarts = [...plan.restarts];
    const dbFaults = [...plan.dbFaults];
    const renames = [...plan.renames];
    const dbFaultsArmed: ChaosPlan['dbFaults'] = [];
    const restoresDue: { at: number; links: DbLink[] }[] = [];
    let outageUntil = -Infinity;
    const met = { dbOutages: 0, partitions: 0, renames: 0 };
    let crashArmed = false;
    const restartsDue: number[] = [];
    let started_ = 0;
    const startReplica = async () => {
      const name = `p${++started_}`;
      const replica = await Replica.start({
        name,
        connection: options.connection,
        fake,
        clock,
        ledger,
        settings,
        messages: options.messages,
        log: options.log,
        seed: Math.floor(hashed(options.seed, 'replica', name) * 2 ** 32),
        refreshEveryMs: REFRESH_EVERY_MS,
        crashNow: () => {
          if (!crashArmed) return false;
          crashArmed = false;
          return true;
        },
        afterAnswer: async (who) => {
          const fault = dbFaultsArmed.shift();
          if (!fault) return;
          const at = clock.now().getTime();
          const cut =
            fault.kind === 'outage'
              ? running().map((r) => r.link)
              : running()
                  .filter((r) => r.name === who)
                  .map((r) => r.link);
          for (const link of cut) link.cut();
          restoresDue.push({ at: at + fault.durationMs, links: cut });
          restoresDue.sort((a, b) => a.at - b.at);
          if (fault.kind === 'outage') outageUntil = at + fault.durationMs;
          met[fault.kind === 'outage' ? 'dbOutages' : 'partitions']++;
          event(
            fault.kind === 'outage'
              ? `the database went away for every process for ${Math.round(fault.durationMs / 1000)} s, while a call of ${who} was in flight`
              : `${who} was cut off from the database (not from Telegram) for ${Math.round(fault.durationMs / 1000)} s, while one of its calls was in flight`,
          );
        },
        startCut: clock.now().getTime() < outageUntil,
      });
      replicas.push(replica);
      return replica;
    };
    for (let i = 0; i < options.replicas; i++) await startReplica();

    const running = () => replicas.filter((r) => r.state !== 'gone');
    const letActionsEnd = async () => {
      for (;;) {
        const live = running();
        if (live.every((r) => r.quiet())) return;
        await Promise.race([
          clock.untilSomeoneSleeps(),
          ...live.filter((r) => r.daemon.busyActions() > 0).map((r) => r.daemon.anyActionEnds()),
          ...live.map((r) => r.gateway.died),
          ...live.flatMap((r) => (r.stopped ? [r.stopped] : [])),
        ]);
      }
    };

    const days: DayReport[] = [];
    let nextMaintenance = startMs + MAINTENANCE_EVERY_MS;
    let nextDay = startMs + DAY_MS;
    let nextDayReport = nextDay + DAY_REPORT_DELAY_MS;
    for (;;) {
      const now = clock.now().getTime();
      // Processes: a crash that happened, a stop that finished, a restart due.
      for (const r of running()) {
        if (r.gateway.crashed) {
          await r.crash();
          event(`${r.name} crashed between sending a post and recording it`);
        }
      }
      for (const r of replicas) {
        if (r.state === 'gone' && !r.replaced) {
          // A supervisor (Docker's restart policy) starts a new process a little later.
          r.replaced = true;
          if (!r.gateway.crashed) event(`${r.name} stopped (${r.stopResult ?? 'unknown'})`);
          restartsDue.push(now + RESTART_AFTER_MS);
        }
      }
      while (restartsDue.length && restartsDue[0]! <= now) {
        restartsDue.shift();
        const r = await startReplica();
        event(`${r.name} started`);
      }
      while (crashes.length && crashes[0]! <= now) {
        crashes.shift();
        crashArmed = true;
      }
      while (restoresDue.length && restoresDue[0]!.at <= now) {
        for (const link of restoresDue.shift()!.links) link.restore();
      }
      while (dbFaults.length && dbFaults[0]!.at <= now) dbFaultsArmed.push(dbFaults.shift()!);
      while (renames.length && renames[0]!.at <= now) {
        const { link } = renames.shift()!;
        fake.rename(link);
        met.renames++;
      }
      while (restarts.length && restarts[0]! <= now) {
        restarts.shift();
        const victim =
          running().find((r) => r.state === 'running' && r.daemon.drivenAccounts().length > 0) ?? running()[0];
        if (victim) {
          event(`${victim.name} got SIGTERM`);
          victim.stop(settings.shutdownGraceMs);
        }
      }
      if (now >= nextMaintenance) {
        await vacuumAnalyzeTables(admin);
        nextMaintenance += MAINTENANCE_EVERY_MS;
      }
      if (now >= nextDay) {
        const live = running().find((r) => r.state === 'running' && !r.link.isCut);
        // The midnight job may meet an outage, as it may in production: nothing depends on it.
        if (live) await midnight(live.daemon, clock, options.log).catch(() => undefined);
        nextDay += DAY_MS;
      }
      if (now >= nextDayReport || now >= endMs) {
        const day = Math.round((nextDayReport - DAY_REPORT_DELAY_MS - startMs) / DAY_MS);
        if (day <= options.days && days.length < day) {
          const report = await dayReport(
            admin,
            fake.calls,
            startMs,
            day,
            settings.peerFloodPauseMs,
            plan.sessionDeaths,
            { window, rampUp: settings.rampUp },
          );
          days.push(report);
          options.onDay?.(report, Date.now() - started);
        }
        nextDayReport += DAY_MS;
      }
      if (now >= endMs && days.length >= options.days) break;

      // One round for each process that has an account due (or has not looked for a while).
      // One action starts per round, so that actions never race: the same seed, the same run.
      let startedOne = false;
      for (const r of running()) {
        if (r.state !== 'running') continue;
        if ((r.daemon.nextWakeAt() ?? Infinity) <= now || now - r.lastRoundAt >= ROUND_EVERY_MS) {
          r.lastRoundAt = now;
          const before = r.daemon.actionsStarted;
          await r.daemon.tick();
          startedOne ||= r.daemon.actionsStarted > before;
        }
      }
      await letActionsEnd();
      // A process that died or stopped meanwhile is dealt with before time moves on.
      if (running().some((r) => r.gateway.crashed) || replicas.some((r) => r.state === 'gone' && !r.replaced)) continue;
      // Wake the answers due, one at a time.
      if (clock.wakeOne()) {
        await letActionsEnd();
        continue;
      }
      // Another account due at this instant starts next.
      if (startedOne) continue;
      if (replicas.some((r) => r.state === 'stopping')) {
        // Nothing in flight, a stop finishing: let it finish at this instant.
        await letActionsEnd();
        if (replicas.some((r) => r.state === 'gone' && !r.replaced)) continue;
      }
      // Then jump to the next thing due.
      const candidates = [
        clock.nextTimerAt() ?? Infinity,
        ...running().map((r) =>
          r.state === 'running' ? Math.max(r.daemon.nextWakeAt() ?? Infinity, now + SECOND_MS) : Infinity,
        ),
        ...running().map((r) => (r.state === 'running' ? r.lastRoundAt + ROUND_EVERY_MS : Infinity)),
        nextDay,
        nextMaintenance,
        nextDayReport,
        endMs,
        crashes[0] ?? Infinity,
        restarts[0] ?? Infinity,
        restartsDue[0] ?? Infinity,
        restoresDue[0]?.at ?? Infinity,
        dbFaults[0]?.at ?? Infinity,
        renames[0]?.at ?? Infinity,
      ];
      const next = Math.min(...candidates);
      clock.set(new Date(Math.max(next, now + 1)));
    }

    // The end: the database is back for all, every process stops cleanly, then the checks.
    for (const r of running()) r.link.restore();
    for (const r of running()) if (r.state === 'running') r.stop(settings.shutdownGraceMs);
    while (running().length > 0) {
      await letActionsEnd();
      if (!clock.wakeOne()) {
        const next = clock.nextTimerAt();
        if (next === undefined) await Promise.all(running().map((r) => r.stopped));
        else clock.set(new Date(next));
      }
    }
    const invariants = await checkInvariants({
      dataSource: admin,
      calls: fake.calls,
      fakeViolations: fake.violations(),
      ledger,
    });
    const sum = (f: (d: DayReport) => number) => days.reduce((a, d) => a + f(d), 0);
    const posts = sum((d) => d.posts);
    const maxPosts = sum((d) => d.maxPosts);
    const calls = fake.calls.filter((c) => c.op !== 'disconnect');
    const telegramCalls = calls.length + calls.reduce((n, c) => n + (c.lookups ?? 0), 0);
    const actions = calls.filter((c) => (c.op === 'join' && c.joinedChat) || (c.op === 'post' && c.delivered)).length;
    const closedAliases = await countClosedAliases(admin, [...plan.aliases.keys()]);
    const renamedAt = new Map(plan.renames.map((r) => [r.link, r.at]));
    const faults: FaultCounts = {
      dbOutages: met.dbOutages,
      partitions: met.partitions,
      lostJoins: calls.filter((c) => c.op === 'join' && c.joinedChat && c.outcome?.kind === 'transient').length,
      aliases: plan.aliases.size,
      aliasesClosed: closedAliases,
      renames: met.renames,
      postsAfterRename: calls.filter(
        (c) => c.op === 'post' && c.delivered && c.at.getTime() >= (renamedAt.get(c.link ?? '') ?? Infinity),
      ).length,
      restrictedAccounts: plan.restrictions.size,
      restrictedRefusals: calls.filter((c) => c.restricted).length,
      crashes: events.filter((e) => e.what.includes('crashed')).length,
      restarts: events.filter((e) => e.what.includes('got SIGTERM')).length,
    };
    return {
      options: {
        accounts: options.accounts,
        groups: options.groups,
        days: options.days,
        seed: options.seed,
        chaos: options.chaos,
        replicas: options.replicas,
        ...(options.seasoned ? { seasoned: true } : {}),
        start: new Date(startMs).toISOString(),
        postingHours: settings.postingHours,
        timeZone: settings.timeZone,
        spread: settings.spread,
      },
      days,
      totals: {
        joins: sum((d) => d.joins),
        posts,
        maxPosts,
        utilization: maxPosts > 0 ? posts / maxPosts : null,
        floodWaits: sum((d) => d.floodWaits),
        groupBans: sum((d) => d.groupBans),
        sessionsLost: sum((d) => d.sessionsLost),
        telegramCalls,
        callsPerAction: actions > 0 ? telegramCalls / actions : null,
      },
      faults,
      invariants,
      violations: invariants.reduce((n, c) => n + c.violations.length, 0),
      hourly: hourly(fake.calls, startMs, options.days * 24, window),
      pacing: pacing(fake.calls, window),
      events,
      wallMs: Date.now() - started,
    };
  } finally {
    for (const r of replicas) if (r.state !== 'gone') await r.crash().catch(() => undefined);
    await admin.destroy();
  }
}

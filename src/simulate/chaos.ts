/**
 * What goes wrong in a simulation, and how often. A plan is drawn once from the seed (which
 * groups are dead links, ask for approval, ban us or go read-only, which sessions die and when,
 * when a process crashes or restarts); the answers to single calls (a FloodWait, a slow mode, a
 * network error) are drawn from the seed and the call itself, so the same seed gives the same
 * faults whatever order concurrent actions happen to reach the fake in.
 */
import { HOUR_MS, MINUTE_MS } from '../clock';
import { hashed, seeded } from '../random';
import type { FakeCall, FakeTelegram } from '../telegram/fakeGateway';
import type { JoinOutcome, PostOutcome } from '../telegram/outcomes';

export const CHAOS_LEVELS = ['none', 'some', 'heavy'] as const;
export type ChaosLevel = (typeof CHAOS_LEVELS)[number];

export interface ChaosRates {
  /** Per join or post: Telegram answers FLOOD_WAIT. */
  floodWait: number;
  /** Per join or post: a network error (half of the posts' ones after the message went out). */
  transient: number;
  /** Per post: SLOWMODE_WAIT. */
  slowMode: number;
  /** Share of groups whose link leads nowhere. */
  deadLinks: number;
  /** Share of groups that need an admin's approval to join. */
  joinRequests: number;
  /** Share of groups that ban us at some post. */
  bans: number;
  /** Share of groups that become read-only at some post. */
  readOnly: number;
  /** Share of groups that take no photos. */
  textOnly: number;
  /** Sessions that die during the run (revoked on another device). */
  sessionsDying: number;
  /** Accounts Telegram limits (PEER_FLOOD) once. */
  peerFloods: number;
  /** Processes that crash between sending a post and recording it (then restart). */
  crashes: number;
  /** Clean restarts (SIGTERM, then a new process). */
  restarts: number;
  /** Database outages for every process, each starting while a Telegram call is in flight. */
  dbOutages: number;
  /** One process cut off from the database (not from Telegram), starting while one of its calls is in flight. */
  partitions: number;
  /** Per join: it happened, but its answer is a timeout. */
  lostJoins: number;
  /** Share of groups that also have a second link (another username of the same chat). */
  aliases: number;
  /** Share of groups that change their username at some point (their old link then leads nowhere). */
  renames: number;
  /** Accounts Telegram restricts for spam: every group refuses them, for one to three days. */
  restrictions: number;
}

export const CHAOS: Record<ChaosLevel, ChaosRates> = {
  none: {
    floodWait: 0,
    transient: 0,
    slowMode: 0,
    deadLinks: 0,
    joinRequests: 0,
    bans: 0,
    readOnly: 0,
    textOnly: 0,
    sessionsDying: 0,
    peerFloods: 0,
    crashes: 0,
    restarts: 0,
    dbOutages: 0,
    partitions: 0,
    lostJoins: 0,
    aliases: 0,
    renames: 0,
    restrictions: 0,
  },
  some: {
    floodWait: 0.005,
    transient: 0.005,
    slowMode: 0.01,
    deadLinks: 0.02,
    joinRequests: 0.03,
    bans: 0.01,
    readOnly: 0.005,
    textOnly: 0.02,
    sessionsDying: 1,
    peerFloods: 0,
    crashes: 1,
    restarts: 1,
    dbOutages: 1,
    partitions: 1,
    lostJoins: 0.01,
    aliases: 0.01,
    renames: 0.01,
    restrictions: 1,
  },
  heavy: {
    floodWait: 0.03,
    transient: 0.03,
    slowMode: 0.05,
    deadLinks: 0.05,
    joinRequests: 0.08,
    bans: 0.04,
    readOnly: 0.02,
    textOnly: 0.05,
    sessionsDying: 3,
    peerFloods: 2,
    crashes: 4,
    restarts: 2,
    dbOutages: 3,
    partitions: 3,
    lostJoins: 0.03,
    aliases: 0.03,
    renames: 0.03,
    restrictions: 2,
  },
};

/** A database outage (every process) or a partition (the process whose call is in flight), from a call on. */
export interface DbFault {
  /** From this instant, the next Telegram call's answer starts it. */
  at: number;
  kind: 'outage' | 'partition';
  durationMs: number;
}

export interface ChaosPlan {
  level: ChaosLevel;
  seed: number;
  rates: ChaosRates;
  deadLinks: Set<string>;
  joinRequests: Set<string>;
  /** Groups that refuse us from their n-th post on (1-based), and how. */
  refusals: Map<string, { fromPost: number; reason: 'banned' | 'read_only' }>;
  textOnly: Set<string>;
  /** Account -> when its session dies (ms). */
  sessionDeaths: Map<string, number>;
  /** Account -> when Telegram limits it (ms). */
  peerFloods: Map<string, number>;
  /** When a process crashes (at its first post from then on), in ms. */
  crashes: number[];
  /** When a process is restarted cleanly, in ms. */
  restarts: number[];
  /** Database outages and partitions, in time order. */
  dbFaults: DbFault[];
  /** A second link (key) for a group's chat (value). */
  aliases: Map<string, string>;
  /** Groups whose username changes, and when (ms), in time order. */
  renames: { link: string; at: number }[];
  /** Accounts Telegram restricts for spam, from when until when (ms). */
  restrictions: Map<string, { from: number; until: number }>;
}

/** Draws the plan: `count` items of `list`, without repeats, from the generator. */
function pick<T>(list: readonly T[], count: number, random: () => number): T[] {
  const pool = [...list];
  const chosen: T[] = [];
  while (chosen.length < count && pool.length > 0) chosen.push(pool.splice(Math.floor(random() * pool.length), 1)[0]!);
  return chosen;
}

export function planChaos(
  level: ChaosLevel,
  seed: number,
  accounts: readonly string[],
  links: readonly string[],
  startMs: number,
  endMs: number,
): ChaosPlan {
  const rates = CHAOS[level];
  const random = seeded(seed ^ 0x5eed);
  const share = (rate: number) => Math.round(links.length * rate);
  // Faults that stop an account or a process fall after the first day, once posting has begun.
  const later = () => startMs + 24 * HOUR_MS + Math.floor(random() * Math.max(1, endMs - startMs - 26 * HOUR_MS));
  const groups = pick(
    links,
    share(rates.deadLinks) + share(rates.joinRequests) + share(rates.bans) + share(rates.readOnly),
    random,
  );
  const deadLinks = new Set(groups.splice(0, share(rates.deadLinks)));
  const joinRequests = new Set(groups.splice(0, share(rates.joinRequests)));
  const refusals = new Map<string, { fromPost: number; reason: 'banned' | 'read_only' }>();
  for (const link of groups.splice(0, share(rates.bans)))
    refusals.set(link, { fromPost: 1 + Math.floor(random() * 6), reason: 'banned' });
  for (const link of groups) refusals.set(link, { fromPost: 1 + Math.floor(random() * 6), reason: 'read_only' });
  const textOnly = new Set(pick(links, share(rates.textOnly), random));
  const dying = pick(accounts, Math.min(rates.sessionsDying, Math.floor(accounts.length / 2)), random);
  const limited = pick(
    accounts.filter((a) => !dying.includes(a)),
    Math.min(rates.peerFloods, Math.floor(accounts.length / 2)),
    random,
  );
  const restricted = pick(
    accounts.filter((a) => !dying.includes(a) && !limited.includes(a)),
    Math.min(rates.restrictions, Math.floor(accounts.length / 3)),
    random,
  );
  // Faults of this issue are drawn after the older ones, so a seed keeps its older faults. They
  // fall a day before the end at the latest, so that a call meets each of them.
  const early = () => startMs + 24 * HOUR_MS + Math.floor(random() * Math.max(1, endMs - startMs - 48 * HOUR_MS));
  const dbFaults: DbFault[] = [
    ...Array.from(
      { length: rates.dbOutages },
      (): DbFault => ({ at: early(), kind: 'outage', durationMs: 20_000 + Math.floor(random() * 160_000) }),
    ),
    ...Array.from(
      { length: rates.partitions },
      (): DbFault => ({ at: early(), kind: 'partition', durationMs: 60_000 + Math.floor(random() * 540_000) }),
    ),
  ].sort((a, b) => a.at - b.at);
  // A second link leads to a live chat, and a group renamed is one that exists.
  const live = links.filter((l) => !deadLinks.has(l));
  const aliased = pick(live, share(rates.aliases), random);
  const renamed = pick(
    live.filter((l) => !aliased.includes(l)),
    share(rates.renames),
    random,
  );
  return {
    level,
    seed,
    rates,
    deadLinks,
    joinRequests,
    refusals,
    textOnly,
    sessionDeaths: new Map(dying.map((a) => [a, later()])),
    peerFloods: new Map(limited.map((a) => [a, later()])),
    crashes: Array.from({ length: rates.crashes }, later).sort((a, b) => a - b),
    restarts: Array.from({ length: rates.restarts }, later).sort((a, b) => a - b),
    dbFaults,
    aliases: new Map(aliased.map((link) => [`${link}_alt`, link])),
    renames: renamed.map((link) => ({ link, at: early() })).sort((a, b) => a.at - b.at),
    restrictions: new Map(
      restricted.map((a) => {
        const from = early();
        return [a, { from, until: from + (1 + Math.floor(random() * 3)) * 24 * HOUR_MS }];
      }),
    ),
  };
}

/** A FloodWait's length: mostly seconds, sometimes minutes, rarely hours, as Telegram does. */
function floodWaitSeconds(r: number): number {
  if (r < 0.7) return 5 + Math.floor((r / 0.7) * 55);
  if (r < 0.95) return 60 + Math.floor(((r - 0.7) / 0.25) * 840);
  return 3600 + Math.floor(((r - 0.95) / 0.05) * 3 * 3600);
}

type Decision = { outcome: JoinOutcome | PostOutcome; delivers: boolean } | undefined;

/**
 * Scripts the fake with the plan. A call draws from hashed(seed, its account, its group, how
 * many calls that account made before): the same run, the same answers.
 */
export function scriptTelegram(fake: FakeTelegram, plan: ChaosPlan): void {
  const { rates, seed } = plan;
  const callsOf = new Map<string, number>();
  const postsTo = new Map<string, number>();
  const asks = new Map<string, number>();
  const decided = new WeakMap<FakeCall, Decision>();
  const accountGone = (call: FakeCall): Decision => {
    const dies = plan.sessionDeaths.get(call.account);
    if (dies !== undefined && call.at.getTime() >= dies)
      return { outcome: { kind: 'session_dead', error: 'AUTH_KEY_UNREGISTERED' }, delivers: false };
    const limited = plan.peerFloods.get(call.account);
    if (limited !== undefined && call.at.getTime() >= limited && call.at.getTime() < limited + 10 * MINUTE_MS) {
      return { outcome: { kind: 'account_limited', error: 'PEER_FLOOD' }, delivers: false };
    }
    return undefined;
  };
  const decide = (call: FakeCall): Decision => {
    if (decided.has(call)) return decided.get(call);
    const n = callsOf.get(call.account) ?? 0;
    callsOf.set(call.account, n + 1);
    const r = (what: string) => hashed(seed, what, call.account, call.link ?? '', n);
    const link = call.link ?? '';
    let decision: Decision = accountGone(call);
    if (!decision && call.op === 'join') {
      if (plan.deadLinks.has(link))
        decision = { outcome: { kind: 'link_dead', error: 'INVITE_HASH_EXPIRED' }, delivers: false };
      else if (r('flood') < rates.floodWait) decision = floodWait(r('flood_s'));
      else if (r('lost_join') < rates.lostJoins)
        decision = { outcome: { kind: 'transient', error: 'request timed out', uncertain: true }, delivers: true };
      else if (r('transient') < rates.transient)
        decision = { outcome: { kind: 'transient', error: 'RPC_CALL_FAIL', uncertain: true }, delivers: false };
      else if (plan.joinRequests.has(link)) {
        const asked = asks.get(link) ?? 0;
        asks.set(link, asked + 1);
        // An admin approves after a while, or never.
        if (asked === 0 || r('approve') < 0.4)
          decision = { outcome: { kind: 'join_request_pending', error: 'INVITE_REQUEST_SENT' }, delivers: false };
      }
    } else if (!decision && call.op === 'post') {
      const refusal = plan.refusals.get(link);
      const nth = (postsTo.get(link) ?? 0) + 1;
      if (refusal && nth >= refusal.fromPost) {
        decision =
          refusal.reason === 'banned'
            ? { outcome: { kind: 'group_refuses', reason: 'banned', error: 'USER_BANNED_IN_CHANNEL' }, delivers: false }
            : {
                outcome: { kind: 'group_refuses', reason: 'read_only', error: 'CHAT_WRITE_FORBIDDEN' },
                delivers: false,
              };
      } else if (plan.textOnly.has(link) && call.message?.photoPath) {
        decision = { outcome: { kind: 'media_forbidden', error: 'CHAT_SEND_PHOTOS_FORBIDDEN' }, delivers: false };
      } else if (r('flood') < rates.floodWait) decision = floodWait(r('flood_s'));
      else if (r('slow') < rates.slowMode) {
        const seconds = 60 + Math.floor(r('slow_s') * 3540);
        decision = {
          outcome: { kind: 'group_slow_mode', seconds, error: `SLOWMODE_WAIT_${seconds}` },
          delivers: false,
        };
      } else if (r('transient') < rates.transient) {
        // A timeout: half of them after the message went out (the daemon cannot tell which).
        const uncertain = r('uncertain') < 0.5;
        decision = {
          outcome: { kind: 'transient', error: uncertain ? 'request timed out' : 'RPC_CALL_FAIL', uncertain },
          delivers: uncertain && r('delivered') < 0.5,
        };
      }
      if (!decision || decision.delivers) postsTo.set(link, nth);
    }
    decided.set(call, decision);
    return decision;
  };
  const floodWait = (r: number): Decision => {
    const seconds = floodWaitSeconds(r);
    return { outcome: { kind: 'account_flood_wait', seconds, error: `FLOOD_WAIT_${seconds}` }, delivers: false };
  };
  if (plan.level === 'none') return;
  for (const [alias, of] of plan.aliases) fake.alias(alias, of);
  for (const [account, { from, until }] of plan.restrictions) fake.restrict(account, new Date(from), new Date(until));
  fake.on({ op: 'connect', outcome: (call) => accountGone(call)?.outcome as never });
  // A lookup of a dead link already says so; an account gone or limited is so for every call.
  fake.on({
    op: 'lookup',
    outcome: (call) =>
      plan.deadLinks.has(call.link ?? '')
        ? { kind: 'link_dead', error: 'USERNAME_NOT_OCCUPIED' }
        : (accountGone(call)?.outcome as never),
  });
  // Two join rules, as for posts: the first answers the joins that happened although the answer says otherwise.
  fake.on({
    op: 'join',
    delivers: true,
    outcome: (call) => (decide(call)?.delivers ? (decide(call)!.outcome as JoinOutcome) : undefined),
  });
  fake.on({
    op: 'join',
    outcome: (call) => (decide(call)?.delivers ? undefined : (decide(call)?.outcome as JoinOutcome | undefined)),
  });
  // Two post rules: the first answers the lost answers (delivered although the answer is an error).
  fake.on({
    op: 'post',
    delivers: true,
    outcome: (call) => (decide(call)?.delivers ? (decide(call)!.outcome as PostOutcome) : undefined),
  });
  fake.on({
    op: 'post',
    outcome: (call) => (decide(call)?.delivers ? undefined : (decide(call)?.outcome as PostOutcome | undefined)),
  });
}

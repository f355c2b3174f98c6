/**
 * The simulator's proof that the rules held, computed afresh from what happened, never from the
 * daemon's own counters: `post_history` as stored, and the fake Telegram's record of every call
 * and of what reached a group. Each check lists its violations; an empty list is a pass.
 */
import type { DataSource } from 'typeorm';
import { ACCOUNT_DAILY_POST_LIMIT, GROUP_DAILY_POST_LIMIT, WARMUP_MS } from '../sql/rules';
import { loadBannedGroups, loadCountedPosts, loadGroupBindings } from '../sql/simulation';
import type { FakeCall, FakeTelegram } from '../telegram/fakeGateway';
import type { SessionLedger } from './replica';

export interface InvariantCheck {
  name: string;
  violations: string[];
}

const day = (at: Date) => at.toISOString().slice(0, 10);

/** The chat a call was about (a call recorded without one was about its link's own chat). */
const chatOf = (c: FakeCall) => c.chat ?? c.link;

/** Keys seen more than `limit` times, with their counts. */
function overLimit(keys: string[], limit: number): [string, number][] {
  const counts = new Map<string, number>();
  for (const key of keys) counts.set(key, (counts.get(key) ?? 0) + 1);
  return [...counts].filter(([, n]) => n > limit);
}

export interface InvariantInput {
  dataSource: DataSource;
  calls: readonly FakeCall[];
  fakeViolations: ReturnType<FakeTelegram['violations']>;
  ledger: Pick<SessionLedger, 'overlaps'>;
}

export async function checkInvariants(input: InvariantInput): Promise<InvariantCheck[]> {
  const ds = input.dataSource;
  const history = await loadCountedPosts(ds);
  const bindings = await loadGroupBindings(ds);
  const boundTo = new Map(bindings.map((b) => [b.link, b.bound]));
  const delivered = input.calls.filter((c) => c.op === 'post' && c.delivered);
  const at = (c: { at: Date }) => c.at.toISOString();

  // Rule 1: only the bound account posts in a group; and once one of our accounts has joined a
  // group (as Telegram saw it, whatever the database recorded), no other one joins or posts there.
  const firstJoiner = new Map<string, string>();
  const secondAccount: string[] = [];
  for (const c of input.calls) {
    if (!c.link) continue;
    // Joined as Telegram saw it: an answer that says so, or a lost answer of a join that happened.
    const joined =
      c.op === 'join' &&
      (c.joinedChat === true || c.outcome?.kind === 'joined' || c.outcome?.kind === 'already_member');
    if (!joined && !(c.op === 'post' && c.delivered)) continue;
    const first = firstJoiner.get(c.link);
    if (first === undefined) {
      if (joined) firstJoiner.set(c.link, c.account);
    } else if (first !== c.account) {
      secondAccount.push(
        `${at(c)} ${c.account} ${joined ? 'joined' : 'posted in'} ${c.link}, which ${first} had joined`,
      );
    }
  }
  const strangers = [
    ...history
      .filter((h) => h.account !== h.bound)
      .map((h) => `post_history #${h.id}: ${h.account} posted in ${h.link}, bound to ${h.bound ?? 'nobody'}`),
    ...delivered
      .filter((c) => boundTo.get(c.link!) !== c.account)
      .map(
        (c) =>
          `${at(c)} Telegram got a post in ${c.link} from ${c.account}, bound to ${boundTo.get(c.link!) ?? 'nobody'}`,
      ),
    ...secondAccount,
  ];

  // Rule 3, per UTC day.
  const groupDays = [
    ...overLimit(
      history.map((h) => `${h.link} on ${day(h.created_at)} (post_history)`),
      GROUP_DAILY_POST_LIMIT,
    ),
    ...overLimit(
      delivered.map((c) => `${c.link} on ${day(c.at)} (Telegram)`),
      GROUP_DAILY_POST_LIMIT,
    ),
  ].map(([key, n]) => `${n} posts in ${key}`);
  const accountDays = [
    ...overLimit(
      history.map((h) => `${h.account} on ${day(h.created_at)} (post_history)`),
      ACCOUNT_DAILY_POST_LIMIT,
    ),
    ...overLimit(
      delivered.map((c) => `${c.account} on ${day(c.at)} (Telegram)`),
      ACCOUNT_DAILY_POST_LIMIT,
    ),
  ].map(([key, n]) => `${n} posts by ${key}`);

  // Rule 2: silence for 24 h after joining, as stored and as Telegram saw the join.
  const joinedAt = new Map<string, number>();
  const warmup: string[] = history
    .filter((h) => h.joined_at === null || h.created_at.getTime() < h.joined_at.getTime() + WARMUP_MS)
    .map(
      (h) =>
        `post_history #${h.id}: ${h.account} posted in ${h.link} at ${h.created_at.toISOString()}, joined ${h.joined_at?.toISOString() ?? 'never'}`,
    );
  for (const c of input.calls) {
    const key = `${c.account} ${c.link}`;
    if (
      c.op === 'join' &&
      (c.joinedChat === true || c.outcome?.kind === 'joined' || c.outcome?.kind === 'already_member') &&
      !joinedAt.has(key)
    )
      joinedAt.set(key, c.at.getTime());
    if (c.op === 'post' && c.delivered) {
      const joined = joinedAt.get(key);
      if (joined === undefined || c.at.getTime() < joined + WARMUP_MS) {
        warmup.push(
          `${at(c)} ${c.account} posted in ${c.link}, ${joined === undefined ? 'never joined' : `joined ${new Date(joined).toISOString()}`}`,
        );
      }
    }
  }

  // Rule 4 and slow modes: Telegram's own record of calls made against its decisions.
  const waits = input.fakeViolations
    .filter((v) => v.what !== 'call to a group that refused this account')
    .map((v) => `${v.at.toISOString()} ${v.account}${v.link ? ` ${v.link}` : ''}: ${v.what}`);

  // A group that refused us (banned, read-only, ...) is never tried again, by any account, through
  // any of its links. A refusal that came from an account's restriction is not the group's.
  const refusedAt = new Map<string, number>();
  const afterRefusal: string[] = [];
  for (const c of input.calls) {
    const chat = chatOf(c);
    if (!chat || (c.op !== 'post' && c.op !== 'join')) continue;
    const refused = refusedAt.get(chat);
    if (refused !== undefined && c.at.getTime() >= refused)
      afterRefusal.push(
        `${at(c)} ${c.account} ${c.op} in ${c.link}, which refused us at ${new Date(refused).toISOString()}`,
      );
    if (c.outcome?.kind === 'group_refuses' && !c.restricted && refused === undefined)
      refusedAt.set(chat, c.at.getTime());
  }

  // A group is a chat: at most 2 posts a day reach it, and one account of ours is in it (the
  // first one Telegram saw join it, whatever link it came through).
  const chatDays = overLimit(
    delivered.map((c) => `${chatOf(c)} on ${day(c.at)}`),
    GROUP_DAILY_POST_LIMIT,
  ).map(([key, n]) => `${n} posts reached chat ${key}`);
  const chatMember = new Map<string, string>();
  const secondInChat: string[] = [];
  for (const c of input.calls) {
    const chat = chatOf(c);
    const joined =
      c.op === 'join' &&
      (c.joinedChat === true || c.outcome?.kind === 'joined' || c.outcome?.kind === 'already_member');
    if (!chat || !(joined || (c.op === 'post' && c.delivered))) continue;
    const first = chatMember.get(chat);
    if (first === undefined) chatMember.set(chat, c.account);
    else if (first !== c.account)
      secondInChat.push(
        `${at(c)} ${c.account} ${joined ? 'joined' : 'posted in'} chat ${chat} (through ${c.link}), which ${first} is in`,
      );
  }

  // A restricted account's refusals are its own state: no group is closed for them.
  const closed = await loadBannedGroups(ds);
  const refusedByGroup = new Set(
    input.calls.filter((c) => c.outcome?.kind === 'group_refuses' && !c.restricted).map(chatOf),
  );
  const chatOfLink = new Map(input.calls.map((c) => [c.link, chatOf(c)]));
  const closedForRestriction = closed
    .filter((t) => !refusedByGroup.has(chatOfLink.get(t.link) ?? t.link))
    .map((t) => `${t.link} is closed (${t.status}), but only an account's restriction ever refused it`);

  // One process per session.
  const twice = [
    ...input.ledger.overlaps.map(
      (o) => `${o.at.toISOString()} ${o.account}: used by ${o.replicas[1]} while ${o.replicas[0]} had it connected`,
    ),
    ...input.calls
      .filter(
        (c) => c.op === 'connect' && c.outcome?.kind === 'session_dead' && c.outcome.error === 'AUTH_KEY_DUPLICATED',
      )
      .map((c) => `${at(c)} ${c.account}: Telegram saw the session twice (AUTH_KEY_DUPLICATED)`),
  ];

  return [
    { name: 'posts only from the bound account, and one account per group', violations: strangers },
    { name: `at most ${GROUP_DAILY_POST_LIMIT} posts per group per UTC day`, violations: groupDays },
    { name: `at most ${ACCOUNT_DAILY_POST_LIMIT} posts per account per UTC day`, violations: accountDays },
    { name: 'no post during the 24 h warm-up', violations: warmup },
    { name: 'no action during a FloodWait or slow mode', violations: waits },
    { name: 'no call to a group after it refused us', violations: afterRefusal },
    {
      name: `at most ${GROUP_DAILY_POST_LIMIT} posts per chat per UTC day, and one account per chat (by Telegram's chat id)`,
      violations: [...chatDays, ...secondInChat],
    },
    { name: 'no group closed because of an account-wide restriction', violations: closedForRestriction },
    { name: 'no session driven by two processes at once', violations: twice },
  ];
}

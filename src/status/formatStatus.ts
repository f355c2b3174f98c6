/**
 * `lexus status` as text for a terminal: plain tables whose widths come from their content,
 * no colours. Everything shown comes from the FleetStatus (which holds no secret).
 */

import { inPostingWindow, localTime } from '../daemon/postingWindow';
import { type AccountStatusView, type NextActionView, TARGET_STATUSES } from '../sql/fleet';
import { COUNTED_POST_STATUSES } from '../sql/rules';
import type { FleetStatus } from './loadStatus';

type Align = 'left' | 'right';

/** Control characters (a newline in a reason, an escape sequence in a name) would break the table. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it takes out of a terminal line
const clean = (text: string): string => text.replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ');

const MAX_REASON = 60;

/** Columns separated by two spaces, each as wide as its widest cell; no trailing spaces. */
export function table(headers: string[], rows: string[][], align: Align[] = []): string[] {
  const cells = [headers, ...rows].map((row) => row.map(clean));
  const widths = headers.map((_, i) => Math.max(...cells.map((row) => (row[i] ?? '').length)));
  return cells.map((row) =>
    row
      .map((cell, i) => (align[i] === 'right' ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd(),
  );
}

/** 45s, 12m 30s, 3h 5m, 2d 4h: the two largest units, a zero second unit left out. */
export function formatDuration(ms: number): string {
  const s = Math.floor(Math.abs(ms) / 1000);
  const units: Array<[number, string]> = [
    [Math.floor(s / 86400), 'd'],
    [Math.floor(s / 3600) % 24, 'h'],
    [Math.floor(s / 60) % 60, 'm'],
    [s % 60, 's'],
  ];
  const first = units.findIndex(([n]) => n > 0);
  if (first < 0) return '0s';
  const [big, bigUnit] = units[first]!;
  const small = units[first + 1];
  return small && small[0] > 0 ? `${big}${bigUnit} ${small[0]}${small[1]}` : `${big}${bigUnit}`;
}

/** 2026-03-10 09:00:00 UTC */
export function formatInstant(isoTime: string): string {
  return `${isoTime.slice(0, 10)} ${isoTime.slice(11, 19)} UTC`;
}

const ago = (isoTime: string, now: string): string => {
  const ms = new Date(now).getTime() - new Date(isoTime).getTime();
  if (Math.abs(ms) < 1000) return 'just now';
  return ms > 0 ? `${formatDuration(ms)} ago` : `in ${formatDuration(ms)}`;
};

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** The seed's status values as a person reads them: a banned account is one whose session is dead. */
const statusLabel = (status: string) => (status === 'banned' ? 'needs login' : status);

function statusCell(a: AccountStatusView): string {
  if (a.configProblem) return `${statusLabel(a.status)}, not driven: its settings`;
  if (!a.statusReason) return statusLabel(a.status);
  const reason = a.statusReason.length > MAX_REASON ? `${a.statusReason.slice(0, MAX_REASON - 1)}…` : a.statusReason;
  return `${statusLabel(a.status)}: ${reason}`;
}

function lastActionCell(a: AccountStatusView, now: string): string {
  const last = a.lastAction;
  if (!last) return '-';
  return [last.kind, last.outcome, last.target, ago(last.at, now)].filter((part): part is string => !!part).join(' ');
}

function accountsSection(status: FleetStatus): string[] {
  const { accounts } = status;
  if (accounts.length === 0) {
    return [
      "Accounts: none yet. Import the old system's files (`lexus import --dir PATH`) or log an account in (`lexus login NAME`).",
    ];
  }
  const byStatus = Object.entries(status.accountsByStatus)
    .sort(([x], [y]) => (x < y ? -1 : 1))
    .map(([s, n]) => `${n} ${statusLabel(s)}`)
    .join(', ');
  const lines = [`Accounts: ${accounts.length} (${byStatus})`];
  lines.push(
    ...table(
      [
        'account',
        'status',
        'session',
        'in fleet',
        'posts today',
        'joins today',
        'next post',
        'FloodWait',
        'warming',
        'ready',
        'waiting',
        'done today',
        'closed',
        'last action',
      ],
      accounts.map((a) => [
        a.sessionName,
        statusCell(a),
        a.hasSession ? 'yes' : 'no',
        a.seasoned ? 'seasoned' : a.daysInFleet === null ? 'new' : `day ${a.daysInFleet + 1}`,
        `${a.postsToday ?? '?'}/${a.postsLimit}`,
        `${a.joinsToday}/${a.joinsLimit}`,
        a.nextPostPlannedAt
          ? localTime(new Date(a.nextPostPlannedAt), status.settings.timeZone, new Date(status.now))
          : '-',
        a.floodWaitRemainingMs === null ? '-' : formatDuration(a.floodWaitRemainingMs),
        String(a.groups.warming),
        String(a.groups.ready),
        String(a.groups.waiting),
        String(a.groups.doneForToday),
        String(a.groups.closed),
        lastActionCell(a, status.now),
      ]),
      [
        'left',
        'left',
        'left',
        'left',
        'right',
        'right',
        'right',
        'right',
        'right',
        'right',
        'right',
        'right',
        'right',
        'left',
      ],
    ),
  );
  lines.push(
    'Groups: warming = in the 24 h warm-up; ready = may take a post now; waiting = warmed up, held by the gap,',
    'a hold (slow mode, failing posts, a refused message) or its account; done today = its 2 posts of today made;',
    'closed = banned us or a dead link.',
  );
  const limited = accounts.filter(
    (a) =>
      a.limitedUntil !== null &&
      a.limitedSince !== null &&
      new Date(a.limitedUntil).getTime() + 2 * 86_400_000 > new Date(status.now).getTime(),
  );
  for (const a of limited) {
    const over = new Date(a.limitedUntil!).getTime() <= new Date(status.now).getTime();
    lines.push(
      `Limited by Telegram: ${a.sessionName} since ${formatInstant(a.limitedSince!)}${a.statusReason ? ` (${a.statusReason})` : ''}; ` +
        (over
          ? `paused until ${formatInstant(a.limitedUntil!)}, now back at ${a.postsLimit} posts and ${a.joinsLimit} joins today`
          : `paused until ${formatInstant(a.limitedUntil!)}, then back at half its budget, growing daily`),
    );
  }
  const needLogin = accounts.filter((a) => a.needsLogin);
  if (needLogin.length > 0) {
    const names = needLogin
      .map(
        (a) => `${a.sessionName} (${a.status === 'banned' ? (a.statusReason ?? 'its session is dead') : 'no session'})`,
      )
      .join(', ');
    lines.push(`Needs a login: ${names}  ->  lexus login NAME`);
  }
  for (const a of accounts.filter((x) => x.configProblem)) {
    lines.push(
      `Not driven, its settings cannot be used: ${a.sessionName}: ${a.configProblem}  ->  fix them in accounts_config.json and run lexus import again`,
    );
  }
  // Who drives each account, what Telegram last said to it, and what its next attempt waits for.
  lines.push(
    '',
    ...table(
      ['account', 'driven by', 'last connect', 'next attempt', 'waits for'],
      accounts.map((a) => [
        a.sessionName,
        a.drivenBy ?? '-',
        a.lastConnect ? `${a.lastConnect.outcome} ${ago(a.lastConnect.at, status.now)}` : '-',
        a.next.at ? localTime(new Date(a.next.at), status.settings.timeZone, new Date(status.now)) : '-',
        a.next.waitsFor,
      ]),
      ['left', 'left', 'left', 'right', 'left'],
    ),
  );
  const canBeDriven = accounts.filter((a) => !a.needsLogin && !a.configProblem);
  if (canBeDriven.length > 0 && canBeDriven.every((a) => !a.drivenBy)) {
    lines.push(
      `No daemon drives any account: none runs (lexus start), or each has lost its database; ${plural(canBeDriven.length, 'account')} could be driven.`,
    );
  }
  return lines;
}

function nichesSection(status: FleetStatus): string[] {
  const total = Object.values(status.targetsByStatus).reduce((sum, n) => sum + n, 0);
  if (total === 0) return ["Groups: none yet. `lexus import --dir PATH` adds the old system's groups."];
  const statuses = [
    ...TARGET_STATUSES,
    ...Object.keys(status.targetsByStatus)
      .filter((s) => !(TARGET_STATUSES as readonly string[]).includes(s))
      .sort(),
  ];
  const rows = status.niches.map((n) => [
    n.niche,
    n.served ? 'yes' : 'no',
    ...statuses.map((s) => String(n.byStatus[s] ?? 0)),
    String(n.total),
  ]);
  if (status.niches.length > 1)
    rows.push(['total', '', ...statuses.map((s) => String(status.targetsByStatus[s] ?? 0)), String(total)]);
  return [
    `Groups by niche: ${total}`,
    ...table(['niche', 'served', ...statuses, 'total'], rows, [
      'left',
      'left',
      ...statuses.map((): Align => 'right'),
      'right',
    ]),
    ...status.duplicates.map(
      (d) =>
        `Duplicate: ${d.link} is ${d.reason ?? 'a second link of a chat another row stands for'}; never joined or posted to`,
    ),
  ];
}

function postsLine(status: FleetStatus): string {
  const counted: readonly string[] = COUNTED_POST_STATUSES;
  const parts = counted.map((s) => `${s} ${status.postsTodayByStatus[s] ?? 0}`);
  const notSent = Object.entries(status.postsTodayByStatus)
    .filter(([s]) => !counted.includes(s))
    .map(([s, n]) => `${s} ${n}`);
  return (
    `Posts today (since 00:00 UTC): ${status.postsToday} of at most ${status.maxPostsToday} the rules allow (${parts.join(', ')})` +
    (notSent.length ? `; not sent: ${notSent.join(', ')}` : '')
  );
}

function nextActionLine(status: FleetStatus): string {
  const next: NextActionView | null = status.nextAction;
  if (next) {
    const what = `${next.account} can ${next.kind} ${next.kind === 'post' ? 'to ' : ''}${next.target}`;
    if (next.now) return `Next action: now: ${what}`;
    const waiting = next.waitingFor.length ? ` (waiting for: ${next.waitingFor.join(', ')})` : '';
    return `Next action: ${formatInstant(next.at)} (in ${formatDuration(next.inMs)}): ${what}${waiting}`;
  }
  if (status.accounts.length === 0) return 'Next action: none: there is no account yet.';
  if (!status.accounts.some((a) => !a.needsLogin && !a.configProblem)) {
    return 'Next action: none: no account can act (each is banned, has no session or has settings that cannot be used): lexus login NAME, or fix its settings and lexus import.';
  }
  return `Next action: none in sight: no group to join or post in, in the niches served (${status.settings.niches.join(', ')}).`;
}

export function formatStatus(status: FleetStatus): string {
  const s = status.settings;
  const lines = [
    `Lexus status at ${formatInstant(status.now)}`,
    `Niches served: ${s.niches.join(', ')}; joins per account per day: ${s.joinsPerAccountPerDay}; gap between two posts in a group: ${formatDuration(s.groupMinGapMs)}`,
    `Posting hours: ${String(s.postingHours.start).padStart(2, '0')}-${String(s.postingHours.end).padStart(2, '0')} ${s.timeZone} (${inPostingWindow(new Date(status.now), s.postingHours, s.timeZone) ? 'open now' : 'closed now'}; next post times below are ${s.timeZone} times)`,
    '',
    ...accountsSection(status),
    '',
    ...nichesSection(status),
    '',
    postsLine(status),
    nextActionLine(status),
    ...(status.postingHeld
      ? [
          `Posting is HELD: the database was restored from a dump${status.postingHeld.since ? ` (noticed ${formatInstant(status.postingHeld.since)})` : ''}; its rows forget the posts made since. ` +
            'Check, then run lexus repair counters.',
        ]
      : []),
  ];
  return `${lines.map(clean).join('\n')}\n`;
}

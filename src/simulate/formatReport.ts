/** The simulation's report for a terminal: a table per day, the events, the invariant checks. */

import type { DayReport } from './report';
import type { FaultCounts, SimulationResult } from './simulation';

const COLUMNS: { title: string; width: number; value: (d: DayReport) => string }[] = [
  { title: 'day', width: 3, value: (d) => String(d.day) },
  { title: 'date', width: 10, value: (d) => d.date },
  { title: 'joins', width: 6, value: (d) => String(d.joins) },
  { title: 'posts', width: 6, value: (d) => String(d.posts) },
  { title: 'max', width: 6, value: (d) => String(d.maxPosts) },
  { title: 'util', width: 5, value: (d) => formatUtilization(d.utilization) },
  { title: 'FloodWaits', width: 10, value: (d) => String(d.floodWaits) },
  { title: 'bans', width: 4, value: (d) => String(d.groupBans) },
  { title: 'sessions lost', width: 13, value: (d) => String(d.sessionsLost) },
  { title: 'accounts active', width: 15, value: (d) => String(d.accountsActive) },
];

/** Where in the audience's day the posts went, and how bunched they were. */
export function pacingLines(r: SimulationResult): string[] {
  const p = r.pacing;
  const o = r.options;
  const hours = `${String(o.postingHours.start).padStart(2, '0')}-${String(o.postingHours.end).padStart(2, '0')} ${o.timeZone}`;
  return [
    `Posting hours ${hours}${o.spread ? ', spread' : ', as soon as allowed (LEXUS_SPREAD=0)'}: ${p.windowShare === null ? '-' : p.windowShare.toFixed(3)} of the posts inside them`,
    `Most in one clock hour: ${p.maxAccountPostsPerHour} posts and ${p.maxAccountJoinsPerHour} joins by one account, ${p.maxFleetPostsPerHour} posts by the fleet`,
  ];
}

/** How often each fault happened, a line each; none when the run had no fault. */
export function faultLines(f: FaultCounts): string[] {
  if (!Object.values(f).some((n) => n > 0)) return [];
  return [
    `database outages for every process, each starting while a call was in flight: ${f.dbOutages}`,
    `one process cut off from the database (not from Telegram) during one of its calls: ${f.partitions}`,
    `joins that happened although their answer was a timeout: ${f.lostJoins}`,
    `second links of a chat: ${f.aliases} (closed as duplicates: ${f.aliasesClosed})`,
    `groups renamed: ${f.renames} (posts that reached them after, through their stored peer: ${f.postsAfterRename})`,
    `accounts restricted for spam: ${f.restrictedAccounts} (refusals met: ${f.restrictedRefusals})`,
    `crashes between sending and recording: ${f.crashes}; clean restarts: ${f.restarts}`,
  ];
}

export function formatUtilization(u: number | null): string {
  return u === null ? '-' : u.toFixed(3);
}

const row = (cells: string[]) =>
  cells.map((c, i) => (i === 1 ? c.padEnd(COLUMNS[i]!.width) : c.padStart(COLUMNS[i]!.width))).join('  ');

/** One line per simulated day, for the live progress. */
export function formatDayLine(d: DayReport, days: number, elapsedMs: number): string {
  return (
    `day ${d.day}/${days} ${d.date}: ${d.joins} joins, ${d.posts} posts of ${d.maxPosts} allowed (utilization ${formatUtilization(d.utilization)}), ` +
    `${d.floodWaits} FloodWaits, ${d.groupBans} bans, ${d.accountsActive} accounts active  [${(elapsedMs / 1000).toFixed(1)} s]`
  );
}

export function formatSimulationReport(r: SimulationResult): string {
  const o = r.options;
  const lines: string[] = [];
  lines.push(
    `Simulated ${o.days} day${o.days === 1 ? '' : 's'} from ${o.start.slice(0, 10)}: ${o.accounts} accounts, ${o.groups} groups, ` +
      `chaos ${o.chaos}, ${o.replicas} process${o.replicas === 1 ? '' : 'es'}, seed ${o.seed}`,
    '',
    row(COLUMNS.map((c) => c.title)),
  );
  for (const d of r.days) lines.push(row(COLUMNS.map((c) => c.value(d))));
  const t = r.totals;
  lines.push(
    row([
      '',
      'total',
      String(t.joins),
      String(t.posts),
      String(t.maxPosts),
      formatUtilization(t.utilization),
      String(t.floodWaits),
      String(t.groupBans),
      String(t.sessionsLost),
      '',
    ]),
    '',
    'utilization = posts Telegram received / the most the rules allow for the groups bound (warm-up, 2 per group, 20 per account, none while Telegram limits',
    "an account and a reduced budget as it recovers); the daemon's own pacing, FloodWaits, slow modes and database outages are not subtracted",
    `Telegram calls per join or post that happened (lookups included): ${t.callsPerAction === null ? '-' : t.callsPerAction.toFixed(2)}`,
    '',
    ...pacingLines(r),
  );
  const faults = faultLines(r.faults);
  if (faults.length) lines.push('', 'Faults injected:', ...faults.map((f) => `  ${f}`));
  if (r.events.length) {
    lines.push('', 'Processes:');
    for (const e of r.events) lines.push(`  ${e.at}  ${e.what}`);
  }
  lines.push('', "Invariants, checked from post_history and the fake Telegram's record:");
  for (const check of r.invariants) {
    if (check.violations.length === 0) {
      lines.push(`  ok    ${check.name}`);
      continue;
    }
    lines.push(
      `  FAIL  ${check.name}: ${check.violations.length} violation${check.violations.length === 1 ? '' : 's'}`,
    );
    for (const v of check.violations.slice(0, 20)) lines.push(`          ${v}`);
    if (check.violations.length > 20)
      lines.push(`          ... and ${check.violations.length - 20} more (--json lists them all)`);
  }
  lines.push(
    '',
    `${r.violations === 0 ? 'No rule was broken' : `${r.violations} VIOLATION${r.violations === 1 ? '' : 'S'}`}. ` +
      `${t.telegramCalls} calls to Telegram in ${(r.wallMs / 1000).toFixed(1)} s of wall time.`,
  );
  return `${lines.join('\n')}\n`;
}

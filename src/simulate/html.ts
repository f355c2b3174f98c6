/**
 * `lexus simulate --html FILE`: one self-contained page (no script, no external file) with the
 * report and an SVG chart of posts and joins per hour, so the rhythm of a week shows at a glance.
 */
import { faultLines, formatUtilization, pacingLines } from './formatReport';
import type { HourPoint } from './report';
import type { SimulationResult } from './simulation';

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** Bars of posts (and joins, beside them) per hour; a line at each UTC midnight. */
export function hourlyChart(points: readonly HourPoint[], startIso: string): string {
  const width = 960;
  const height = 260;
  const left = 44;
  const bottom = 28;
  const plotW = width - left - 10;
  const plotH = height - bottom - 12;
  const top = Math.max(1, ...points.map((p) => Math.max(p.posts, p.joins)));
  const step = plotW / Math.max(1, points.length);
  const y = (v: number) => 12 + plotH - (v / top) * plotH;
  const bars: string[] = [];
  // The posting window, shaded behind the bars.
  const shade: string[] = [];
  points.forEach((p, i) => {
    if (p.inWindow)
      shade.push(
        `<rect class="window" x="${(left + i * step).toFixed(2)}" y="12" width="${step.toFixed(2)}" height="${plotH}"/>`,
      );
  });
  points.forEach((p, i) => {
    const x = left + i * step;
    const w = Math.max(0.5, step / 2 - 0.2);
    if (p.posts > 0)
      bars.push(
        `<rect class="posts" x="${x.toFixed(2)}" y="${y(p.posts).toFixed(2)}" width="${w.toFixed(2)}" height="${(12 + plotH - y(p.posts)).toFixed(2)}"><title>hour ${p.hour}: ${p.posts} posts</title></rect>`,
      );
    if (p.joins > 0)
      bars.push(
        `<rect class="joins" x="${(x + w).toFixed(2)}" y="${y(p.joins).toFixed(2)}" width="${w.toFixed(2)}" height="${(12 + plotH - y(p.joins)).toFixed(2)}"><title>hour ${p.hour}: ${p.joins} joins</title></rect>`,
      );
  });
  const start = new Date(startIso).getTime();
  const days: string[] = [];
  for (let h = 0; h <= points.length; h += 24) {
    const x = left + h * step;
    days.push(`<line class="day" x1="${x.toFixed(2)}" y1="12" x2="${x.toFixed(2)}" y2="${12 + plotH}"/>`);
    if (h < points.length)
      days.push(
        `<text x="${(x + 3).toFixed(2)}" y="${height - 8}">${new Date(start + h * 3_600_000).toISOString().slice(5, 10)}</text>`,
      );
  }
  const ticks = [0, Math.round(top / 2), top].map(
    (v) => `<text x="${left - 6}" y="${(y(v) + 4).toFixed(2)}" text-anchor="end">${v}</text>`,
  );
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="100%" role="img" aria-label="posts and joins per hour">` +
    `<style>.window{fill:#e8f3e8}.posts{fill:#1f77b4}.joins{fill:#ff7f0e}.day{stroke:#bbb;stroke-dasharray:3 3}text{font:11px sans-serif;fill:#444}</style>` +
    `${shade.join('')}${days.join('')}${ticks.join('')}${bars.join('')}` +
    `<line x1="${left}" y1="${12 + plotH}" x2="${width - 10}" y2="${12 + plotH}" stroke="#444"/></svg>`
  );
}

export function renderHtml(r: SimulationResult): string {
  const o = r.options;
  const dayRows = r.days
    .map(
      (d) =>
        `<tr><td>${d.day}</td><td>${d.date}</td><td>${d.joins}</td><td>${d.posts}</td><td>${d.maxPosts}</td><td>${formatUtilization(d.utilization)}</td>` +
        `<td>${d.floodWaits}</td><td>${d.groupBans}</td><td>${d.sessionsLost}</td><td>${d.accountsActive}</td></tr>`,
    )
    .join('\n');
  const checks = r.invariants
    .map((c) =>
      c.violations.length === 0
        ? `<li class="ok">✔ ${escapeHtml(c.name)}</li>`
        : `<li class="fail">✘ ${escapeHtml(c.name)}: ${c.violations.length}<ul>${c.violations
            .slice(0, 100)
            .map((v) => `<li>${escapeHtml(v)}</li>`)
            .join('')}</ul></li>`,
    )
    .join('\n');
  const events = r.events.map((e) => `<li>${escapeHtml(e.at)} ${escapeHtml(e.what)}</li>`).join('\n');
  const faults = faultLines(r.faults)
    .map((f) => `<li>${escapeHtml(f)}</li>`)
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Lexus Promotion: simulation, seed ${o.seed}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:2em auto;max-width:1000px;color:#222}
table{border-collapse:collapse}td,th{padding:2px 10px;text-align:right;border-bottom:1px solid #eee}
.ok{color:#2a7d2a}.fail{color:#b00020}.legend span{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px}
</style></head><body>
<h1>Simulation: ${o.days} days, ${o.accounts} accounts, ${o.groups} groups</h1>
<p>Chaos <b>${escapeHtml(o.chaos)}</b>, ${o.replicas} process${o.replicas === 1 ? '' : 'es'}, seed ${o.seed}, from ${escapeHtml(o.start.slice(0, 10))}.
${r.violations === 0 ? '<b class="ok">No rule was broken.</b>' : `<b class="fail">${r.violations} violations.</b>`}
Utilization ${formatUtilization(r.totals.utilization)} (${r.totals.posts} posts of ${r.totals.maxPosts} allowed).</p>
<h2>Posts and joins per hour (UTC)</h2>
<p class="legend"><span style="background:#1f77b4"></span>posts<span style="background:#ff7f0e"></span>joins<span style="background:#e8f3e8"></span>posting hours</p>
<p>${pacingLines(r).map(escapeHtml).join('<br>')}</p>
${hourlyChart(r.hourly, o.start)}
<h2>Per day</h2>
<table><tr><th>day</th><th>date</th><th>joins</th><th>posts</th><th>max</th><th>utilization</th><th>FloodWaits</th><th>bans</th><th>sessions lost</th><th>accounts active</th></tr>
${dayRows}
<tr><th></th><th>total</th><th>${r.totals.joins}</th><th>${r.totals.posts}</th><th>${r.totals.maxPosts}</th><th>${formatUtilization(r.totals.utilization)}</th><th>${r.totals.floodWaits}</th><th>${r.totals.groupBans}</th><th>${r.totals.sessionsLost}</th><th></th></tr>
</table>
<h2>Invariants</h2><p>Checked from <code>post_history</code> and the fake Telegram's record of every call, not from counters.</p>
<ul>${checks}</ul>
${faults ? `<h2>Faults injected</h2><ul>${faults}</ul>` : ''}
${events ? `<h2>Processes</h2><ul>${events}</ul>` : ''}
<p>${r.totals.telegramCalls} calls to Telegram (${r.totals.callsPerAction === null ? '-' : r.totals.callsPerAction.toFixed(2)} per join or post that happened, lookups included); ${(r.wallMs / 1000).toFixed(1)} s of wall time.</p>
</body></html>
`;
}

/** The import's summary as a person reads it in a terminal. Never holds a secret. */
import type { ImportReport } from './writeImport';

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;
const byNiche = (counts: Record<string, number>) =>
  Object.entries(counts)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([niche, n]) => `${niche} ${n}`)
    .join(', ') || 'none';

export function formatImportReport(r: ImportReport): string {
  const lines: string[] = [];
  lines.push(`Import from ${r.dir}${r.dryRun ? '  (dry run: nothing was written)' : ''}`);
  const a = r.accounts;
  lines.push(
    `Accounts   ${a.inFile} in accounts_config.json, ${a.imported} for Lexus: ` +
      `${a.created.length} created, ${a.updated.length} updated, ${a.unchanged} unchanged`,
  );
  for (const u of a.updated) lines.push(`           updated ${u.sessionName}: ${u.fields.join(', ')}`);
  if (a.needsLogin.length)
    lines.push(`           needs login (no session): ${a.needsLogin.join(', ')}  ->  lexus login NAME`);
  for (const n of a.notDriven)
    lines.push(`           not driven, its settings cannot be used: ${n.sessionName}: ${n.problem}`);
  if (a.seasoned)
    lines.push(
      `           marked seasoned (full budgets, no ramp-up): ${a.seasoned.length ? a.seasoned.join(', ') : 'none new'}`,
    );
  const t = r.targets;
  lines.push(
    `Groups     ${t.groups} in the files${t.duplicatesMerged ? ` (${plural(t.duplicatesMerged, 'duplicate line')} merged)` : ''}: ` +
      `${t.created} created, ${t.nicheChanged} niche changed, ${t.unchanged} unchanged`,
  );
  const niches = Object.entries(t.byNiche)
    .sort(([x], [y]) => x.localeCompare(y))
    .map(
      ([niche, c]) =>
        `${niche} ${c.groups} (${c.created} created${c.nicheChanged ? `, ${c.nicheChanged} moved here` : ''})`,
    );
  lines.push(`           by niche: ${niches.join(', ') || 'none'}`);
  for (const n of t.linksNormalized) lines.push(`           link normalized in the database: ${n.from} -> ${n.to}`);
  lines.push(`Bindings   ${plural(r.bindings.created, 'group')} bound, ${r.bindings.alreadyBound} already bound`);
  lines.push(`Conflicts  ${r.conflicts.length === 0 ? 'none' : r.conflicts.length}`);
  for (const c of r.conflicts) lines.push(`  ${c}`);
  if (r.warnings.length) {
    lines.push(`Warnings   ${r.warnings.length}`);
    for (const w of r.warnings) lines.push(`  ${w}`);
  }
  const d = r.database;
  lines.push(
    `Database   ${r.dryRun ? 'would hold' : 'now holds'}: ${plural(d.accounts, 'account')}; ` +
      `targets by niche: ${byNiche(d.targetsByNiche)}; ${d.boundTargets} bound to an account`,
  );
  return lines.join('\n');
}

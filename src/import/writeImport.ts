/**
 * Writes what readOldSystem found into the database, in one transaction: accounts (upsert by
 * session_name), groups (upsert by link), then bindings. A binding is never moved and a warm-up
 * never restarted: each disagreement with the database is reported as a conflict and left as
 * it is. With dryRun the same statements run and the transaction is rolled back, so the report
 * says exactly what a real run would do.
 */

import { createHash } from 'node:crypto';
import type { DataSource, QueryRunner } from 'typeorm';
import { MigrationExecutor } from 'typeorm';
import type { Clock } from '../clock';
import { DbManager } from '../db/DbManager';
import { sqlTime } from '../db/postgresTypes';
import { normalizeStoredLinks, StoredLinkCollisionError } from '../sql/groups';
import {
  countForImportReport,
  findOtherAccountsWith,
  type ImportedAccountRow,
  insertImportedAccount,
  insertNewTargets,
  loadAccountSettings,
  loadBindingsOf,
  lockAccountsByName,
  lockImports,
  markSeasoned,
  setConfigProblem,
  setTargetNiches,
  updateImportedAccount,
} from '../sql/importing';
import { WARMUP_MS } from '../sql/rules';
import { accountSettingsProblem } from '../telegram/accountSettings';
import type { ImportAccount, OldSystem } from './readOldSystem';

export interface ImportReport {
  dir: string;
  dryRun: boolean;
  accounts: {
    inFile: number;
    imported: number;
    created: string[];
    updated: { sessionName: string; fields: string[] }[];
    unchanged: number;
    needsLogin: string[];
    /** Accounts whose own settings cannot be used (accounts.config_problem): imported, not driven. */
    notDriven: { sessionName: string; problem: string }[];
    /** With --seasoned: the accounts marked as run before (no ramp-up) by this import. */
    seasoned?: string[];
  };
  targets: {
    groups: number;
    duplicatesMerged: number;
    created: number;
    nicheChanged: number;
    unchanged: number;
    /** Per niche, among the groups the files name: how many, created, niche changed to it. */
    byNiche: Record<string, { groups: number; created: number; nicheChanged: number }>;
    /** Links of existing rows rewritten to their normalized form. */
    linksNormalized: { from: string; to: string }[];
  };
  bindings: { created: number; alreadyBound: number };
  conflicts: string[];
  warnings: string[];
  /** The seed's verification step, counted after the import (in a dry run: as it would be). */
  database: { accounts: number; targetsByNiche: Record<string, number>; boundTargets: number };
}

/** The import refuses to write: nothing was written. Each problem is one line for the person. */
export class ImportRefusedError extends Error {
  constructor(readonly problems: string[]) {
    super(`the import was refused:\n  ${problems.join('\n  ')}`);
    this.name = 'ImportRefusedError';
  }
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** The same Telegram account already in the database under another name: refuse. */
async function refuseSharedIdentities(runner: QueryRunner, accounts: ImportAccount[]): Promise<void> {
  const sessions = accounts.flatMap((a) => (a.sessionString ? [a.sessionString] : []));
  const phones = accounts.flatMap((a) => (a.phone ? [a.phone] : []));
  const rows = await findOtherAccountsWith(runner, { names: accounts.map((a) => a.sessionName), sessions, phones });
  const problems = rows.map((row) => {
    const same = accounts.find(
      (a) => (a.sessionString && a.sessionString === row.session_string) || (a.phone && a.phone === row.phone),
    )!;
    const what = same.sessionString && same.sessionString === row.session_string ? 'session' : 'phone';
    return `accounts_config.json: "${same.sessionName}" has the same ${what} as the account "${row.session_name}" in the database: one Telegram account under two names`;
  });
  if (problems.length) throw new ImportRefusedError(problems);
}

/**
 * Which session an existing account gets. The files' session replaces the database's only if
 * the files changed it since the last import: a session `lexus login` made meanwhile stays.
 */
function sessionUpdate(account: ImportAccount, row: ImportedAccountRow): { session: string; hash: string } | null {
  if (!account.sessionString) return null;
  const hash = sha256(account.sessionString);
  if (hash === row.imported_session_sha256) return null;
  return { session: account.sessionString, hash };
}

/**
 * Accounts: created, or updated where the files give a value that differs. A value the files
 * leave out (no proxy, no session) keeps what the database has, with a warning. Statuses are
 * left alone. Returns ids by session name.
 */
async function writeAccounts(
  runner: QueryRunner,
  accounts: ImportAccount[],
  now: string,
  report: ImportReport,
): Promise<Map<string, number>> {
  await refuseSharedIdentities(runner, accounts);
  const existing = await lockAccountsByName(
    runner,
    accounts.map((a) => a.sessionName),
  );
  const byName = new Map(existing.map((row) => [row.session_name, row]));
  const ids = new Map<string, number>();
  for (const account of accounts) {
    const row = byName.get(account.sessionName);
    if (!row) {
      const id = await insertImportedAccount(runner, {
        sessionName: account.sessionName,
        phone: account.phone,
        session: account.sessionString,
        hash: account.sessionString ? sha256(account.sessionString) : null,
        apiId: account.apiId,
        apiHash: account.apiHash,
        proxy: account.proxy,
        now,
      });
      ids.set(account.sessionName, id);
      report.accounts.created.push(account.sessionName);
      if (!account.sessionString) report.accounts.needsLogin.push(account.sessionName);
      continue;
    }
    ids.set(account.sessionName, row.id);
    const session = sessionUpdate(account, row);
    const changed: string[] = [];
    if (account.phone !== null && account.phone !== row.phone) changed.push('phone');
    if (session && session.session !== row.session_string) changed.push('session_string');
    if (account.apiId !== null && account.apiId !== row.api_id) changed.push('api_id');
    if (account.apiHash !== null && account.apiHash !== row.api_hash) changed.push('api_hash');
    if (account.proxy !== null && account.proxy !== row.proxy) changed.push('proxy');
    if (
      session &&
      row.session_string &&
      row.session_string !== account.sessionString &&
      row.imported_session_sha256 !== null
    ) {
      report.warnings.push(
        `${account.sessionSource ?? 'accounts_config.json'}: "${account.sessionName}": the files' new session replaces the one in the database (made since the last import)`,
      );
    }
    if (account.proxy === null && row.proxy !== null) {
      report.warnings.push(
        `accounts_config.json: "${account.sessionName}" has no proxy; the database's proxy is kept (clear it by hand if it should go)`,
      );
    }
    // The bookkeeping hash is written even when the session itself is unchanged (a first import
    // over a database that already had it), without counting as a change.
    if (changed.length > 0 || (session && session.hash !== row.imported_session_sha256)) {
      await updateImportedAccount(runner, {
        id: row.id,
        phone: account.phone,
        session: session?.session ?? null,
        hash: session?.hash ?? null,
        apiId: account.apiId,
        apiHash: account.apiHash,
        proxy: account.proxy,
        changed: changed.length > 0,
        now,
      });
    }
    if (changed.length > 0) report.accounts.updated.push({ sessionName: account.sessionName, fields: changed });
    else report.accounts.unchanged++;
    if (!account.sessionString && !row.session_string) report.accounts.needsLogin.push(account.sessionName);
  }
  await markUnusableSettings(runner, [...ids.values()], report);
  return ids;
}

/**
 * Each imported account's settings as now stored (the files' values, or the database's where the
 * files have none), checked by the one rule (accountSettings.ts): a problem is kept with the
 * account (accounts.config_problem: no daemon drives it), a fixed one is cleared.
 */
async function markUnusableSettings(runner: QueryRunner, ids: number[], report: ImportReport): Promise<void> {
  for (const row of await loadAccountSettings(runner, ids)) {
    const problem = accountSettingsProblem({ apiId: row.api_id, apiHash: row.api_hash, proxy: row.proxy });
    if (problem !== row.config_problem) await setConfigProblem(runner, row.id, problem);
    if (problem) report.accounts.notDriven.push({ sessionName: row.session_name, problem });
  }
}

/** Rows written in another form since the migration (e.g. by the old system) get normalized links too. */
async function normalizeLinks(runner: QueryRunner, now: Date, report: ImportReport): Promise<void> {
  const result = await normalizeStoredLinks(runner, now);
  // One group under two rows could be bound to two accounts: nothing is written until a person merges them.
  if (result.collisions.length > 0) throw new StoredLinkCollisionError(result.collisions);
  report.targets.linksNormalized.push(...result.normalized.map(({ from, to }) => ({ from, to })));
  for (const i of result.invalid) report.warnings.push(`database: targets row ${i.id}: ${i.reason}; left as it is`);
}

async function writeTargets(runner: QueryRunner, data: OldSystem, now: string, report: ImportReport): Promise<void> {
  const links = data.targets.map((t) => t.link);
  const created = await insertNewTargets(runner, { links, niches: data.targets.map((t) => t.niche), now });
  const given = data.targets.filter((t) => t.nicheGiven);
  const changed = await setTargetNiches(runner, {
    links: given.map((t) => t.link),
    niches: given.map((t) => t.niche),
    now,
  });
  const createdSet = new Set(created);
  const changedSet = new Set(changed.filter((link) => !createdSet.has(link)));
  report.targets.created = createdSet.size;
  report.targets.nicheChanged = changedSet.size;
  report.targets.unchanged = data.targets.length - createdSet.size - changedSet.size;
  for (const t of data.targets) {
    const counts = report.targets.byNiche[t.niche] ?? { groups: 0, created: 0, nicheChanged: 0 };
    report.targets.byNiche[t.niche] = counts;
    counts.groups++;
    if (createdSet.has(t.link)) counts.created++;
    if (changedSet.has(t.link)) counts.nicheChanged++;
  }
}

async function writeBindings(
  runner: QueryRunner,
  data: OldSystem,
  ids: Map<string, number>,
  db: DbManager,
  report: ImportReport,
): Promise<void> {
  if (data.assignments.length === 0) return;
  const rows = await loadBindingsOf(
    runner,
    data.assignments.map((a) => a.link),
  );
  const before = new Map(rows.map((r) => [r.link, r]));
  const now = db.clock.now();
  for (const assignment of data.assignments) {
    const accountId = ids.get(assignment.sessionName)!;
    const row = before.get(assignment.link);
    if (row?.assigned_account_id === accountId && row.joined_at !== null) {
      report.bindings.alreadyBound++;
      continue;
    }
    // No join time in the files: the account joined long enough ago for the warm-up to be over.
    const joinedAt = assignment.joinedAt ?? new Date(now.getTime() - WARMUP_MS);
    if (await db.assignGroup(assignment.link, accountId, joinedAt)) {
      if (row?.assigned_account_id === accountId) report.bindings.alreadyBound++;
      else report.bindings.created++;
      continue;
    }
    const why =
      row?.assigned_account_id != null
        ? `is bound to account "${row.bound_to}" in the database`
        : row?.status === 'banned'
          ? 'banned our account (status banned in the database)'
          : 'lost its account (joined, unbound) in the database';
    report.conflicts.push(
      `${assignment.source}: ${assignment.link} ${why}, the files say "${assignment.sessionName}": left as it is`,
    );
  }
}

export interface WriteImportOptions {
  clock: Clock;
  /** Run the import and roll it back: the report says what a real run would do. */
  dryRun?: boolean;
  /**
   * Run pending migrations inside the import's transaction (for a dry run on a database that
   * was never migrated: they are rolled back with the rest).
   */
  migrateInTransaction?: boolean;
  /** Warnings found while reading the files, carried into the report. */
  warnings?: string[];
  /**
   * The accounts imported ran in the old system already: they start at full budgets, with no
   * ramp-up (their history is not in this database).
   */
  seasoned?: boolean;
}

export async function writeImport(
  dataSource: DataSource,
  data: OldSystem,
  options: WriteImportOptions,
): Promise<ImportReport> {
  const dryRun = options.dryRun ?? false;
  const report: ImportReport = {
    dir: data.dir,
    dryRun,
    accounts: {
      inFile: data.accountsInFile,
      imported: data.accounts.length,
      created: [],
      updated: [],
      unchanged: 0,
      needsLogin: [],
      notDriven: [],
    },
    targets: {
      groups: data.targets.length,
      duplicatesMerged: data.duplicates.reduce((n, d) => n + d.sources.length - 1, 0),
      created: 0,
      nicheChanged: 0,
      unchanged: 0,
      byNiche: {},
      linksNormalized: [],
    },
    bindings: { created: 0, alreadyBound: 0 },
    conflicts: [],
    warnings: [...(options.warnings ?? [])],
    database: { accounts: 0, targetsByNiche: {}, boundTargets: 0 },
  };
  const now = sqlTime(options.clock.now());
  const runner = dataSource.createQueryRunner();
  await runner.connect();
  try {
    await runner.startTransaction();
    try {
      await lockImports(runner);
      if (options.migrateInTransaction) {
        const executor = new MigrationExecutor(dataSource, runner);
        executor.transaction = 'none';
        await executor.executePendingMigrations();
      }
      const ids = await writeAccounts(runner, data.accounts, now, report);
      if (options.seasoned) {
        report.accounts.seasoned = (await markSeasoned(runner, [...ids.values()])).sort();
      }
      await normalizeLinks(runner, options.clock.now(), report);
      await writeTargets(runner, data, now, report);
      await writeBindings(runner, data, ids, new DbManager(dataSource, { clock: options.clock }, runner), report);
      report.database = await countForImportReport(runner);
      if (dryRun) await runner.rollbackTransaction();
      else await runner.commitTransaction();
    } catch (error) {
      if (runner.isTransactionActive) await runner.rollbackTransaction();
      throw error;
    }
  } finally {
    await runner.release();
  }
  return report;
}

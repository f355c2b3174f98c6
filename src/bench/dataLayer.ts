/**
 * `npm run bench`: the data layer at scale, in a scratch database beside the configured one (the
 * embedded PostgreSQL when none is configured). 10,000 accounts and 1,000,000 groups are made in
 * the database (generate_series), then, in the same run:
 *   - p50/p99 of getGroupsReadyForPosting(niche, 50) and of the atomic slot reservation, each
 *     also as a ratio to a bare primary-key SELECT on the same connection (goal: <= 3x);
 *   - their query plans: no sequential scan of `targets` (the one check that fails the run);
 *   - the midnight reset over the whole table;
 *   - the daemon's memory (RSS) with 100 accounts on the fake Telegram, as a real process.
 * Prints a table and writes bench-results.json. Speed never fails it: the figures are for people.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import dotenv from 'dotenv';
import { HOUR_MS, ManualClock } from '../clock';
import { loadConfig, type PostgresConnection } from '../config';
import { DbManager } from '../db/DbManager';
import { createDataSource, runMigrations } from '../db/database';
import { sqlTime } from '../db/postgresTypes';
import { createScratchDatabase, databaseServer, type ScratchDatabase } from '../db/scratchDatabase';
import { seeded } from '../random';
import {
  countGroupsWithDailyPosts,
  countPostsAndJoins,
  explainPlan,
  insertBenchAccounts,
  insertBenchGroups,
  insertMemoryRunFleet,
  selectTargetById,
  touchAccountById,
} from '../sql/bench';
import { analyzeAccountsAndTargets } from '../sql/simulation';

const ROOT = path.resolve(__dirname, '../..');
const ACCOUNTS = Number(process.env.BENCH_ACCOUNTS ?? 10_000);
const TARGETS = Number(process.env.BENCH_TARGETS ?? 1_000_000);
const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 2000);
// BENCH_KEEP_DATABASE=1 keeps the generated database, to look into it.
const NOW = new Date('2026-03-10T12:00:00.000Z');

interface Timing {
  p50_ms: number;
  p99_ms: number;
  samples: number;
}

function percentiles(durations: number[]): Timing {
  const sorted = [...durations].sort((a, b) => a - b);
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
  return { p50_ms: round(at(0.5)), p99_ms: round(at(0.99)), samples: sorted.length };
}

const round = (n: number, digits = 3) => Number(n.toFixed(digits));

/**
 * p50/p99 of each operation, run in turn (one of each per round), so that every figure is taken
 * under the same conditions: a burst of background work shows in all of them, not in one.
 */
async function timedInTurn<K extends string>(
  samples: number,
  operations: Record<K, () => Promise<unknown>>,
): Promise<Record<K, Timing>> {
  const names = Object.keys(operations) as K[];
  for (let i = 0; i < Math.min(50, samples); i++) for (const name of names) await operations[name](); // warm-up: plans, caches
  const durations = Object.fromEntries(names.map((name) => [name, [] as number[]])) as Record<K, number[]>;
  for (let i = 0; i < samples; i++) {
    for (const name of names) {
      const start = process.hrtime.bigint();
      await operations[name]();
      durations[name].push(Number(process.hrtime.bigint() - start) / 1e6);
    }
  }
  return Object.fromEntries(names.map((name) => [name, percentiles(durations[name])])) as Record<K, Timing>;
}

/** Every plan node that reads `relation` sequentially. */
export function sequentialScansOf(plan: unknown, relation: string): string[] {
  const found: string[] = [];
  const walk = (node: Record<string, unknown>) => {
    if (node['Node Type'] === 'Seq Scan' && node['Relation Name'] === relation)
      found.push(`Seq Scan on ${relation}${node.Alias && node.Alias !== relation ? ` ${String(node.Alias)}` : ''}`);
    for (const child of (node.Plans as Record<string, unknown>[] | undefined) ?? []) walk(child);
  };
  for (const entry of plan as { Plan: Record<string, unknown> }[]) walk(entry.Plan);
  return found;
}

/** The fleet: accounts under and at their limit, some in a FloodWait; groups in every state, of several niches. */
export async function populate(
  db: DbManager,
  scale: { accounts: number; targets: number } = { accounts: ACCOUNTS, targets: TARGETS },
  at: Date = NOW,
): Promise<void> {
  const ds = db.dataSource;
  const now = sqlTime(at);
  await insertBenchAccounts(ds, { n: scale.accounts, now });
  await insertBenchGroups(ds, { n: scale.targets, accounts: scale.accounts, now });
  await analyzeAccountsAndTargets(ds);
}

/**
 * explainPlan for a statement already in positional form ($1, $2, ...) with its values, as
 * test/readyPlans.test.ts passes it: the values become the named parameters :p1, :p2, ...
 */
export function explain(db: DbManager, text: string, values: unknown[]): Promise<unknown> {
  const params = Object.fromEntries(values.map((value, i) => [`p${i + 1}`, value]));
  return explainPlan(db.dataSource, text.replace(/\$(\d+)/g, ':p$1'), params);
}

/** Runs `lexus start` on the fake Telegram with 100 accounts and samples its memory. */
async function daemonMemory(
  connection: PostgresConnection,
  seconds: number,
): Promise<{ rss_peak_mb: number; rss_end_mb: number; seconds: number; posts_and_joins: number }> {
  const scratch = await createScratchDatabase(connection, 'lexus_bench_daemon');
  try {
    const ds = createDataSource(scratch.connection, { poolSize: 2 });
    await ds.initialize();
    await runMigrations(ds);
    await insertMemoryRunFleet(ds);
    const c = scratch.connection;
    const url = `postgresql://${encodeURIComponent(c.user)}:${encodeURIComponent(c.password ?? '')}@${c.host}:${c.port}/${c.database}${c.ssl === false ? '' : '?sslmode=require'}`;
    const child = spawn(process.execPath, [path.join(ROOT, 'bin/lexus.js'), 'start'], {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '',
        DATABASE_URL: url,
        LEXUS_FAKE_TELEGRAM: '1',
        LEXUS_ACTION_DELAY_S: '1-3',
        LEXUS_MAX_PARALLEL_ACCOUNTS: '10',
        LOG_LEVEL: 'warn',
        LOG_PRETTY: '0',
        LEXUS_BASE_DIR: ROOT,
        HEALTH_PORT: '0',
        LEXUS_MESSAGES_FILE: path.join(ROOT, 'config/messages/cars/messages.json'),
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    // Listened for from the start: a daemon that dies early must not leave the bench waiting.
    let exitCode: number | null | undefined;
    const exited = new Promise<void>((resolve) =>
      child.once('exit', (code) => {
        exitCode = code;
        resolve();
      }),
    );
    const rss = () => {
      try {
        const kb = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1];
        return kb ? Number(kb) / 1024 : 0;
      } catch {
        return 0;
      }
    };
    let peak = 0;
    let last = 0;
    for (let i = 0; i < seconds * 2 && exitCode === undefined; i++) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      last = rss();
      peak = Math.max(peak, last);
    }
    if (exitCode !== undefined) throw new Error(`lexus start exited early (code ${exitCode}); no memory figure`);
    child.kill('SIGTERM');
    await exited;
    const postsAndJoins = await countPostsAndJoins(ds);
    await ds.destroy();
    return { rss_peak_mb: round(peak, 1), rss_end_mb: round(last, 1), seconds, posts_and_joins: postsAndJoins };
  } finally {
    await scratch.drop();
  }
}

async function main(): Promise<number> {
  dotenv.config({ quiet: true });
  const config = loadConfig();
  const { connection, embedded } = await databaseServer(config);
  let scratch: ScratchDatabase | undefined;
  try {
    scratch = await createScratchDatabase(connection, 'lexus_bench');
    if (scratch.leftovers.length > 0)
      process.stdout.write(`dropped what an interrupted run left: ${scratch.leftovers.join(', ')}\n`);
    process.stdout.write(
      `Benchmark on ${connection.host}:${connection.port}, database ${scratch.name}: ${ACCOUNTS} accounts, ${TARGETS} groups\n`,
    );
    // One connection: every figure is a round trip on the same socket.
    const ds = createDataSource(scratch.connection, { poolSize: 1, applicationName: 'lexus bench' });
    await ds.initialize();
    await runMigrations(ds);
    const clock = new ManualClock(NOW);
    const db = new DbManager(ds, { clock });
    let start = Date.now();
    await populate(db);
    const populateS = (Date.now() - start) / 1000;
    process.stdout.write(`generated in ${populateS.toFixed(1)} s\n`);

    const random = seeded(42);
    const anyTarget = () => 1 + Math.floor(random() * TARGETS);
    const anyAccount = () => 1 + Math.floor(random() * ACCOUNTS);
    const { pk, write, ready, readyOne, reserve } = await timedInTurn(SAMPLES, {
      pk: () => selectTargetById(ds, anyTarget()),
      // The floor of any write: one row updated by primary key, and its commit.
      write: () => touchAccountById(ds, anyAccount()),
      ready: () => db.getGroupsReadyForPosting('ukraine_cars', 50),
      // The same search with one row to return: what finding ready groups costs, apart from carrying 50 of them.
      readyOne: () => db.getGroupsReadyForPosting('ukraine_cars', 1),
      reserve: () => db.reservePostSlot({ accountId: anyAccount(), niche: 'ukraine_cars', minGapMs: 4 * HOUR_MS }),
    });

    const plans = {
      getGroupsReadyForPosting: sequentialScansOf(
        await explainPlan(ds, ...db.readyStatement('ukraine_cars', 50)),
        'targets',
      ),
      reservePostSlot: sequentialScansOf(
        await explainPlan(ds, ...db.reserveStatement({ accountId: 17, niche: 'ukraine_cars', minGapMs: 4 * HOUR_MS })),
        'targets',
      ),
    };

    // Midnight: every counter of the day is stale at 00:00:05 the next day.
    clock.set(new Date(NOW.getTime() + 12 * HOUR_MS + 5_000));
    const stale = await countGroupsWithDailyPosts(ds);
    start = Date.now();
    const reset = await db.resetDailyCountersIfNeeded();
    const resetMs = Date.now() - start;
    await ds.destroy();

    process.stdout.write('measuring the daemon (100 accounts, fake Telegram) for 30 s...\n');
    const memory = await daemonMemory(connection, 30);

    const ratio = (t: Timing) => ({ p50: round(t.p50_ms / pk.p50_ms, 2), p99: round(t.p99_ms / pk.p99_ms, 2) });
    const results = {
      at: new Date().toISOString(),
      node: process.version,
      database: `${connection.host}:${connection.port}`,
      scale: { accounts: ACCOUNTS, targets: TARGETS, samples: SAMPLES, populate_s: round(populateS, 1) },
      primary_key_select: pk,
      primary_key_update_and_commit: { ...write, ratio_to_pk: ratio(write) },
      get_groups_ready_for_posting_50: { ...ready, ratio_to_pk: ratio(ready) },
      get_groups_ready_for_posting_1: { ...readyOne, ratio_to_pk: ratio(readyOne) },
      reserve_post_slot: { ...reserve, ratio_to_pk: ratio(reserve) },
      plans: { sequential_scans_of_targets: plans },
      midnight_reset: {
        ms: resetMs,
        accounts_reset: reset.accounts,
        targets_reset: reset.targets,
        stale_targets_before: stale,
      },
      daemon_memory: memory,
    };
    const line = (name: string, t: Timing, r?: { p50: number; p99: number }) =>
      `${name.padEnd(36)} ${t.p50_ms.toFixed(3).padStart(8)} ${t.p99_ms.toFixed(3).padStart(8)}  ${r ? `${r.p50.toFixed(2)}x / ${r.p99.toFixed(2)}x` : ''}\n`;
    process.stdout.write(
      `\n${'operation'.padEnd(36)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)}  ratio to PK (p50 / p99; goal <= 3x)\n` +
        line('SELECT by primary key', pk) +
        line('UPDATE by primary key, committed', write, ratio(write)) +
        line('getGroupsReadyForPosting(niche, 50)', ready, ratio(ready)) +
        line('getGroupsReadyForPosting(niche, 1)', readyOne, ratio(readyOne)) +
        line('reservePostSlot', reserve, ratio(reserve)) +
        `\nplans: ${Object.entries(plans)
          .map(([k, v]) => `${k}: ${v.length ? v.join(', ') : 'no sequential scan of targets'}`)
          .join('; ')}\n` +
        `midnight reset: ${reset.targets} groups and ${reset.accounts} accounts in ${resetMs} ms\n` +
        `daemon with 100 accounts: RSS peak ${memory.rss_peak_mb} MB, ${memory.rss_end_mb} MB after ${memory.seconds} s (${memory.posts_and_joins} joins and posts)\n`,
    );
    await writeFile(path.resolve('bench-results.json'), `${JSON.stringify(results, null, 2)}\n`);
    process.stdout.write(`written to ${path.resolve('bench-results.json')}\n`);
    const scans = Object.values(plans).flat();
    if (scans.length > 0) {
      process.stderr.write(`bench: a sequential scan of targets on a hot path: ${scans.join(', ')}\n`);
      return 1;
    }
    return 0;
  } finally {
    if (process.env.BENCH_KEEP_DATABASE === '1' && scratch) {
      scratch.keep();
      process.stdout.write(`kept the database ${scratch.name}\n`);
    } else {
      await scratch?.drop();
    }
    await embedded?.stop();
  }
}

if (require.main === module) {
  main().then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(`bench: ${(error as Error).stack ?? String(error)}\n`);
      process.exit(70);
    },
  );
}

/**
 * The benchmark's plan check, in CI at a smaller scale: on 50,000 groups with fresh statistics,
 * neither getGroupsReadyForPosting nor the slot reservation reads `targets` sequentially.
 */
import { describe, expect, it } from 'vitest';
import { explain, populate, sequentialScansOf } from '../src/bench/dataLayer';
import { HOUR_MS } from '../src/clock';
import { sql, toPositional } from '../src/sql/sql';
import { useTestDatabase } from './helpers/database';

const t = useTestDatabase({ start: '2026-03-10T12:00:00.000Z' });

describe('the hot paths’ plans', () => {
  it('read no targets sequentially at 50,000 groups', async () => {
    await populate(t.db, { accounts: 500, targets: 50_000 }, t.clock.now());
    await sql(t.dataSource, 'ANALYZE accounts, targets, post_history');
    const plans = {
      ready: await explain(t.db, ...(toPositional(...t.db.readyStatement('ukraine_cars', 50)) as [string, unknown[]])),
      reserve: await explain(
        t.db,
        ...(toPositional(...t.db.reserveStatement({ accountId: 17, niche: 'ukraine_cars', minGapMs: 4 * HOUR_MS })) as [
          string,
          unknown[],
        ]),
      ),
    };
    expect(sequentialScansOf(plans.ready, 'targets')).toEqual([]);
    expect(sequentialScansOf(plans.reserve, 'targets')).toEqual([]);
    // The paths meant for them: the niche's groups in serving order, the account's groups.
    expect(JSON.stringify(plans.ready)).toContain('"Index Name":"targets_ready_by_niche_idx"');
    expect(JSON.stringify(plans.reserve)).toContain('"Index Name":"targets_ready_by_account_idx"');
    // The check itself sees a sequential scan when there is one.
    expect(
      sequentialScansOf(await explain(t.db, `SELECT count(*) FROM targets WHERE title IS NULL`, []), 'targets'),
    ).toEqual(['Seq Scan on targets']);
    // And the statements find what they should on this data.
    expect(await t.db.getGroupsReadyForPosting('ukraine_cars', 50)).toHaveLength(50);
    expect(await t.db.reservePostSlot({ accountId: 12, niche: 'ukraine_cars', minGapMs: 4 * HOUR_MS })).not.toBeNull();
  });
});

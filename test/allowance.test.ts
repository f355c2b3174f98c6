/**
 * The simulator's report judges the daemon against "the most the rules allow" (src/simulate/
 * report.ts policyMaximum), computed in TypeScript from the rules' constants. Its reading of the
 * ramp-up and of the recovery after a limit must be the rules' own, which are SQL (src/sql/rules.ts
 * accountPostBudgetSql): these tests hold the two to the same numbers, day by day.
 */
import { describe, expect, it } from 'vitest';
import { sqlTime } from '../src/db/postgresTypes';
import { postsTheDayAfterAPause, rampedPosts } from '../src/simulate/report';
import { accountPostBudgetSql, NO_PACE, paceParams, type RampUp } from '../src/sql/rules';
import { sql } from '../src/sql/sql';
import { useTestDatabase } from './helpers/database';
import { insertAccount } from './helpers/fixtures';

const DAY = 86_400_000;
const t = useTestDatabase({ start: '2026-03-20T12:00:00.000Z' });

const budgetInSql = async (accountId: number, rampUp: RampUp) => {
  const { rows } = await sql<{ budget: number }>(
    t.dataSource,
    `SELECT ${accountPostBudgetSql('a')} AS budget FROM accounts a WHERE a.id = :accountId`,
    { accountId, now: sqlTime(t.clock.now()), ...paceParams({ ...NO_PACE, rampUp }) },
  );
  return rows[0]!.budget;
};

describe("the simulator's allowance", () => {
  it('ramps a new account up exactly as the rules do, on every day of its first weeks', async () => {
    const ramps: RampUp[] = [
      { startJoins: 2, startPosts: 3, flatDays: 3, fullDays: 14 },
      { startJoins: 0, startPosts: 0, flatDays: 0, fullDays: 5 },
      { startJoins: 1, startPosts: 5, flatDays: 1, fullDays: 2 },
    ];
    let n = 0;
    for (const ramp of ramps) {
      for (let d = 0; d <= 16; d++) {
        const first = new Date(t.clock.now().getTime() - d * DAY);
        const id = await insertAccount(t, `ramp_${n++}`, { first_driven_at: first.toISOString() });
        expect({ ramp, d, budget: await budgetInSql(id, ramp) }).toEqual({ ramp, d, budget: rampedPosts(ramp, d) });
      }
    }
  });

  it('gives a limited account three quarters of its posts on the day after its pause, as the rules do', async () => {
    const noRamp: RampUp = { startJoins: 0, startPosts: 0, flatDays: 0, fullDays: 0 };
    const dayAfter = await insertAccount(t, 'limited_yesterday', {
      limited_until: new Date(t.clock.now().getTime() - DAY).toISOString(),
    });
    expect(await budgetInSql(dayAfter, noRamp)).toBe(postsTheDayAfterAPause());
  });
});

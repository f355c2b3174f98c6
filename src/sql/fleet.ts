/** Fleet views: counts and states of the whole fleet, for the start-up log, lexus status, lexus check and the metrics. */
import type { DataSource } from 'typeorm';
import { sql } from '../db/sql';

export interface FleetSummary {
  accountCount: number;
  accountsByStatus: Record<string, number>;
  targetsByStatus: Record<string, number>;
}

export async function summarizeFleet(dataSource: DataSource): Promise<FleetSummary> {
  const { rows } = await sql<{ kind: string; status: string; n: number }>(
    dataSource,
    `SELECT 'account' AS kind, COALESCE(status, 'active') AS status, count(*)::int AS n FROM accounts GROUP BY 2
     UNION ALL
     SELECT 'target', COALESCE(status, 'new'), count(*)::int FROM targets GROUP BY 2`,
  );
  const summary: FleetSummary = { accountCount: 0, accountsByStatus: {}, targetsByStatus: {} };
  for (const row of rows) {
    if (row.kind === 'account') {
      summary.accountsByStatus[row.status] = row.n;
      summary.accountCount += row.n;
    } else {
      summary.targetsByStatus[row.status] = row.n;
    }
  }
  return summary;
}

/** History: the summary of a UTC day, from post_history and join_history. "now" from the caller. */
import type { DataSource } from 'typeorm';
import { sqlTime } from '../db/postgresTypes';
import { TODAY_UTC_SQL } from './rules';
import { sql } from './sql';

export interface DailySummary {
  day: string;
  postsByAccount: Record<string, number>;
  joins: number;
  floodWaits: number;
  groupsLost: number;
}

/** The UTC day before `now`: posts per account, joins, FloodWaits, groups that banned us. */
export async function summarizeDay(db: DataSource, now: Date): Promise<DailySummary> {
  const params = { now: sqlTime(now) };
  const day = `${TODAY_UTC_SQL} - interval '1 day'`;
  const { rows: posts } = await sql<{ session_name: string; n: number }>(
    db,
    `SELECT a.session_name, count(*)::int AS n FROM post_history h JOIN accounts a ON a.id = h.account_id
      WHERE h.status = 'success' AND h.created_at >= ${day} AND h.created_at < ${TODAY_UTC_SQL}
      GROUP BY a.session_name ORDER BY a.session_name`,
    params,
  );
  const { rows: counts } = await sql<{ joins: number; waits: number; lost: number; day: string }>(
    db,
    `SELECT (SELECT count(*)::int FROM join_history WHERE outcome IN ('joined', 'already_member') AND created_at >= ${day} AND created_at < ${TODAY_UTC_SQL}) AS joins,
            (SELECT count(*)::int FROM post_history WHERE status = 'flood_wait' AND created_at >= ${day} AND created_at < ${TODAY_UTC_SQL})
              + (SELECT count(*)::int FROM join_history WHERE outcome = 'account_flood_wait' AND created_at >= ${day} AND created_at < ${TODAY_UTC_SQL}) AS waits,
            (SELECT count(*)::int FROM targets WHERE status = 'banned' AND updated_at >= ${day} AND updated_at < ${TODAY_UTC_SQL}) AS lost,
            to_char(${day}, 'YYYY-MM-DD') AS day`,
    params,
  );
  const c = counts[0]!;
  return {
    day: c.day,
    postsByAccount: Object.fromEntries(posts.map((p) => [p.session_name, p.n])),
    joins: c.joins,
    floodWaits: c.waits,
    groupsLost: c.lost,
  };
}

/**
 * Rule 5 for rows already in the database: the old system stored links as it found them
 * ("t.me/kyiv_cars", "@AutoBazar_UA"), while the daemon looks groups up by their normalized link.
 * Left alone, such a row and a new "@kyiv_cars" row would be one group with two rows, and so
 * possibly two accounts. Each such row gets its normalized link, unless a row with that link
 * exists already: that collision is returned, to be resolved by a person.
 */
import type { QueryRunner } from 'typeorm';
import { InvalidLinkError, normalizeGroupLink } from '../links';
import { sqlTime } from './postgresTypes';
import { sql } from './sql';

export interface StoredLinksResult {
  normalized: { id: number; from: string; to: string }[];
  collisions: { id: number; link: string; normalized: string; otherId: number }[];
  invalid: { id: number; link: string; reason: string }[];
}

export async function normalizeStoredLinks(runner: QueryRunner, now: Date): Promise<StoredLinksResult> {
  const result: StoredLinksResult = { normalized: [], collisions: [], invalid: [] };
  // Rows already in a normalized form are skipped by the pattern (cheap on a big table).
  const { rows } = await sql<{ id: number; link: string }>(
    runner,
    `SELECT id, link FROM targets
      WHERE link !~ '^@[a-z][a-z0-9_]{3,31}$' AND link NOT LIKE 'https://t.me/+%'
      ORDER BY id FOR UPDATE`,
  );
  for (const row of rows) {
    let normalized: string;
    try {
      normalized = normalizeGroupLink(row.link);
    } catch (error) {
      if (!(error instanceof InvalidLinkError)) throw error;
      result.invalid.push({ id: row.id, link: row.link, reason: error.message });
      continue;
    }
    if (normalized === row.link) continue;
    const { rows: other } = await sql<{ id: number }>(runner, `SELECT id FROM targets WHERE link = :normalized`, { normalized });
    if (other[0]) {
      result.collisions.push({ id: row.id, link: row.link, normalized, otherId: other[0].id });
      continue;
    }
    await sql(runner, `UPDATE targets SET link = :normalized, updated_at = CAST(:now AS timestamp) WHERE id = :id`, {
      id: row.id,
      normalized,
      now: sqlTime(now),
    });
    result.normalized.push({ id: row.id, from: row.link, to: normalized });
  }
  return result;
}

/** One group stored under two links: a person must merge the rows before anything binds it. */
export class StoredLinkCollisionError extends Error {
  constructor(readonly collisions: StoredLinksResult['collisions']) {
    super(
      `the database holds one group under two links: ${collisions.map(describeCollision).join('; ')}. ` +
        'Merge each pair by hand (keep the row bound to an account, move or delete the other), then start again.',
    );
    this.name = 'StoredLinkCollisionError';
  }
}

export function describeCollision(c: StoredLinksResult['collisions'][number]): string {
  return `targets rows "${c.link}" (id ${c.id}) and "${c.normalized}" (id ${c.otherId}) are one group`;
}

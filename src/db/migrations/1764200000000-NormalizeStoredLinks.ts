import type { MigrationInterface, QueryRunner } from 'typeorm';
import { normalizeStoredLinks, StoredLinkCollisionError } from '../../sql/groups';

/**
 * Gives rows the old system wrote their normalized links (see normalizeStoredLinks). Two rows
 * that are one group stop the migration: the daemon must not start while a group might be
 * served to two accounts. Links that are not group links at all are left as they are (no
 * account is ever bound through them).
 */
export class NormalizeStoredLinks1764200000000 implements MigrationInterface {
  name = 'NormalizeStoredLinks1764200000000';

  async up(q: QueryRunner): Promise<void> {
    const { collisions } = await normalizeStoredLinks(q, new Date());
    if (collisions.length > 0) throw new StoredLinkCollisionError(collisions);
  }

  async down(): Promise<void> {
    // The old spellings are not kept: nothing to undo.
  }
}

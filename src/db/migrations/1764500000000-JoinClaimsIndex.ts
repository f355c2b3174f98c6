import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The groups an account has claimed and must finish joining (a lost answer, a join request to
 * ask again), found without walking the whole join queue: claimJoinTarget looks for them first.
 */
export class JoinClaimsIndex1764500000000 implements MigrationInterface {
  name = 'JoinClaimsIndex1764500000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE INDEX IF NOT EXISTS targets_join_claims_idx ON targets (join_claimed_by, id)
       WHERE status IN ('new', 'requested') AND join_claimed_by IS NOT NULL`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX IF EXISTS targets_join_claims_idx`);
  }
}

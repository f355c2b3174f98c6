import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * When the fleet last posted, read at every metrics scrape (lexus_last_post_success_timestamp_seconds)
 * from the end of an index instead of a scan of the whole history.
 */
export class LastPostIndex1764600000000 implements MigrationInterface {
  name = 'LastPostIndex1764600000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(
      `CREATE INDEX IF NOT EXISTS post_history_success_time_idx ON post_history (created_at) WHERE status = 'success'`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX IF EXISTS post_history_success_time_idx`);
  }
}

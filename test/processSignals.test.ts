/**
 * src/processSignals.ts, the one owner of the process's stop signals: the newest claim gets a
 * signal alone; with no claim, a handler registered straight on `process` keeps it; else the
 * fallbacks; a signal no one registered for ends the process. Each case runs in a child process
 * (of dist/: `npm run build` first), which signals itself.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const MODULE = JSON.stringify(path.resolve(__dirname, '../dist/processSignals.js'));

function run(body: string): { stdout: string; status: number | null; signal: NodeJS.Signals | null } {
  const script = `
    const signals = require(${MODULE});
    const say = (what) => process.stdout.write(what + '\\n');
    ${body}`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 20_000 });
  return { stdout: r.stdout, status: r.status, signal: r.signal };
}

describe('processSignals', () => {
  it('gives a signal to the newest claim alone, and to the one before once that is released', () => {
    const r = run(`
      signals.claimSignals(['SIGTERM'], () => { say('first'); process.exit(3); });
      const release = signals.claimSignals(['SIGTERM'], () => { say('second'); release(); process.kill(process.pid, 'SIGTERM'); });
      signals.onUnclaimedSignal(['SIGTERM'], () => say('fallback'));
      process.kill(process.pid, 'SIGTERM');
      setTimeout(() => {}, 10_000);`);
    expect(r.stdout).toBe('second\nfirst\n');
    expect(r.status).toBe(3);
  });

  it('tells the fallbacks only when no claim and no other handler on process has the signal', () => {
    const r = run(`
      signals.onUnclaimedSignal(['SIGINT'], () => { say('fallback'); process.exit(4); });
      const other = () => { say('other'); process.off('SIGINT', other); process.kill(process.pid, 'SIGINT'); };
      process.on('SIGINT', other);
      process.kill(process.pid, 'SIGINT');
      setTimeout(() => {}, 10_000);`);
    expect(r.stdout).toBe('other\nfallback\n');
    expect(r.status).toBe(4);
  });

  it('stops listening when everything is released: the signal then ends the process', () => {
    const r = run(`
      const a = signals.claimSignals(['SIGTERM', 'SIGINT'], () => say('claim'));
      const b = signals.onUnclaimedSignal(['SIGTERM', 'SIGHUP'], () => say('fallback'));
      a(); b(); a();
      say(String(process.listenerCount('SIGTERM') + process.listenerCount('SIGINT') + process.listenerCount('SIGHUP')));
      process.kill(process.pid, 'SIGTERM');
      setTimeout(() => {}, 10_000);`);
    expect(r.stdout).toBe('0\n');
    expect(r.signal).toBe('SIGTERM');
  });

  it('runs the exit hooks, oldest first, without changing the exit code', () => {
    const r = run(`
      signals.onProcessExit(() => say('one'));
      const off = signals.onProcessExit(() => say('gone'));
      signals.onProcessExit(() => say('two'));
      off();
      process.exitCode = 5;`);
    expect(r.stdout).toBe('one\ntwo\n');
    expect(r.status).toBe(5);
  });
});

/** A daemon on the test database, the fake Telegram and the test's manual clock. */
import path from 'node:path';
import { afterEach } from 'vitest';
import { assembleDaemon } from '../../src/app';
import type { DaemonSettings } from '../../src/config';
import type { Daemon } from '../../src/daemon/daemon';
import { loadMessages } from '../../src/daemon/messages';
import { seeded } from '../../src/random';
import { FakeTelegram } from '../../src/telegram/fakeGateway';
import type { TestDatabase } from './database';
import { capturedLogger } from './logs';

export const EXAMPLES = path.resolve(__dirname, '../../examples');

export const TEST_SETTINGS: DaemonSettings = {
  niches: ['ukraine_cars'],
  actionDelayMs: { min: 30_000, max: 90_000 },
  maxParallelAccounts: 5,
  joinsPerAccountPerDay: 10,
  groupMinGapMs: 4 * 3_600_000,
  postingHours: { start: 0, end: 24 },
  timeZone: 'UTC',
  joinSpacingMs: 0,
  postSpacingMs: 0,
  // The tests of Telegram's answers act as soon as the rules allow; the plan has tests of its own.
  spread: false,
  rampUp: { startJoins: 10, startPosts: 20, flatDays: 0, fullDays: 0 },
  peerFloodPauseMs: 24 * 3_600_000,
  restriction: { refusals: 2, windowMs: 3_600_000 },
  messagesFile: path.join(EXAMPLES, 'config/messages/cars/messages.json'),
  baseDir: EXAMPLES,
  shutdownGraceMs: 20_000,
  fakeTelegram: false,
};

export { seeded } from '../../src/random';

/**
 * For tests that run `lexus` itself and are not about the day's plan: act as soon as the rules
 * allow, at any hour, at full budgets, no spacing (a real clock is at whatever hour the test runs).
 */
export const AS_SOON_AS_ALLOWED_ENV = {
  LEXUS_SPREAD: '0',
  LEXUS_POSTING_HOURS: '00-24',
  LEXUS_RAMP_UP_DAYS: '0-0',
  LEXUS_JOIN_SPACING_MIN: '0',
  LEXUS_POST_SPACING_MIN: '0',
};

export interface DaemonHarness {
  daemon: Daemon;
  fake: FakeTelegram;
  logs: Record<string, unknown>[];
  /** Runs the daemon for `ms` of virtual time, jumping from one due action to the next. */
  runFor(ms: number): Promise<void>;
}

export function makeDaemon(
  t: TestDatabase,
  options: { settings?: Partial<DaemonSettings>; fake?: FakeTelegram; seed?: number } = {},
): DaemonHarness {
  const settings = { ...TEST_SETTINGS, ...options.settings };
  const fake = options.fake ?? new FakeTelegram({ clock: t.clock });
  const { lines: logs, log } = capturedLogger();
  // Assembled as lexus start and the simulator's replicas are (src/app.ts).
  const { daemon } = assembleDaemon({
    dataSource: t.dataSource,
    connection: t.connection,
    gateway: fake,
    clock: t.clock,
    log,
    settings,
    messages: loadMessages(settings.messagesFile, settings.baseDir),
    random: seeded(options.seed ?? 1),
  });
  return {
    daemon,
    fake,
    logs,
    async runFor(ms: number) {
      const end = t.clock.now().getTime() + ms;
      while (t.clock.now().getTime() < end) {
        await daemon.tick();
        await daemon.idle();
        const now = t.clock.now().getTime();
        const next = Math.min(daemon.nextWakeAt() ?? Infinity, now + 15 * 60_000, end);
        // An account still due after the round (quiet hours, the cap) is looked at a minute later.
        t.clock.set(new Date(next > now ? next : Math.min(now + 60_000, end)));
      }
    },
  };
}

/**
 * For a test file: `daemon(options)` makes a daemon on `t` (makeDaemon), and every daemon made in
 * a test is stopped after it.
 */
export function useDaemons(t: TestDatabase): (options?: Parameters<typeof makeDaemon>[1]) => DaemonHarness {
  let running: DaemonHarness[] = [];
  afterEach(async () => {
    for (const h of running) await h.daemon.stop(1000);
    running = [];
  });
  return (options = {}) => {
    const h = makeDaemon(t, options);
    running.push(h);
    return h;
  };
}

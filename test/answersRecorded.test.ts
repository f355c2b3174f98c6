/**
 * Telegram's answers are never lost or misread when the database fails at the wrong moment
 * (issue 12, parts 1 and 2): a real PostgreSQL is stopped while Telegram's answer is on its
 * way, a write fails with a non-connection error, and one process is cut off from the database
 * while another takes its accounts over. Holds only tighten, and an account does nothing else
 * while an answer of it is unrecorded.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../src/clock';
import { leaseTimes } from '../src/daemon/daemon';
import { runDaemon } from '../src/daemon/run';
import { DbLink } from '../src/simulate/dbLink';
import { type FakeCall, type FakeOp, FakeTelegram } from '../src/telegram/fakeGateway';
import type { TelegramSession } from '../src/telegram/gateway';
import { type DaemonHarness, makeDaemon } from './helpers/daemon';
import { databaseOn, stoppablePostgres, type TestDatabase, useTestDatabase } from './helpers/database';
import { insertDrivableAccount as accountWithSession, insertBoundTarget, insertTarget } from './helpers/fixtures';

const HOUR = 3_600_000;
const START = '2026-03-10T06:00:00.000Z';

/** Runs `then` when Telegram has answered a call of `op` (before the daemon sees the answer), once. */
function whenAnswered(fake: FakeTelegram, op: FakeOp, then: () => Promise<void>): void {
  const session = fake.session.bind(fake);
  let done = false;
  fake.session = (account) => {
    const s = session(account);
    const original = s[op].bind(s) as (...args: unknown[]) => Promise<unknown>;
    (s as unknown as Record<string, unknown>)[op] = async (...args: unknown[]) => {
      const outcome = await original(...args);
      if (!done) {
        done = true;
        await then();
      }
      return outcome;
    };
    return s as TelegramSession;
  };
}

/** Calls of `account` to Telegram (not disconnects) after `from`, up to `to`. */
const callsBetween = (fake: FakeTelegram, account: string, from: number, to: number): FakeCall[] =>
  fake.calls.filter(
    (c) => c.account === account && c.op !== 'disconnect' && c.at.getTime() > from && c.at.getTime() < to,
  );

/** Runs the daemon in real-time steps of `stepMs` virtual (and real) time, as `lexus start` would. */
async function runInRealTime(h: DaemonHarness, t: TestDatabase, ms: number, stepMs = 1000): Promise<void> {
  for (let elapsed = 0; elapsed < ms; elapsed += stepMs) {
    await h.daemon.tick();
    await h.daemon.idle();
    t.clock.advance(stepMs);
    await new Promise((resolve) => setTimeout(resolve, stepMs));
  }
}

describe('an answer whose record fails while PostgreSQL is down', () => {
  let cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const step of cleanup.reverse()) await step();
    cleanup = [];
  });

  async function ownServer() {
    const server = await stoppablePostgres();
    const t = await databaseOn(server.connection, START);
    cleanup.push(
      () => server.remove(),
      () => t.close(),
    );
    return { server, t };
  }

  it('a join answered FLOOD_WAIT_86400: the account makes no call for 86,400 s, and the wait is stored once the database is back', async () => {
    const { server, t } = await ownServer();
    const h = makeDaemon(t);
    cleanup.push(() => h.daemon.stop(1000).then(() => undefined));
    await accountWithSession(t, 'acc_1');
    await insertTarget(t, '@group_one');
    await insertTarget(t, '@group_two');
    h.fake.on({
      op: 'join',
      times: 1,
      outcome: { kind: 'account_flood_wait', seconds: 86400, error: 'FLOOD_WAIT_86400' },
    });
    whenAnswered(h.fake, 'join', () => server.stop());
    await h.runFor(10 * 60_000);
    const answer = h.fake.calls.find((c) => c.op === 'join')!;
    expect(answer.outcome?.kind).toBe('account_flood_wait');
    // About 5 s of outage (and a few virtual minutes), then the database is back.
    await runInRealTime(h, t, 5000);
    expect(h.logs.some((l) => l.event === 'answer.unrecorded')).toBe(true);
    await server.start();
    await h.runFor(2 * 24 * HOUR);

    const waitEnds = answer.at.getTime() + 86400_000;
    expect(callsBetween(h.fake, 'acc_1', answer.at.getTime(), waitEnds)).toEqual([]);
    expect(h.fake.violations()).toEqual([]);
    // It was recorded once the database was back, and the account went on after the wait.
    expect(h.logs.some((l) => l.event === 'answer.recorded')).toBe(true);
    expect(h.fake.calls.filter((c) => c.op === 'join' && c.at.getTime() >= waitEnds).length).toBeGreaterThan(0);
    const [history] = await t.query<{ outcome: string; n: number }>(
      `SELECT outcome, count(*)::int AS n FROM join_history WHERE outcome = 'account_flood_wait' GROUP BY 1`,
    );
    expect(history).toEqual({ outcome: 'account_flood_wait', n: 1 });
  });

  it.each([
    ['USER_BANNED_IN_CHANNEL', { kind: 'group_refuses', reason: 'banned', error: 'USER_BANNED_IN_CHANNEL' }, 'banned'],
    ['CHANNEL_PRIVATE', { kind: 'group_refuses', reason: 'private', error: 'CHANNEL_PRIVATE' }, 'banned'],
    ['a dead link', { kind: 'link_dead', error: 'USERNAME_NOT_OCCUPIED' }, 'error'],
  ] as const)('a join answered %s: no account ever calls that group again', async (_name, outcome, status) => {
    const { server, t } = await ownServer();
    const h = makeDaemon(t);
    cleanup.push(() => h.daemon.stop(1000).then(() => undefined));
    await accountWithSession(t, 'acc_1');
    await accountWithSession(t, 'acc_2');
    await insertTarget(t, '@group_one');
    await insertTarget(t, '@group_two');
    await insertTarget(t, '@group_three');
    h.fake.on({ op: 'join', link: '@group_one', outcome });
    whenAnswered(h.fake, 'join', async () => {
      // Only once the refusal of @group_one is on its way.
      if (h.fake.calls.some((c) => c.op === 'join' && c.link === '@group_one')) await server.stop();
    });
    await h.runFor(5 * 60_000);
    await runInRealTime(h, t, 5000);
    await server.start();
    await h.runFor(3 * 24 * HOUR);
    const calls = h.fake.calls.filter((c) => c.link === '@group_one' && c.op !== 'lookup');
    expect(calls).toHaveLength(1);
    expect(h.fake.calls.filter((c) => c.link === '@group_one' && c.op === 'lookup')).toHaveLength(1);
    expect(await t.query(`SELECT status FROM targets WHERE link = '@group_one'`)).toEqual([{ status }]);
    // The others went on.
    expect(await t.query(`SELECT count(*)::int AS n FROM targets WHERE status = 'joined'`)).toEqual([{ n: 2 }]);
  });

  it('a post answered with a FloodWait while PostgreSQL is down for 40 s: no action inside the wait, the slot settled once it is back', async () => {
    const { server, t } = await ownServer();
    const h = makeDaemon(t);
    cleanup.push(() => h.daemon.stop(1000).then(() => undefined));
    const id = await accountWithSession(t, 'acc_1');
    for (const link of ['@group_one', '@group_two', '@group_three']) {
      await insertBoundTarget(t, link, id);
      h.fake.addMember(link, 'acc_1');
    }
    h.fake.on({
      op: 'post',
      times: 1,
      outcome: { kind: 'account_flood_wait', seconds: 1800, error: 'FLOOD_WAIT_1800' },
    });
    whenAnswered(h.fake, 'post', () => server.stop());
    await h.runFor(5 * 60_000);
    const answer = h.fake.calls.find((c) => c.op === 'post')!;
    expect(answer.outcome?.kind).toBe('account_flood_wait');
    await runInRealTime(h, t, 40_000);
    await server.start();
    await runInRealTime(h, t, 3000);
    // Settled as soon as the database is back, not left pending for some later takeover.
    expect(await t.query(`SELECT status, error_message FROM post_history`)).toEqual([
      { status: 'flood_wait', error_message: 'FLOOD_WAIT_1800' },
    ]);
    await h.runFor(3 * HOUR);
    expect(callsBetween(h.fake, 'acc_1', answer.at.getTime(), answer.at.getTime() + 1800_000)).toEqual([]);
    expect(h.fake.violations()).toEqual([]);
    expect(h.fake.sent().length).toBeGreaterThan(0);
  });
});

describe('an answer whose record fails with an error that is not a lost connection', () => {
  const t = useTestDatabase({ start: START });
  let running: DaemonHarness[] = [];
  afterEach(async () => {
    for (const h of running) await h.daemon.stop(1000);
    running = [];
    await t.query(`DROP TRIGGER IF EXISTS fail_account_writes ON accounts`);
  });

  it('a post answered with a FloodWait while every write of the account fails with SQLSTATE 53300: nothing inside the wait, settled afterwards', async () => {
    await t.query(`CREATE TABLE IF NOT EXISTS fault (on_now boolean)`);
    await t.query(`DELETE FROM fault`);
    await t.query(`INSERT INTO fault VALUES (false)`);
    await t.query(`
      CREATE OR REPLACE FUNCTION fail_account_writes() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF (SELECT on_now FROM fault) THEN
          RAISE EXCEPTION 'sorry, too many clients already' USING ERRCODE = '53300';
        END IF;
        RETURN NEW;
      END $$`);
    await t.query(
      `CREATE TRIGGER fail_account_writes BEFORE UPDATE ON accounts FOR EACH ROW EXECUTE FUNCTION fail_account_writes()`,
    );
    const h = makeDaemon(t);
    running.push(h);
    const id = await accountWithSession(t, 'acc_1');
    for (const link of ['@group_one', '@group_two']) {
      await insertBoundTarget(t, link, id);
      h.fake.addMember(link, 'acc_1');
    }
    h.fake.on({
      op: 'post',
      times: 1,
      outcome: { kind: 'account_flood_wait', seconds: 3600, error: 'FLOOD_WAIT_3600' },
    });
    whenAnswered(h.fake, 'post', async () => {
      await t.query(`UPDATE fault SET on_now = true`);
    });
    await h.runFor(30 * 60_000);
    const answer = h.fake.calls.find((c) => c.op === 'post')!;
    expect(await t.query(`SELECT status FROM post_history`)).toEqual([{ status: 'pending' }]);
    expect(h.logs.find((l) => l.event === 'answer.unrecorded')).toMatchObject({
      account: 'acc_1',
      error: 'sorry, too many clients already',
    });
    await t.query(`UPDATE fault SET on_now = false`);
    await h.runFor(4 * HOUR);
    expect(callsBetween(h.fake, 'acc_1', answer.at.getTime(), answer.at.getTime() + 3600_000)).toEqual([]);
    expect(h.fake.violations()).toEqual([]);
    expect(await t.query(`SELECT status FROM post_history ORDER BY id LIMIT 1`)).toEqual([{ status: 'flood_wait' }]);
    expect(h.fake.sent().length).toBeGreaterThan(0);
  });
});

describe('a process cut off from the database but not from Telegram', () => {
  const t = useTestDatabase({ start: START });
  let cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const step of cleanup.reverse()) await step();
    cleanup = [];
  });

  it('stops its sessions within its lease, and the process taking over calls only after that bound', async () => {
    const link = await DbLink.open(t.connection);
    const cutOff = await databaseOn({ ...t.connection, host: '127.0.0.1', port: link.port }, START);
    cutOff.clock = t.clock;
    cleanup.push(
      () => link.close(),
      () => cutOff.close(),
    );
    const fake = new FakeTelegram({ clock: t.clock });
    const a = makeDaemon(cutOff, { fake, seed: 1 });
    cleanup.push(() => a.daemon.stop(100).then(() => undefined));
    const id = await accountWithSession(t, 'acc_1');
    for (const g of ['@group_one', '@group_two', '@group_three']) {
      await insertBoundTarget(t, g, id);
      fake.addMember(g, 'acc_1');
    }
    await a.runFor(10 * 60_000);
    expect(a.daemon.drivenAccounts()).toEqual(['acc_1']);
    expect(fake.sent().length).toBeGreaterThan(0);

    // A live process renews its lease every few seconds: the last renewal is just before the cut.
    await a.daemon.tick();
    await a.daemon.idle();
    // A partition: A's connections to PostgreSQL close (the server frees A's locks at once), and
    // A cannot reconnect; A still reaches Telegram. B, on the same database, is there to take over.
    link.cut();
    const cutAt = t.clock.now().getTime();
    const b = makeDaemon(t, { fake, seed: 2 });
    cleanup.push(() => b.daemon.stop(1000).then(() => undefined));
    for (let second = 0; second < 120; second++) {
      await Promise.all([a.daemon.tick(), b.daemon.tick()]);
      await Promise.all([a.daemon.idle(), b.daemon.idle()]);
      t.clock.advance(1000);
    }
    await b.runFor(5 * HOUR);

    expect(a.logs.find((l) => l.event === 'lease.lost')).toMatchObject({ accounts: ['acc_1'] });
    expect(b.daemon.drivenAccounts()).toEqual(['acc_1']);
    // Telegram never saw the session twice; A's session closed before B's first call.
    expect(fake.calls.filter((c) => c.outcome?.kind === 'session_dead')).toEqual([]);
    expect(await t.query(`SELECT status FROM accounts`)).toEqual([{ status: 'active' }]);
    const closedByA = fake.calls.find((c) => c.op === 'disconnect' && c.at.getTime() >= cutAt)!;
    const firstOfB = fake.calls.find((c) => c.op !== 'disconnect' && c.at.getTime() > cutAt)!;
    expect(closedByA).toBeDefined();
    expect(firstOfB.at.getTime()).toBeGreaterThan(closedByA.at.getTime());
    // B waited for A's lease (renewed just before the cut), plus the time to confirm and to stop.
    const { leaseMs, afterLeaseMs } = leaseTimes(5000);
    expect(firstOfB.at.getTime() - cutAt).toBeGreaterThanOrEqual(leaseMs + afterLeaseMs);
    expect(b.logs.find((l) => l.event === 'account.lease_wait')).toMatchObject({
      account: 'acc_1',
      previous_driver: a.daemon.instance,
    });
    expect(fake.sent().filter((c) => c.at.getTime() > cutAt).length).toBeGreaterThan(0);
    expect(fake.violations()).toEqual([]);
  });
});

describe('a process whose database stops answering without closing anything (a black hole)', () => {
  const t = useTestDatabase({ start: START });

  it('closes its sessions within the lease even while a round hangs on a query, as lexus start runs it', async () => {
    const link = await DbLink.open(t.connection);
    const behind = await databaseOn({ ...t.connection, host: '127.0.0.1', port: link.port });
    // Real time: lexus start's own loop, a tick every 100 ms.
    const h = makeDaemon({ ...behind, clock: systemClock } as unknown as TestDatabase, {
      settings: { actionDelayMs: { min: 0, max: 0 }, groupMinGapMs: 0 },
    });
    const id = await accountWithSession(t, 'acc_1');
    for (const g of ['@group_one', '@group_two', '@group_three']) {
      await insertBoundTarget(t, g, id, { joined_at: new Date(Date.now() - 48 * HOUR).toISOString() });
      h.fake.addMember(g, 'acc_1');
    }
    const running = runDaemon({
      daemon: h.daemon,
      clock: systemClock,
      log: h.daemon['deps'].log,
      graceMs: 1000,
      onExit: () => undefined,
      tickMs: 100,
    });
    try {
      const deadline = Date.now() + 20_000;
      while (!h.fake.calls.some((c) => c.op === 'connect' && c.outcome?.kind === 'connected') && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 100));
      expect(h.daemon.drivenAccounts()).toEqual(['acc_1']);
      link.stall();
      const stalledAt = Date.now();
      while (
        !h.fake.calls.some((c) => c.op === 'disconnect' && c.at.getTime() >= stalledAt) &&
        Date.now() < stalledAt + 40_000
      ) {
        await new Promise((r) => setTimeout(r, 100));
      }
      const closed = h.fake.calls.find((c) => c.op === 'disconnect' && c.at.getTime() >= stalledAt);
      expect(closed).toBeDefined();
      // Its last renewal was at most a refresh (5 s) before the stall: closed by then + lease + one more try.
      const { leaseMs } = leaseTimes(5000);
      expect(closed!.at.getTime() - stalledAt).toBeLessThanOrEqual(leaseMs + 5000 + 1000);
      expect(h.logs.find((l) => l.event === 'lease.lost')).toMatchObject({ accounts: ['acc_1'] });
      expect(h.fake.calls.filter((c) => c.op !== 'disconnect' && c.at.getTime() > closed!.at.getTime())).toEqual([]);
    } finally {
      await link.close();
      await running.stop();
      await behind.close();
    }
  }, 90_000);
});

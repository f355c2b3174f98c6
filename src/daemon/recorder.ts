/**
 * The one persistence policy for Telegram's answers: each answer's record (src/sql/answers.ts
 * recordAnswer) is tried at once; when the database does not take it (down, cut off, out of
 * connections, any error), it is kept here and tried again with growing pauses, for as long as it
 * takes, and the account does nothing else meanwhile (the daemon asks `blocked`). Records of one
 * account are written in the order Telegram gave the answers. A failure is logged once per
 * account until its records go through, then once more when they do.
 *
 * Time is the daemon's clock: the simulator and the tests run it on virtual time.
 */
import type { DataSource } from 'typeorm';
import { type Clock, SECOND_MS } from '../clock';
import type { Logger } from '../logger';
import { type AnswerRecord, type AnswerResult, recordAnswer } from '../sql/answers';

const FIRST_RETRY_MS = SECOND_MS;
const MAX_RETRY_MS = 60 * SECOND_MS;

interface Pending {
  record: AnswerRecord;
  /** What the answer was, for the logs. */
  what: string;
  onRecorded: (result: AnswerResult) => void | Promise<void>;
}

interface Queue {
  account: string;
  entries: Pending[];
  tries: number;
  nextTryAt: number;
  firstFailedAt: number;
}

export interface RecorderDeps {
  dataSource: DataSource;
  clock: Clock;
  log: Logger;
  /** The write itself; recordAnswer unless a test passes another. */
  write?: (ds: DataSource, record: AnswerRecord) => Promise<AnswerResult>;
}

export class AnswerRecorder {
  private readonly queues = new Map<number, Queue>();
  private flushing: Promise<void> | undefined;

  constructor(private readonly deps: RecorderDeps) {}

  /** Some answer of this account is not recorded yet: it must not call Telegram. */
  blocked(accountId: number): boolean {
    return this.queues.has(accountId);
  }

  /** Accounts with answers not recorded yet, and how many. */
  unrecorded(): { account: string; answers: string[] }[] {
    return [...this.queues.values()].map((q) => ({ account: q.account, answers: q.entries.map((e) => e.what) }));
  }

  /** When the next try is due (ms since the epoch); undefined when nothing waits. */
  nextTryAt(accountId?: number): number | undefined {
    const queues =
      accountId === undefined
        ? [...this.queues.values()]
        : [this.queues.get(accountId)].filter((q): q is Queue => q !== undefined);
    return queues.length ? Math.min(...queues.map((q) => q.nextTryAt)) : undefined;
  }

  /**
   * Records an answer now if the database takes it (then `onRecorded` has run when this
   * resolves, and it returns true); else keeps it for later and returns false. Never throws.
   */
  async record(
    account: string,
    record: AnswerRecord,
    what: string,
    onRecorded: Pending['onRecorded'],
  ): Promise<boolean> {
    const entry: Pending = { record, what, onRecorded };
    const queue = this.queues.get(record.accountId);
    if (queue) {
      // Earlier answers of this account wait: this one goes after them, in Telegram's order.
      queue.entries.push(entry);
      return false;
    }
    let result: AnswerResult;
    try {
      result = await this.write(record);
    } catch (error) {
      const now = this.deps.clock.now().getTime();
      this.queues.set(record.accountId, {
        account,
        entries: [entry],
        tries: 1,
        nextTryAt: now + FIRST_RETRY_MS,
        firstFailedAt: now,
      });
      this.deps.log.error(
        { event: 'answer.unrecorded', account, answer: what, error: (error as Error).message },
        `could not record Telegram's answer (${what}); the account does nothing else until it is recorded, trying again`,
      );
      return false;
    }
    await this.recorded({ record, what, onRecorded }, result);
    return true;
  }

  /** What follows a record is the daemon's; a failure of it must not make the record look lost. */
  private async recorded(entry: Pending, result: AnswerResult): Promise<void> {
    try {
      await entry.onRecorded(result);
    } catch (error) {
      this.deps.log.error(
        { event: 'answer.after_record_failed', answer: entry.what, error: (error as Error).message },
        'what follows a recorded answer failed',
      );
    }
  }

  /** Tries the records that are due, each account's in order; resolves when this pass is over. */
  flush(): Promise<void> {
    return this.pass(false);
  }

  /** Tries every record now, due or not (a stop, before its deadline). */
  flushNow(): Promise<void> {
    return this.pass(true);
  }

  private pass(all: boolean): Promise<void> {
    this.flushing ??= this.flushDue(all).finally(() => {
      this.flushing = undefined;
    });
    return this.flushing;
  }

  private async flushDue(all: boolean): Promise<void> {
    const now = this.deps.clock.now().getTime();
    for (const [accountId, queue] of [...this.queues]) {
      if (!all && queue.nextTryAt > now) continue;
      let failed = false;
      while (queue.entries.length > 0) {
        const entry = queue.entries[0]!;
        let result: AnswerResult;
        try {
          result = await this.write(entry.record);
        } catch {
          queue.tries++;
          queue.nextTryAt =
            this.deps.clock.now().getTime() + Math.min(FIRST_RETRY_MS * 2 ** (queue.tries - 1), MAX_RETRY_MS);
          failed = true;
          break;
        }
        queue.entries.shift();
        await this.recorded(entry, result);
      }
      if (queue.entries.length === 0) {
        this.queues.delete(accountId);
        this.deps.log.info(
          {
            event: 'answer.recorded',
            account: queue.account,
            tries: queue.tries,
            waited_ms: this.deps.clock.now().getTime() - queue.firstFailedAt,
          },
          `Telegram's answers recorded after ${queue.tries} tries; the account goes on`,
        );
      }
      // The database did not take it: the others wait for the next pass rather than each costing
      // a statement timeout now (a round stays short while the database is away).
      if (failed && !all) break;
    }
  }

  private write(record: AnswerRecord): Promise<AnswerResult> {
    return (this.deps.write ?? recordAnswer)(this.deps.dataSource, record);
  }
}

/**
 * The simulator's clock: a ManualClock whose sleeps are virtual. A sleep resolves when the
 * simulation moves the clock past its end, never by itself, so a simulated week passes as fast
 * as the database answers. Timers are woken one at a time, in order, so that two sleepers never
 * run at once.
 */
import { ManualClock } from '../clock';

interface Timer {
  at: number;
  seq: number;
  wake: () => void;
}

export class VirtualClock extends ManualClock {
  private timers: Timer[] = [];
  private seq = 0;
  private sleepListeners: (() => void)[] = [];

  /** Resolves once the clock has been moved `ms` on (and this timer's turn has come). */
  sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      this.timers.push({ at: this.now().getTime() + Math.max(0, ms), seq: this.seq++, wake: resolve });
      for (const listener of this.sleepListeners.splice(0)) listener();
    });
  }

  /** How many sleeps are waiting. */
  get sleeping(): number {
    return this.timers.length;
  }

  /** When the earliest sleep ends (ms since the epoch). */
  nextTimerAt(): number | undefined {
    let next: number | undefined;
    for (const t of this.timers) if (next === undefined || t.at < next) next = t.at;
    return next;
  }

  /** Wakes the earliest sleep that is due by now; false when none is. */
  wakeOne(): boolean {
    const now = this.now().getTime();
    let best: Timer | undefined;
    for (const t of this.timers) {
      if (t.at <= now && (!best || t.at < best.at || (t.at === best.at && t.seq < best.seq))) best = t;
    }
    if (!best) return false;
    this.timers = this.timers.filter((t) => t !== best);
    best.wake();
    return true;
  }

  /** Resolves when somebody next starts a sleep. */
  untilSomeoneSleeps(): Promise<void> {
    return new Promise<void>((resolve) => this.sleepListeners.push(resolve));
  }
}

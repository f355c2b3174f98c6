/**
 * The one clock. Every rule that depends on time (warm-up, the limits' UTC day, FloodWait,
 * pacing) asks a Clock for "now", and the DbManager passes that instant to its SQL as a
 * parameter instead of calling now(), so tests and the simulator can run on virtual time.
 */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = {
  now: () => new Date(),
};

/** A clock that only moves when told to. For tests and the simulator. */
export class ManualClock implements Clock {
  private current: number;

  constructor(start: Date | string = '2026-01-01T12:00:00.000Z') {
    this.current = new Date(start).getTime();
    if (Number.isNaN(this.current)) throw new Error(`ManualClock: invalid start time ${String(start)}`);
  }

  now(): Date {
    return new Date(this.current);
  }

  set(to: Date | string): void {
    const next = new Date(to).getTime();
    if (Number.isNaN(next)) throw new Error(`ManualClock: invalid time ${String(to)}`);
    this.current = next;
  }

  advance(ms: number): Date {
    this.current += ms;
    return this.now();
  }
}

export const SECOND_MS = 1000;
export const MINUTE_MS = 60 * SECOND_MS;
export const HOUR_MS = 60 * MINUTE_MS;
export const DAY_MS = 24 * HOUR_MS;

/** Midnight UTC at the start of the day that contains `instant`. */
export function utcDayStart(instant: Date): Date {
  return new Date(Date.UTC(instant.getUTCFullYear(), instant.getUTCMonth(), instant.getUTCDate()));
}

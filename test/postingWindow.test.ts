import { describe, expect, it } from 'vitest';
import {
  describePostingWindow,
  inPostingWindow,
  localHour,
  localInstant,
  postingWindowAt,
} from '../src/daemon/postingWindow';

const iso = (ms: number) => new Date(ms).toISOString();
const day = { start: 8, end: 22 };

describe('the posting window', () => {
  it("reads the hour in the audience's zone, summer time included", () => {
    expect(localHour(new Date('2026-01-15T21:30:00Z'), 'Europe/Kyiv')).toBe(23); // UTC+2 in winter
    expect(localHour(new Date('2026-07-15T21:30:00Z'), 'Europe/Kyiv')).toBe(0); // UTC+3 in summer
  });

  it('08-22 in Kyiv is 06-20 UTC in winter and 05-19 UTC in summer, inside one UTC day both', () => {
    expect(postingWindowAt(new Date('2026-01-15T12:00:00Z'), day, 'Europe/Kyiv')).toEqual({
      start: Date.parse('2026-01-15T06:00:00Z'),
      end: Date.parse('2026-01-15T20:00:00Z'),
    });
    expect(postingWindowAt(new Date('2026-07-15T12:00:00Z'), day, 'Europe/Kyiv')).toEqual({
      start: Date.parse('2026-07-15T05:00:00Z'),
      end: Date.parse('2026-07-15T19:00:00Z'),
    });
    // Before the window: today's; after it: tomorrow's.
    expect(iso(postingWindowAt(new Date('2026-01-15T03:00:00Z'), day, 'Europe/Kyiv').start)).toBe(
      '2026-01-15T06:00:00.000Z',
    );
    expect(iso(postingWindowAt(new Date('2026-01-15T20:00:00Z'), day, 'Europe/Kyiv').start)).toBe(
      '2026-01-16T06:00:00.000Z',
    );
    expect(inPostingWindow(new Date('2026-01-15T05:59:59Z'), day, 'Europe/Kyiv')).toBe(false);
    expect(inPostingWindow(new Date('2026-01-15T06:00:00Z'), day, 'Europe/Kyiv')).toBe(true);
    expect(inPostingWindow(new Date('2026-01-15T19:59:59Z'), day, 'Europe/Kyiv')).toBe(true);
    expect(inPostingWindow(new Date('2026-01-15T20:00:00Z'), day, 'Europe/Kyiv')).toBe(false);
  });

  it('on the days the clocks change, the window is at the right UTC instants', () => {
    // Last Sunday of March: Kyiv goes from UTC+2 to UTC+3 at 03:00 local.
    expect(postingWindowAt(new Date('2026-03-29T00:00:00Z'), day, 'Europe/Kyiv')).toEqual({
      start: Date.parse('2026-03-29T05:00:00Z'),
      end: Date.parse('2026-03-29T19:00:00Z'),
    });
    expect(postingWindowAt(new Date('2026-03-28T12:00:00Z'), day, 'Europe/Kyiv')).toEqual({
      start: Date.parse('2026-03-28T06:00:00Z'),
      end: Date.parse('2026-03-28T20:00:00Z'),
    });
    // Last Sunday of October: back to UTC+2 at 04:00 local.
    expect(postingWindowAt(new Date('2026-10-25T00:00:00Z'), day, 'Europe/Kyiv')).toEqual({
      start: Date.parse('2026-10-25T06:00:00Z'),
      end: Date.parse('2026-10-25T20:00:00Z'),
    });
    // A window over the switch itself: 23 hours long in spring, 25 in autumn.
    const night = { start: 0, end: 23 };
    const spring = postingWindowAt(new Date('2026-03-29T00:00:00Z'), night, 'Europe/Kyiv');
    expect((spring.end - spring.start) / 3_600_000).toBe(22);
    // An hour the clocks skip is the instant they jump to.
    expect(iso(localInstant(2026, 3, 29, 3, 'Europe/Kyiv'))).toBe('2026-03-29T01:00:00.000Z');
    // An hour the clocks show twice (03:00 on 25 October, first in summer time, UTC+3, then at
    // UTC+2) is the first time, east of UTC as west of it (01:00 on 1 November in New York).
    expect(iso(localInstant(2026, 10, 25, 3, 'Europe/Kyiv'))).toBe('2026-10-25T00:00:00.000Z');
    expect(iso(localInstant(2026, 11, 1, 1, 'America/New_York'))).toBe('2026-11-01T05:00:00.000Z');
    const autumn = postingWindowAt(new Date('2026-10-24T22:30:00Z'), night, 'Europe/Kyiv');
    expect((autumn.end - autumn.start) / 3_600_000).toBe(24);
    // A window that ends at that hour ends when the clocks first show it, as inPostingWindow says.
    const lateNight = { start: 20, end: 3 };
    const w = postingWindowAt(new Date('2026-10-24T23:30:00Z'), lateNight, 'Europe/Kyiv');
    expect(w).toEqual({ start: Date.parse('2026-10-24T17:00:00Z'), end: Date.parse('2026-10-25T00:00:00Z') });
    expect(inPostingWindow(new Date(w.end - 1), lateNight, 'Europe/Kyiv')).toBe(true);
    expect(inPostingWindow(new Date('2026-10-25T00:30:00Z'), lateNight, 'Europe/Kyiv')).toBe(false);
    expect(iso(postingWindowAt(new Date('2026-10-25T00:30:00Z'), lateNight, 'Europe/Kyiv').start)).toBe(
      '2026-10-25T18:00:00.000Z',
    );
    // Every instant of a window around either switch is inside it, and the instant it ends is not.
    for (const [at, hours] of [
      ['2026-10-24T12:00:00Z', { start: 3, end: 22 }],
      ['2026-10-24T12:00:00Z', lateNight],
      ['2026-03-28T12:00:00Z', lateNight],
      ['2026-03-28T12:00:00Z', { start: 3, end: 4 }],
    ] as const) {
      const found = postingWindowAt(new Date(at), hours, 'Europe/Kyiv');
      for (let ms = found.start; ms < found.end; ms += 15 * 60_000)
        expect(inPostingWindow(new Date(ms), hours, 'Europe/Kyiv')).toBe(true);
      expect(inPostingWindow(new Date(found.end), hours, 'Europe/Kyiv')).toBe(false);
    }
  });

  it('may cross local midnight (20-02), and then spans two UTC days', () => {
    const evening = { start: 20, end: 2 };
    expect(postingWindowAt(new Date('2026-01-15T23:30:00Z'), evening, 'Europe/Kyiv')).toEqual({
      start: Date.parse('2026-01-15T18:00:00Z'),
      end: Date.parse('2026-01-16T00:00:00Z'),
    });
    expect(inPostingWindow(new Date('2026-01-15T23:30:00Z'), evening, 'Europe/Kyiv')).toBe(true); // 01:30 local
    expect(inPostingWindow(new Date('2026-01-16T00:00:00Z'), evening, 'Europe/Kyiv')).toBe(false); // 02:00 local
    expect(postingWindowAt(new Date('2026-01-15T12:00:00Z'), { start: 22, end: 8 }, 'UTC')).toEqual({
      start: Date.parse('2026-01-15T22:00:00Z'),
      end: Date.parse('2026-01-16T08:00:00Z'),
    });
  });

  it('says where it is for the start-up log', () => {
    expect(describePostingWindow(new Date('2026-01-15T12:00:00Z'), day, 'Europe/Kyiv')).toBe(
      '08-22 Europe/Kyiv (06:00-20:00 UTC)',
    );
    expect(describePostingWindow(new Date('2026-07-15T12:00:00Z'), day, 'Europe/Kyiv')).toBe(
      '08-22 Europe/Kyiv (05:00-19:00 UTC)',
    );
  });
});

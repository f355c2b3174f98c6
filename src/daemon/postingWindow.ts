/**
 * The posting window: LEXUS_POSTING_HOURS (default 08-22) in LEXUS_TIMEZONE (default
 * Europe/Kyiv), the audience's waking hours in the audience's zone. No post and no join outside
 * it. Instants are worked out from the zone's rules through Intl, so a day of 23 or 25 hours (the
 * switches to and from summer time) has its window at the right UTC instants.
 */
import { DAY_MS, HOUR_MS } from '../clock';

/** LEXUS_POSTING_HOURS and LEXUS_TIMEZONE when not set: the daytime of a Ukrainian car buyer. */
export const DEFAULT_POSTING_HOURS: PostingHours = { start: 8, end: 22 };
export const DEFAULT_TIME_ZONE = 'Europe/Kyiv';

/** Local hours [start, end); end before start crosses local midnight (20-02). */
export interface PostingHours {
  start: number;
  end: number;
}

/** The local hour (0-23) of `instant` in `timeZone`. */
export function localHour(instant: Date, timeZone: string): number {
  return localParts(instant.getTime(), timeZone).hour;
}

/** One formatter per zone: building one costs far more than using it, and the daemon asks every round. */
const formatters = new Map<string, Intl.DateTimeFormat>();

/** The local calendar date and time of `ms` in `timeZone`. */
function localParts(
  ms: number,
  timeZone: string,
): { year: number; month: number; day: number; hour: number; minute: number; second: number } {
  let format = formatters.get(timeZone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-GB', {
      timeZone,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
      hourCycle: 'h23',
    });
    formatters.set(timeZone, format);
  }
  const parts = Object.fromEntries(format.formatToParts(new Date(ms)).map((p) => [p.type, p.value]));
  return {
    year: Number(parts.year),
    month: Number(parts.month),
    day: Number(parts.day),
    hour: Number(parts.hour),
    minute: Number(parts.minute),
    second: Number(parts.second),
  };
}

/** The zone's wall-clock reading at `ms`, as if it were UTC (to compare with Date.UTC of a local time). */
function wallClockAt(ms: number, timeZone: string): number {
  const p = localParts(ms, timeZone);
  return Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second);
}

/** How far the zone's clocks are ahead of UTC at `ms`. */
function offsetAt(ms: number, timeZone: string): number {
  return wallClockAt(ms, timeZone) - Math.floor(ms / 1000) * 1000;
}

/**
 * The instant the zone's clocks show `hour`:00 on the local date year-month-day (hour 24: the
 * next day's 00:00). An hour the clocks skip (spring forward) is the instant they jump over it;
 * one they show twice (fall back), the first time.
 */
export function localInstant(year: number, month: number, day: number, hour: number, timeZone: string): number {
  const wall = Date.UTC(year, month - 1, day, hour);
  // The offsets in force around that day: a switch between them changes the reading.
  const offsets = new Set([
    offsetAt(wall - DAY_MS, timeZone),
    offsetAt(wall, timeZone),
    offsetAt(wall + DAY_MS, timeZone),
  ]);
  const readings = [...offsets].map((offset) => wall - offset);
  const shown = readings.filter((ms) => wallClockAt(ms, timeZone) === wall).sort((a, b) => a - b);
  // Skipped: with the offset before the jump, the reading is the instant of the jump.
  return shown[0] ?? Math.max(...readings);
}

/** Whether `instant` is in the posting window. */
export function inPostingWindow(instant: Date, hours: PostingHours, timeZone: string): boolean {
  const hour = localHour(instant, timeZone);
  return hours.start < hours.end ? hour >= hours.start && hour < hours.end : hour >= hours.start || hour < hours.end;
}

/** The posting window that contains `instant`, else the next one: [start, end) in ms since the epoch. */
export function postingWindowAt(instant: Date, hours: PostingHours, timeZone: string): { start: number; end: number } {
  const ms = instant.getTime();
  const today = localParts(ms, timeZone);
  // Windows that start on the local day before, the day itself and the day after.
  for (const shift of [-1, 0, 1, 2]) {
    const date = new Date(Date.UTC(today.year, today.month - 1, today.day + shift));
    const [y, m, d] = [date.getUTCFullYear(), date.getUTCMonth() + 1, date.getUTCDate()];
    const start = localInstant(y, m, d, hours.start, timeZone);
    const endDate = new Date(Date.UTC(y, m - 1, d + (hours.end <= hours.start ? 1 : 0)));
    const end = localInstant(
      endDate.getUTCFullYear(),
      endDate.getUTCMonth() + 1,
      endDate.getUTCDate(),
      hours.end,
      timeZone,
    );
    if (end > ms) return { start, end };
  }
  throw new Error(
    `no posting window found after ${instant.toISOString()} (${hours.start}-${hours.end} in ${timeZone})`,
  );
}

/** The parts of [from, to) the posting window is open, in order. */
export function openParts(from: number, to: number, hours: PostingHours, timeZone: string): [number, number][] {
  const parts: [number, number][] = [];
  let at = from;
  while (at < to) {
    const w = postingWindowAt(new Date(at), hours, timeZone);
    if (w.start >= to) break;
    parts.push([Math.max(w.start, from), Math.min(w.end, to)]);
    at = w.end;
  }
  return parts;
}

/** How long the window is open in these parts. */
export const openTime = (parts: readonly [number, number][]) => parts.reduce((ms, [a, b]) => ms + (b - a), 0);

/**
 * The instant `delay` of open time after the start of `parts` (time while the window is shut does
 * not count); the end of the last part when they hold less.
 */
export function afterOpenTime(parts: readonly [number, number][], delay: number): number {
  let left = delay;
  for (const [a, b] of parts) {
    if (left <= b - a) return a + left;
    left -= b - a;
  }
  return parts.length ? parts[parts.length - 1]![1] : 0;
}

/** 14:20 as the zone's clocks show it; with `today`, its date too when it is another day there. */
export function localTime(instant: Date, timeZone: string, today?: Date): string {
  const p = localParts(instant.getTime(), timeZone);
  const two = (n: number) => String(n).padStart(2, '0');
  const time = `${two(p.hour)}:${two(p.minute)}`;
  if (!today) return time;
  // "03-11 14:20" when it is not on `today`'s local date.
  const t = localParts(today.getTime(), timeZone);
  return t.year === p.year && t.month === p.month && t.day === p.day ? time : `${two(p.month)}-${two(p.day)} ${time}`;
}

/** "08-22 Europe/Kyiv (06:00-20:00 UTC)", for the start-up log. */
export function describePostingWindow(now: Date, hours: PostingHours, timeZone: string): string {
  const w = postingWindowAt(now, hours, timeZone);
  const utc = (ms: number) => new Date(ms).toISOString().slice(11, 16);
  const two = (h: number) => String(h).padStart(2, '0');
  return `${two(hours.start)}-${two(hours.end)} ${timeZone} (${utc(w.start)}-${utc(w.end)} UTC${w.end - w.start === ((hours.end - hours.start + 24) % 24 || 24) * HOUR_MS ? '' : ', a day of summer-time change'})`;
}

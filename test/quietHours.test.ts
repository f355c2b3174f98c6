import { describe, expect, it } from 'vitest';
import { inQuietHours, localHour } from '../src/daemon/quietHours';

describe('quiet hours', () => {
  it('read the hour in the configured zone, summer time included', () => {
    expect(localHour(new Date('2026-01-15T21:30:00Z'), 'Europe/Kyiv')).toBe(23); // UTC+2 in winter
    expect(localHour(new Date('2026-07-15T21:30:00Z'), 'Europe/Kyiv')).toBe(0); // UTC+3 in summer
  });

  it('wrap past midnight (23-07) or not (01-05)', () => {
    const night = { start: 23, end: 7 };
    expect(inQuietHours(new Date('2026-01-15T21:00:00Z'), night, 'Europe/Kyiv')).toBe(true); // 23:00
    expect(inQuietHours(new Date('2026-01-15T04:59:00Z'), night, 'Europe/Kyiv')).toBe(true); // 06:59
    expect(inQuietHours(new Date('2026-01-15T05:00:00Z'), night, 'Europe/Kyiv')).toBe(false); // 07:00
    expect(inQuietHours(new Date('2026-01-15T20:59:00Z'), night, 'Europe/Kyiv')).toBe(false); // 22:59
    expect(inQuietHours(new Date('2026-01-15T03:00:00Z'), { start: 1, end: 5 }, 'UTC')).toBe(true);
    expect(inQuietHours(new Date('2026-01-15T05:00:00Z'), { start: 1, end: 5 }, 'UTC')).toBe(false);
  });
});

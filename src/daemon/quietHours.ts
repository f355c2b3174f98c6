/** LEXUS_QUIET_HOURS: no joins or posts between `start` and `end` o'clock in `timeZone`. */
export function localHour(instant: Date, timeZone: string): number {
  const hour = new Intl.DateTimeFormat('en-GB', { timeZone, hour: '2-digit', hourCycle: 'h23' }).format(instant);
  return Number(hour);
}

/** 23-07 is quiet from 23:00 to 06:59; 01-05 from 01:00 to 04:59. */
export function inQuietHours(instant: Date, quiet: { start: number; end: number }, timeZone: string): boolean {
  const hour = localHour(instant, timeZone);
  return quiet.start < quiet.end ? hour >= quiet.start && hour < quiet.end : hour >= quiet.start || hour < quiet.end;
}

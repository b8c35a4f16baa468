// Cron expressions through croner (a maintained parser, not ours): 5 fields, or 6 with seconds
// first, and the nicknames (@hourly, @daily, ...), in an IANA time zone (UTC by default).
import { Cron } from 'croner';
import { CellhostError } from '../core/errors.ts';

export interface Schedule {
  /** the first scheduled time strictly after `afterMs`, or null when there is none */
  next(afterMs: number): number | null;
  /** the latest scheduled time at or before `atMs`, or null */
  latest(atMs: number): number | null;
  /** whether the expression has a seconds field */
  hasSeconds: boolean;
}

export function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/** parses and checks an expression; a bad one is ERR_VALIDATION naming the field */
export function parseSchedule(expression: string, timeZone = 'UTC'): Schedule {
  if (!isTimeZone(timeZone)) throw new CellhostError('ERR_VALIDATION', `timeZone: "${timeZone}" is not an IANA time zone (such as UTC or Europe/Paris)`, { details: { field: 'timeZone' } });
  const text = expression.trim().replace(/\s+/g, ' ');
  let cron: Cron;
  try {
    cron = new Cron(text, { timezone: timeZone, mode: '5-or-6-parts', paused: true });
  } catch (err) {
    const why = (err as Error).message.replace(/^CronPattern: /, '');
    throw new CellhostError('ERR_VALIDATION', `schedule: ${why} (5 fields "min hour day month weekday", or 6 with seconds first)`, { details: { field: 'schedule' } });
  }
  if (!cron.nextRun(new Date(0))) throw new CellhostError('ERR_VALIDATION', `schedule: "${text}" never runs`, { details: { field: 'schedule' } });
  return {
    next(afterMs) {
      // croner's reference is exclusive down to the second: step past it explicitly
      return cron.nextRun(new Date(afterMs))?.getTime() ?? null;
    },
    latest(atMs) {
      return cron.previousRuns(1, new Date(atMs + 1))[0]?.getTime() ?? null;
    },
    hasSeconds: !text.startsWith('@') && text.split(' ').length === 6,
  };
}

// `since`/`until` as users type them: an ISO time, epoch milliseconds, or a duration ago
// ("90s", "15m", "2h", "7d").
import { CellhostError } from './errors.ts';

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export function parseDuration(text: string): number | null {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(text.trim());
  return m ? Number(m[1]) * UNITS[m[2]!]! : null;
}

export function parseTime(text: string | undefined, now: number, field: string): number | undefined {
  if (text === undefined || text === '') return undefined;
  const ago = parseDuration(text);
  if (ago !== null) return now - ago;
  if (/^\d{10,}$/.test(text)) return Number(text);
  const t = Date.parse(text);
  if (Number.isNaN(t)) throw new CellhostError('ERR_VALIDATION', `${field}: "${text}" is not a time (ISO 8601, epoch ms, or a duration such as 15m)`);
  return t;
}

const UNIT_S: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86_400 };

/** a duration as users type a setting: "15m", "1h30m", "90s", "0.5s", or plain seconds → seconds; null if it is none */
export function parseDurationSeconds(text: string): number | null {
  const t = text.trim();
  if (/^\d+(\.\d+)?$/.test(t)) return Number(t);
  if (!/^(\d+(\.\d+)?(ms|s|m|h|d))+$/.test(t)) return null;
  let total = 0;
  for (const m of t.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g)) total += Number(m[1]) * UNIT_S[m[2]!]!;
  return Math.round(total * 1000) / 1000;
}

/** seconds as the shortest exact duration that parseDurationSeconds reads back: "15m", "1h30m", "0.5s" */
export function formatDurationSeconds(s: number): string {
  if (!Number.isInteger(s) || s === 0) return `${s}s`;
  const parts: string[] = [];
  let rest = s;
  for (const [unit, size] of [['d', 86_400], ['h', 3600], ['m', 60], ['s', 1]] as const) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
  }
  return parts.join('');
}

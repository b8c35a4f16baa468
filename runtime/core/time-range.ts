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

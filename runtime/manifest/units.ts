// Sizes and durations as people write them in a manifest: 512, "512MB", "1GB"; 300, "5m", "1h30m".

const MB_PER: Record<string, number> = { m: 1, mb: 1, mib: 1, g: 1024, gb: 1024, gib: 1024 };

/** "512MB", "1GB", "1.5GB" → whole MB; null when not a size */
export function parseMemoryMb(text: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]+)?\s*$/i.exec(text);
  if (!m) return null;
  const unit = (m[2] ?? 'mb').toLowerCase();
  const per = MB_PER[unit];
  if (per === undefined) return null;
  const mb = Number(m[1]) * per;
  return Number.isInteger(mb) ? mb : null;
}

const SECONDS_PER: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86_400 };

/** "90s", "5m", "1h30m", "500ms" → seconds; null when not a duration */
export function parseDurationS(text: string): number | null {
  const t = text.trim();
  if (!/^(\d+(\.\d+)?(ms|s|m|h|d))+$/.test(t)) return null;
  let total = 0;
  for (const part of t.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g)) total += Number(part[1]) * SECONDS_PER[part[2]!]!;
  return Math.round(total * 1000) / 1000;
}

/** seconds as the shortest plain words: 300 → "5m", 5400 → "1h30m", 0.5 → "500ms" */
export function formatDurationS(seconds: number): string {
  if (seconds < 1) return `${Math.round(seconds * 1000)}ms`;
  let rest = seconds;
  let out = '';
  for (const [unit, size] of [['d', 86_400], ['h', 3600], ['m', 60]] as const) {
    if (rest >= size) {
      out += `${Math.floor(rest / size)}${unit}`;
      rest = Math.round((rest % size) * 1000) / 1000;
    }
  }
  return rest || !out ? `${out}${rest}s` : out;
}

// How numbers, times and sizes read on the pages.
import { MB_PER_CORE } from '../runtime/core/cpu-for-memory.ts';

export { MB_PER_CORE };

/** memory size → CPU cap as a percentage of one core (memory / 1769 MB) */
export function formatCpuCap(memoryMb: number): string {
  return `${((memoryMb / MB_PER_CORE) * 100).toFixed(1)} %`;
}

export function formatMemory(mb: number): string {
  return mb >= 1024 && mb % 1024 === 0 ? `${mb / 1024} GB` : `${mb} MB`;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

/** a duration in ms as "840 ms", "3.2 s", "4 min 05 s", "2 h 10 min" */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}

/** "2024-05-01 12:00:03" in UTC: the same on every viewer's screen, sortable */
export function formatTime(iso: string | number | null | undefined): string {
  if (iso === null || iso === undefined) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '—';
  return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, '');
}

/** "3 min ago" relative to now (epoch ms) */
export function formatAgo(iso: string | null | undefined, now: number): string {
  if (!iso) return '—';
  const ms = now - Date.parse(iso);
  if (!Number.isFinite(ms)) return '—';
  if (ms < 5_000) return 'just now';
  if (ms < 60_000) return `${Math.floor(ms / 1000)} s ago`;
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)} min ago`;
  if (ms < 86_400_000) return `${Math.floor(ms / 3_600_000)} h ago`;
  return `${Math.floor(ms / 86_400_000)} d ago`;
}

export function formatCost(cost: number): string {
  if (cost === 0) return '$0';
  // fractions of a cent: two significant digits, so a small bill does not read as $0.000000
  if (cost < 0.01) return `$${cost.toFixed(Math.min(12, 1 - Math.floor(Math.log10(cost))))}`;
  return `$${cost.toFixed(4)}`;
}

export function formatNumber(n: number, digits = 0): string {
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 });
}

// Progress of a transfer on stderr. On a terminal, one line redrawn in place (at most every
// 100 ms): a bar when the total is known, the bytes so far and the rate. Elsewhere (a log, CI),
// no redrawing: a line every 5 s for a long transfer and one when it ends.
import { formatBytes } from '../format.ts';
import type { CliIo } from '../io.ts';

const REDRAW_MS = 100;
const PLAIN_EVERY_MS = 5_000;
const BAR_WIDTH = 24;

export interface Progress {
  update(bytes: number): void;
  /** the last line: `verb` says what happened ("Packed", "Uploaded") */
  done(verb: string): void;
}

export function formatRate(bytes: number, ms: number): string {
  return `${formatBytes(Math.round((bytes * 1000) / Math.max(ms, 1)))}/s`;
}

export function createProgress(io: CliIo, label: string, total?: number, now: () => number = Date.now): Progress {
  const started = now();
  let bytes = 0;
  let drawnAt = -Infinity;
  let saidAt = started;

  const line = () => {
    const rate = formatRate(bytes, now() - started);
    if (!total) return `${label}  ${formatBytes(bytes)}  ${rate}`;
    const fraction = Math.min(1, bytes / total);
    const filled = Math.round(fraction * BAR_WIDTH);
    return `${label}  [${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}] ${String(Math.floor(fraction * 100)).padStart(3)} %  ${formatBytes(bytes)} / ${formatBytes(total)}  ${rate}`;
  };

  return {
    update(n) {
      bytes = n;
      const t = now();
      if (io.isTTY) {
        if (t - drawnAt < REDRAW_MS && !(total && n >= total)) return;
        drawnAt = t;
        io.err(`\r\x1b[K${line()}`);
      } else if (t - saidAt >= PLAIN_EVERY_MS) {
        saidAt = t;
        io.err(`${line()}\n`);
      }
    },
    done(verb) {
      const ms = now() - started;
      const summary = `${verb} ${formatBytes(bytes)} in ${(ms / 1000).toFixed(1)} s (${formatRate(bytes, ms)})`;
      io.err(io.isTTY ? `\r\x1b[K${summary}\n` : `${summary}\n`);
    },
  };
}

/** the buffer as a request body that reports how much of it has been handed to the connection */
export function streamWithProgress(data: Uint8Array, onProgress: (bytes: number) => void, chunkSize = 64 * 1024): ReadableStream<Uint8Array> {
  let offset = 0;
  return new ReadableStream({
    pull(controller) {
      if (offset >= data.length) {
        controller.close();
        return;
      }
      const end = Math.min(offset + chunkSize, data.length);
      controller.enqueue(data.subarray(offset, end));
      offset = end;
      onProgress(offset);
    },
  });
}

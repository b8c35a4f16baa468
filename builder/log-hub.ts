// Build logs: appended to a file per deployment, and fanned out live to followers. A late
// reader gets everything so far, then the rest as it is written, with no gap between.
// The build's own output is kept up to a byte limit (a build can print without end; the log
// shares the disk with the database); the platform's own lines are always kept.
import fs from 'node:fs';
import path from 'node:path';
import { formatLimit } from '../runtime/sandbox/untrusted-files.ts';

export interface LogFollower {
  onChunk(text: string): void;
  onEnd(): void;
}

export interface BuildLog {
  /** the build's output: kept until the log's limit, then dropped (said once, in the log) */
  write(text: string): void;
  /** a line of the platform's own (a step, the outcome): always kept */
  note(text: string): void;
  end(): void;
}

export interface LogLimit {
  bytes: number;
  /** whose limit it is, for the line that says the output was cut ("the hobby plan's") */
  owner: string;
}

/** rewrites output on its way to the log (secret masking); `end` returns what it held back */
export interface LogTransform {
  push(text: string): string;
  end(): string;
}

export interface LogHub {
  open(id: string, transform?: LogTransform, limit?: LogLimit): BuildLog;
  /** the whole log, or null when there is none */
  read(id: string): string | null;
  /** deletes a finished build's log (its service was deleted) */
  remove(id: string): Promise<void>;
  /** sends what is there, then live chunks until the build ends; returns an unsubscribe */
  follow(id: string, follower: LogFollower): () => void;
  isActive(id: string): boolean;
}

interface Active {
  chunks: string[];
  followers: Set<LogFollower>;
  fd: number;
}

export function createLogHub(dir: string): LogHub {
  // build output can hold what a build printed of its env: the platform's alone
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const active = new Map<string, Active>();
  const file = (id: string) => path.join(dir, `${id.replace(/[^A-Za-z0-9_-]/g, '')}.log`);

  return {
    open(id, transform, limit) {
      const a: Active = { chunks: [], followers: new Set(), fd: fs.openSync(file(id), 'a', 0o600) };
      active.set(id, a);
      let writable = true;
      let kept = 0;
      let dropped = 0;
      const emit = (text: string) => {
        if (!text) return;
        a.chunks.push(text);
        // a full disk loses the stored copy, never the build (followers still get every chunk)
        if (writable) {
          try {
            fs.writeSync(a.fd, text);
          } catch {
            writable = false;
          }
        }
        for (const f of a.followers) f.onChunk(text);
      };
      const output = (text: string) => {
        if (!text) return;
        const size = Buffer.byteLength(text);
        if (!limit || (dropped === 0 && kept + size <= limit.bytes)) {
          kept += size;
          emit(text);
          return;
        }
        if (dropped === 0) {
          // what still fits, cut on a character boundary, then one line that says why the rest is missing
          const head = utf8Head(text, limit.bytes - kept);
          kept += Buffer.byteLength(head);
          emit(head);
          dropped += size - Buffer.byteLength(head);
          emit(`\x1b[0m\r\n\x1b[1;33m==>\x1b[0m Build output past ${formatLimit(limit.bytes)} is not kept (${limit.owner} build log limit); the build goes on\r\n`);
          return;
        }
        dropped += size;
      };
      return {
        write: (raw) => output(transform ? transform.push(raw) : raw),
        note: (text) => emit(text),
        end() {
          if (!active.has(id)) return;
          if (transform) output(transform.end());
          if (dropped) emit(`\x1b[1;33m==>\x1b[0m ${formatLimit(dropped)} of build output left out of this log\r\n`);
          active.delete(id);
          try {
            fs.closeSync(a.fd);
          } catch {
            // the descriptor's last write failed (full disk): nothing more to save
          }
          for (const f of a.followers) f.onEnd();
          a.followers.clear();
        },
      };
    },
    read(id) {
      const a = active.get(id);
      if (a) return a.chunks.join('');
      try {
        return fs.readFileSync(file(id), 'utf8');
      } catch {
        return null;
      }
    },
    async remove(id) {
      if (active.has(id)) throw new Error(`the log of ${id} is still being written`);
      await fs.promises.rm(file(id), { force: true });
    },
    follow(id, follower) {
      const a = active.get(id);
      if (!a) {
        const text = this.read(id);
        if (text) follower.onChunk(text);
        follower.onEnd();
        return () => {};
      }
      const sofar = a.chunks.join('');
      if (sofar) follower.onChunk(sofar);
      a.followers.add(follower);
      return () => a.followers.delete(follower);
    },
    isActive: (id) => active.has(id),
  };
}

/** the longest start of `text` that is at most `bytes` long in UTF-8 and ends on a character boundary */
function utf8Head(text: string, bytes: number): string {
  const buf = Buffer.from(text);
  let end = Math.max(0, Math.min(bytes, buf.length));
  // back off continuation bytes (10xxxxxx) to the start of the character that did not fit
  if (end < buf.length) while (end > 0 && (buf[end]! & 0xc0) === 0x80) end--;
  return buf.subarray(0, end).toString('utf8');
}

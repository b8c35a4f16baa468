// Build logs: appended to a file per deployment, and fanned out live to followers. A late
// reader gets everything so far, then the rest as it is written, with no gap between.
import fs from 'node:fs';
import path from 'node:path';

export interface LogFollower {
  onChunk(text: string): void;
  onEnd(): void;
}

export interface BuildLog {
  write(text: string): void;
  end(): void;
}

/** rewrites output on its way to the log (secret masking); `end` returns what it held back */
export interface LogTransform {
  push(text: string): string;
  end(): string;
}

export interface LogHub {
  open(id: string, transform?: LogTransform): BuildLog;
  /** the whole log, or null when there is none */
  read(id: string): string | null;
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
    open(id, transform) {
      const a: Active = { chunks: [], followers: new Set(), fd: fs.openSync(file(id), 'a', 0o600) };
      active.set(id, a);
      let writable = true;
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
      return {
        write: (raw) => emit(transform ? transform.push(raw) : raw),
        end() {
          if (!active.has(id)) return;
          if (transform) emit(transform.end());
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

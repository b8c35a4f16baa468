// A data dir on a tmpfs of its own (root only), which a test fills to ENOSPC and frees again:
// the full-disk tests of the platform and of the task intake.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { tempDir } from './server.ts';

export interface SmallDisk {
  dataDir: string;
  /** the one file fill() writes; remove it to give the space back */
  filler: string;
  mount(): void;
  /** unmount (lazily when something still holds it) and remove the dir */
  dispose(): void;
  /** writes the filler until the filesystem refuses: big chunks first, then page-sized ones */
  fill(): void;
  freeBytes(): number;
  /** SQLite's integrity check of the platform's database, from a second, read-only connection */
  integrityCheck(): string;
}

export function createSmallDisk(prefix: string, sizeMb: number): SmallDisk {
  const dataDir = tempDir(prefix);
  const filler = path.join(dataDir, 'filler');
  let mounted = false;
  return {
    dataDir,
    filler,
    mount() {
      execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMb}m,mode=0755`, 'tmpfs', dataDir]);
      mounted = true;
    },
    dispose() {
      if (mounted) {
        try {
          execFileSync('umount', [dataDir]);
        } catch {
          // something still holds it open: detach now, the kernel frees it when the last user goes
          execFileSync('umount', ['-l', dataDir]);
        }
        mounted = false;
      }
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
    fill() {
      const fd = fs.openSync(filler, 'a');
      try {
        for (const size of [1 << 20, 4096, 512]) {
          const chunk = Buffer.alloc(size, 0x5a);
          for (;;) {
            try {
              fs.writeSync(fd, chunk);
            } catch (err) {
              if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
              break;
            }
          }
        }
      } finally {
        fs.closeSync(fd);
      }
    },
    freeBytes() {
      const s = fs.statfsSync(dataDir);
      return s.bavail * s.bsize;
    },
    integrityCheck() {
      // read-only: it sees the WAL and writes nothing
      const db = new Database(path.join(dataDir, 'cellhost.db'), { readonly: true, fileMustExist: true });
      try {
        return (db.pragma('integrity_check') as { integrity_check: string }[]).map((r) => r.integrity_check).join('; ');
      } finally {
        db.close();
      }
    },
  };
}

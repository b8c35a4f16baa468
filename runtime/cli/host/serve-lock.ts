// A pid file in the data dir's run/ while `cellhost serve` runs, so offline verbs (keys
// rotate) can refuse to touch a data dir in use.
import fs from 'node:fs';
import path from 'node:path';

const FILE = 'serve.pid';

export function isServeRunning(runDir: string): number | null {
  try {
    const pid = Number(fs.readFileSync(path.join(runDir, FILE), 'utf8'));
    if (!pid) return null;
    process.kill(pid, 0);
    return pid;
  } catch {
    return null;
  }
}

export function writeServePid(runDir: string): () => void {
  fs.mkdirSync(runDir, { recursive: true });
  const file = path.join(runDir, FILE);
  fs.writeFileSync(file, String(process.pid));
  return () => fs.rmSync(file, { force: true });
}

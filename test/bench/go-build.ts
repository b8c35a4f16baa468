// `go build` of a small module into a temp dir of its own (its own GOCACHE and GOPATH, nothing
// written to the user's), for the Go app of the cold-start rows and the load generator of the burst
// and fixed-rate rows.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { findBinary } from './wrk.ts';

export const CLEAN_PATH = '/usr/local/bin:/usr/bin:/bin';

export interface GoBuild {
  /** the module's sources, copied; the binary is `${dir}/${name}` */
  dir: string;
  binary: string;
  cleanup(): void;
}

/** the built binary, or why there is none (go missing, the build failed) */
export async function goBuild(srcDir: string, files: string[], name: string): Promise<GoBuild | string> {
  const go = findBinary('go');
  if (!go) return 'go is not installed (apt-get install golang-go)';
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cellhost-bench-go-'));
  const dir = path.join(root, 'src');
  fs.mkdirSync(dir);
  for (const f of files) fs.copyFileSync(path.join(srcDir, f), path.join(dir, f));
  const cleanup = () => fs.rmSync(root, { recursive: true, force: true });
  try {
    await new Promise<void>((resolve, reject) =>
      execFile(go, ['build', '-o', name, '.'], {
        cwd: dir,
        timeout: 120_000,
        env: { PATH: CLEAN_PATH, HOME: root, GOCACHE: path.join(root, 'cache'), GOPATH: path.join(root, 'gopath'), GOFLAGS: '-modcacherw', GOTOOLCHAIN: 'local' },
      }, (err, _out, stderr) => (err ? reject(new Error(`go build failed: ${stderr || err.message}`)) : resolve())),
    );
  } catch (err) {
    cleanup();
    return (err as Error).message;
  }
  return { dir, binary: path.join(dir, name), cleanup };
}

const LOADGEN_DIR = fileURLToPath(new URL('./loadgen', import.meta.url));

/** test/bench/loadgen: the burst (its default mode) and the fixed-rate rows (-fixed) */
export function buildLoadgen(): Promise<GoBuild | string> {
  return goBuild(LOADGEN_DIR, ['main.go', 'fixed.go', 'go.mod'], 'loadgen');
}

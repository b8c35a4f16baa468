// Where an export's files go. Everything is assembled in a private directory beside --out and
// moved into place only when every image was built (and pushed): a failed export leaves --out
// as it was.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { CellhostError } from '../core/errors.ts';
import type { Manifest } from './knative-service.ts';

/** refuses a non-empty --out unless --force, before any work is done */
export function checkOutDir(outDir: string, force: boolean): void {
  const st = fs.statSync(outDir, { throwIfNoEntry: false });
  if (!st) return;
  if (!st.isDirectory()) throw new CellhostError('ERR_EXPORT_OUT_NOT_EMPTY', `--out ${outDir} exists and is not a directory`);
  if (!force && fs.readdirSync(outDir).length) {
    throw new CellhostError('ERR_EXPORT_OUT_NOT_EMPTY', `--out ${outDir} is not empty: choose an empty or new directory, or pass --force to replace it`);
  }
}

/** a 0700 directory on the same filesystem as --out (so the final move is a rename), or in the temp dir */
export function createWorkDir(outDir?: string): string {
  const parent = outDir ? path.dirname(path.resolve(outDir)) : os.tmpdir();
  const base = outDir ? `.${path.basename(outDir)}.export-` : 'cellhost-export-';
  fs.mkdirSync(parent, { recursive: true });
  return fs.mkdtempSync(path.join(parent, base));
}

/** moves the finished work dir to --out, replacing what was there (checked empty unless --force) */
export function commitOutDir(workDir: string, outDir: string): void {
  const st = fs.statSync(outDir, { throwIfNoEntry: false });
  if (!st) {
    fs.renameSync(workDir, outDir);
    return;
  }
  const old = `${workDir}.old`;
  fs.renameSync(outDir, old);
  try {
    fs.renameSync(workDir, outDir);
  } catch (err) {
    fs.renameSync(old, outDir);
    throw err;
  }
  fs.rmSync(old, { recursive: true, force: true });
}

export function toYaml(docs: readonly Manifest[]): string {
  return docs.map((d) => YAML.stringify(d, { lineWidth: 0 })).join('---\n');
}

/** writes a file with exactly `mode` (not widened by the umask, not left wider if it existed) */
export function writeFileWithMode(file: string, text: string, mode: number): void {
  fs.writeFileSync(file, text, { mode, flag: 'wx' });
  fs.chmodSync(file, mode);
}

// The data dir's own files are the platform's alone: the database (every service's encrypted
// env, tokens' hashes, logs), the master key, build logs, uploads, instance and build homes. They
// are created 0600/0700, and a data dir an older version (or a hand-made `mkdir`) left readable is
// tightened at every start. What others must reach stays reachable: images/ (the sandbox binds
// an image as the service's uid) and cache/ (each service's cache dir, owned by its uid) keep the
// traversal bits the sandbox layer (isolation/sandbox-layer.ts) gives them, and nothing under
// either is touched here.
import fs from 'node:fs';
import path from 'node:path';
import type { Config } from './core/config.ts';

/** creates the data dir's folders (0700) and takes group and other bits off what is already there */
export function secureDataDir(config: Config): void {
  const { dataDir, paths } = config;
  for (const dir of [dataDir, paths.images, paths.builds, paths.cache, paths.logs, paths.run]) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  }
  // the data dir and images/ and cache/ keep only their search bits for others (isolation adds them)
  for (const dir of [dataDir, paths.images, paths.cache]) tighten(dir, 0o066);
  const keep = new Set([paths.images, paths.cache]);
  for (const name of fs.readdirSync(dataDir)) {
    const p = path.join(dataDir, name);
    if (!keep.has(p)) tightenTree(p);
  }
  // a service's cache dir is its uid's: closed to others, its contents left to that uid
  for (const name of fs.readdirSync(paths.cache)) tighten(path.join(paths.cache, name), 0o077);
}

/**
 * Removes `bits` from a file or dir's mode. Never through a symlink (chmod follows them): every
 * parent here is root's, so nothing can swap an entry between the lstat and the chmod.
 */
function tighten(p: string, bits: number): fs.Stats | null {
  const st = fs.lstatSync(p, { throwIfNoEntry: false });
  if (!st || st.isSymbolicLink()) return null;
  if (st.mode & bits) fs.chmodSync(p, st.mode & 0o7777 & ~bits);
  return st;
}

function tightenTree(p: string): void {
  const st = tighten(p, 0o077);
  if (!st?.isDirectory()) return;
  for (const name of fs.readdirSync(p)) tightenTree(path.join(p, name));
}

// The few file operations the drivers need, behind an interface so the v2 driver can be
// tested against a temp dir that behaves like cgroupfs (the kernel fills and empties dirs).
import { constants } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { CellhostError } from '../../core/errors.ts';

export interface CgroupFs {
  readText(path: string): Promise<string>;
  /** write one value; the file must exist (cgroupfs creates its files, we never do) */
  writeText(path: string, value: string): Promise<void>;
  exists(path: string): Promise<boolean>;
  /** create one directory; EEXIST is an error */
  mkdir(path: string): Promise<void>;
  /** remove one cgroup directory (cgroupfs removes its files with it) */
  rmdir(path: string): Promise<void>;
  /** names of the subdirectories */
  listDirs(path: string): Promise<string[]>;
  realpath(path: string): Promise<string>;
  /** filesystem magic number of the mount holding `path` (stat -f) */
  statfsType(path: string): Promise<number>;
}

export const CGROUP2_SUPER_MAGIC = 0x63677270;
export const CGROUP_SUPER_MAGIC = 0x27e0eb;

export const nodeCgroupFs: CgroupFs = {
  readText: (path) => fsp.readFile(path, 'utf8'),
  // r+: no O_CREAT, so a missing control file is an error, not a stray regular file
  writeText: (path, value) => fsp.writeFile(path, value, { flag: 'r+' }),
  exists: (path) =>
    fsp.access(path, constants.F_OK).then(
      () => true,
      () => false,
    ),
  mkdir: (path) => fsp.mkdir(path).then(() => undefined),
  rmdir: (path) => fsp.rmdir(path),
  listDirs: async (path) => (await fsp.readdir(path, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name),
  realpath: (path) => fsp.realpath(path),
  statfsType: async (path) => (await fsp.statfs(path)).type,
};

export function errnoOf(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : undefined;
}

export function toCgroupError(action: string, path: string, err: unknown): CellhostError {
  const errno = errnoOf(err);
  return new CellhostError('ERR_CGROUP_FAILED', `cgroup: could not ${action} ${path}${errno ? ` (${errno})` : ''}`, {
    cause: err,
    details: { path, ...(errno ? { errno } : {}) },
  });
}

/** read a control file; null when it does not exist (an optional controller or kernel feature) */
export async function readOptional(fs: CgroupFs, path: string): Promise<string | null> {
  try {
    return await fs.readText(path);
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return null;
    throw toCgroupError('read', path, err);
  }
}

export async function writeControl(fs: CgroupFs, path: string, value: string): Promise<void> {
  try {
    await fs.writeText(path, value);
  } catch (err) {
    throw toCgroupError(`write "${value}" to`, path, err);
  }
}

/** "key value" lines (memory.events, cpu.stat, memory.oom_control, pids.events) → one value */
export function readKeyed(text: string | null, key: string): number | null {
  if (text === null) return null;
  for (const line of text.split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k === key) {
      const n = Number(v);
      return Number.isFinite(n) ? n : null;
    }
  }
  return null;
}

export function parseNumber(text: string | null): number | null {
  if (text === null) return null;
  const n = Number(text.trim());
  return text.trim() !== '' && Number.isFinite(n) ? n : null;
}

export function parsePids(text: string | null): number[] {
  if (text === null) return [];
  return text
    .split('\n')
    .map((l) => Number.parseInt(l, 10))
    .filter((n) => Number.isInteger(n) && n > 0);
}

/**
 * Whether this process can do what the platform does with a group under `parent`: create one and
 * write a limit into it. Seeing the parent (made by a root run, say) proves nothing for another
 * user: only trying does. The group is removed again. Returns why not, or null when it can.
 */
export async function probeGroup(fs: CgroupFs, parent: string, name: string, limits: [file: string, value: string][]): Promise<string | null> {
  const dir = `${parent}/${name}`;
  try {
    await fs.mkdir(dir);
  } catch (err) {
    if (errnoOf(err) !== 'EEXIST') return `cannot create a group in ${parent} (${errnoOf(err) ?? String(err)})`;
  }
  try {
    for (const [file, value] of limits) {
      try {
        await fs.writeText(`${dir}/${file}`, value);
      } catch (err) {
        return `cannot set ${file} in a group under ${parent} (${errnoOf(err) ?? String(err)})`;
      }
    }
    return null;
  } finally {
    await fs.rmdir(dir).catch(() => undefined);
  }
}

/** the probe group's name: one per process and purpose, so two probes never share a group */
export const probeGroupName = (what: string) => `probe-${process.pid}-${what}`;

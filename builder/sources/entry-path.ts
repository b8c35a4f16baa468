// Archive entry names and link targets, checked as plain strings before anything touches the disk.
import { CellhostError } from '../../runtime/core/errors.ts';

const MAX_SHOWN = 200;

/** An entry name made safe to quote in an error message: control characters escaped, long names cut. */
export function showEntryName(name: string): string {
  const clean = name.replace(/[\u0000-\u001f\u007f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return clean.length > MAX_SHOWN ? clean.slice(0, MAX_SHOWN) + '…' : clean;
}

export function refuseEntry(name: string, reason: string): CellhostError {
  return new CellhostError('ERR_SOURCE_INVALID', `archive entry '${showEntryName(name)}' ${reason}`, {
    details: { entry: showEntryName(name) },
  });
}

/**
 * Turns an archive entry name into a relative path with no empty, '.' or '..' parts; '' is the root.
 * Any '..' part is refused, even one that would stay inside after normalising: real archives never
 * need it and it is the usual way out.
 */
export function normalizeEntryPath(raw: string): string {
  if (raw.includes('\0')) throw refuseEntry(raw, 'has a NUL byte in its name');
  if (raw.startsWith('/')) throw refuseEntry(raw, 'has an absolute path');
  if (/^[A-Za-z]:[\\/]/.test(raw)) throw refuseEntry(raw, 'has an absolute (drive letter) path');
  const parts = raw.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw refuseEntry(raw, "escapes the source root ('..' in its path)");
  return parts.join('/');
}

/**
 * Normalises Leapcell's "Root Directory" setting: '', '.', './' and '/' mean the whole source; a
 * leading '/' is read as relative to the source root, as the dashboard shows it.
 */
export function normalizeRootDir(raw: string | undefined): string {
  if (raw === undefined) return '';
  if (raw.includes('\0')) throw new CellhostError('ERR_SOURCE_INVALID', 'root directory has a NUL byte in it');
  const parts = raw.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) {
    throw new CellhostError('ERR_SOURCE_INVALID', `root directory '${showEntryName(raw)}' escapes the source ('..' in it)`, {
      details: { rootDir: showEntryName(raw) },
    });
  }
  return parts.join('/');
}

export function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i < 0 ? '' : path.slice(0, i);
}

/** Every proper ancestor of a relative path, outermost first: 'a/b/c' → ['a', 'a/b']. */
export function ancestorsOf(path: string): string[] {
  const out: string[] = [];
  let i = path.indexOf('/');
  while (i >= 0) {
    out.push(path.slice(0, i));
    i = path.indexOf('/', i + 1);
  }
  return out;
}

export function isWithin(path: string, root: string): boolean {
  return root === '' || path === root || path.startsWith(root + '/');
}

export type TreeNode =
  | { kind: 'dir' }
  | { kind: 'file'; bytes: number }
  | { kind: 'symlink'; target: string };

const MAX_LINK_HOPS = 40; // the kernel's own limit (ELOOP)

/**
 * Resolves a symlink the way the kernel would once the tree is on disk, using the tree's own nodes,
 * and reports whether any step leaves `root`. Lexical checks alone are not enough: with `x -> .`,
 * a link `y -> x/..` looks inside but really names the root's parent.
 */
export function checkLinkStaysInside(
  nodes: ReadonlyMap<string, TreeNode>,
  linkPath: string,
  target: string,
  root: string,
): { ok: true } | { ok: false; reason: string } {
  const rootDepth = root === '' ? 0 : root.split('/').length;
  let hops = 0;

  // Walks `target` from `base` (a list of parts); returns the resolved parts or a failure.
  const walk = (base: string[], target: string): string[] | string => {
    if (target.startsWith('/')) return 'is an absolute link';
    const stack = [...base];
    for (const part of target.split('/')) {
      if (part === '' || part === '.') continue;
      if (part === '..') {
        if (stack.length <= rootDepth) return 'points outside the source root';
        stack.pop();
        continue;
      }
      stack.push(part);
      const node = nodes.get(stack.join('/'));
      if (node?.kind === 'symlink') {
        if (++hops > MAX_LINK_HOPS) return 'is part of a symlink loop';
        stack.pop();
        const resolved = walk(stack, node.target);
        if (typeof resolved === 'string') return resolved;
        stack.length = 0;
        stack.push(...resolved);
      }
    }
    return stack;
  };

  const parent = parentOf(linkPath);
  const result = walk(parent === '' ? [] : parent.split('/'), target);
  return typeof result === 'string' ? { ok: false, reason: result } : { ok: true };
}

import { describe, expect, it } from 'vitest';
import { checkLinkStaysInside, normalizeEntryPath, normalizeRootDir, type TreeNode } from '../../../../builder/sources/entry-path.ts';
import { CellhostError } from '../../../../runtime/core/errors.ts';

function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(CellhostError);
    expect((err as CellhostError).code).toBe('ERR_SOURCE_INVALID');
    return (err as CellhostError).message;
  }
  throw new Error('expected a refusal');
}

describe('normalizeEntryPath', () => {
  it('drops ./, empty parts and trailing slashes', () => {
    expect(normalizeEntryPath('./a//b/./c/')).toBe('a/b/c');
    expect(normalizeEntryPath('./')).toBe('');
    expect(normalizeEntryPath('..foo/bar..')).toBe('..foo/bar..');
  });

  it('refuses .., absolute paths, drive letters and NUL bytes, naming the entry', () => {
    expect(refusal(() => normalizeEntryPath('../x'))).toBe("archive entry '../x' escapes the source root ('..' in its path)");
    expect(refusal(() => normalizeEntryPath('a/../b'))).toMatch(/'a\/\.\.\/b' escapes/);
    expect(refusal(() => normalizeEntryPath('/etc/passwd'))).toMatch(/'\/etc\/passwd' has an absolute path/);
    expect(refusal(() => normalizeEntryPath('C:\\Windows'))).toMatch(/drive letter/);
    expect(refusal(() => normalizeEntryPath('a\0b'))).toMatch(/'a\\x00b' has a NUL byte/);
  });
});

describe('normalizeRootDir', () => {
  it('reads "", ".", "./" and "/" as the whole source and a leading / as source-relative', () => {
    for (const root of [undefined, '', '.', './', '/']) expect(normalizeRootDir(root)).toBe('');
    expect(normalizeRootDir('/apps/web/')).toBe('apps/web');
    expect(normalizeRootDir('./apps//web')).toBe('apps/web');
  });

  it('refuses a root directory that climbs out', () => {
    expect(refusal(() => normalizeRootDir('../other'))).toMatch(/root directory '\.\.\/other' escapes/);
    expect(refusal(() => normalizeRootDir('apps/../../x'))).toMatch(/escapes/);
  });
});

describe('checkLinkStaysInside', () => {
  const tree = (entries: Record<string, string | null>): Map<string, TreeNode> =>
    new Map(Object.entries(entries).map(([k, v]) => [k, v === null ? { kind: 'dir' } : v.startsWith('@') ? { kind: 'symlink', target: v.slice(1) } : { kind: 'file', bytes: 1 }]));

  it('allows links that stay inside, including through other links', () => {
    const nodes = tree({ a: null, 'a/b': null, 'a/b/f': 'f', l1: '@a/b', l2: '@l1/f' });
    expect(checkLinkStaysInside(nodes, 'l2', 'l1/f', '')).toEqual({ ok: true });
    expect(checkLinkStaysInside(nodes, 'a/b/up', '../../a/b/f', '')).toEqual({ ok: true });
    expect(checkLinkStaysInside(nodes, 'a/dangling', 'nowhere/x', '')).toEqual({ ok: true });
  });

  it('refuses links that leave the root lexically or through another link', () => {
    expect(checkLinkStaysInside(tree({}), 'a', '../x', '')).toEqual({ ok: false, reason: 'points outside the source root' });
    const nodes = tree({ x: '@.', y: '@x/..' });
    expect(checkLinkStaysInside(nodes, 'y', 'x/..', '')).toEqual({ ok: false, reason: 'points outside the source root' });
    expect(checkLinkStaysInside(tree({ abs: '@/etc' }), 'z', 'abs/passwd', '')).toEqual({ ok: false, reason: 'is an absolute link' });
  });

  it('measures against the chosen root, not the archive root', () => {
    const nodes = tree({ web: null, api: null, 'api/f': 'f' });
    expect(checkLinkStaysInside(nodes, 'web/l', '../api/f', '')).toEqual({ ok: true });
    expect(checkLinkStaysInside(nodes, 'web/l', '../api/f', 'web')).toEqual({ ok: false, reason: 'points outside the source root' });
  });

  it('stops on loops', () => {
    const nodes = tree({ a: '@b', b: '@a' });
    expect(checkLinkStaysInside(nodes, 'a', 'b', '')).toEqual({ ok: false, reason: 'is part of a symlink loop' });
  });
});

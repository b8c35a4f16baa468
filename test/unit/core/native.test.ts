import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { extractNativeAddon, loadNativeAddon, nativeCacheRoots, sqliteNativeBinding } from '../../../runtime/core/native.ts';

let tmp: string;
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cellhost-native-'));
});
afterEach(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

const bytes = Buffer.from('not really an ELF, but bytes all the same');
const hash = createHash('sha256').update(bytes).digest('hex').slice(0, 16);

describe('nativeCacheRoots', () => {
  it('prefers XDG_CACHE_HOME, then ~/.cache, then a per-user temp dir', () => {
    expect(nativeCacheRoots({ XDG_CACHE_HOME: '/x', HOME: '/h' }, '/ignored', '/t', 7)).toEqual([
      { dir: '/x/cellhost/native', isShared: false },
      { dir: '/h/.cache/cellhost/native', isShared: false },
      { dir: '/t/cellhost-7/native', isShared: true },
    ]);
  });

  it('ignores a relative XDG_CACHE_HOME and falls back to the os home dir', () => {
    expect(nativeCacheRoots({ XDG_CACHE_HOME: 'rel' }, '/home/u', '/t', 7).map((r) => r.dir)).toEqual([
      '/home/u/.cache/cellhost/native',
      '/t/cellhost-7/native',
    ]);
  });
});

describe('extractNativeAddon', () => {
  it('writes the addon under its content hash and reuses it on the next start', () => {
    const roots = [{ dir: path.join(tmp, 'cache'), isShared: false }];
    const file = extractNativeAddon('pty', bytes, roots);
    expect(file).toBe(path.join(tmp, 'cache', hash, 'pty.node'));
    expect(fs.readFileSync(file)).toEqual(bytes);
    const first = fs.statSync(file);
    expect(extractNativeAddon('pty', bytes, roots)).toBe(file);
    expect(fs.statSync(file).ino).toBe(first.ino);
    expect(fs.readdirSync(path.dirname(file))).toEqual(['pty.node']);
  });

  it('replaces a damaged copy', () => {
    const roots = [{ dir: path.join(tmp, 'cache'), isShared: false }];
    const file = extractNativeAddon('pty', bytes, roots);
    fs.writeFileSync(file, Buffer.alloc(bytes.length));
    extractNativeAddon('pty', bytes, roots);
    expect(fs.readFileSync(file)).toEqual(bytes);
  });

  it('falls back to the next root when one cannot be written', () => {
    fs.writeFileSync(path.join(tmp, 'blocked'), 'a file where a dir should be');
    const file = extractNativeAddon('pty', bytes, [
      { dir: path.join(tmp, 'blocked', 'native'), isShared: false },
      { dir: path.join(tmp, 'second'), isShared: false },
    ]);
    expect(file.startsWith(path.join(tmp, 'second'))).toBe(true);
  });

  it('refuses a shared temp dir that others can write to', () => {
    const shared = path.join(tmp, 'cellhost-0');
    fs.mkdirSync(shared);
    fs.chmodSync(shared, 0o777);
    expect(() => extractNativeAddon('pty', bytes, [{ dir: path.join(shared, 'native'), isShared: true }])).toThrow(
      expect.objectContaining({ code: 'ERR_NATIVE_ADDON', message: expect.stringContaining('not a private directory') }),
    );
  });
});

describe('loadNativeAddon outside the executable', () => {
  it('loads the addons from node_modules and leaves better-sqlite3 to its own loader', () => {
    expect(typeof loadNativeAddon('pty').fork).toBe('function');
    expect(loadNativeAddon('pty')).toBe(loadNativeAddon('pty'));
    expect(typeof loadNativeAddon('better_sqlite3').Database).toBe('function');
    expect(sqliteNativeBinding()).toBeUndefined();
  });

  it('rejects a name it does not know', () => {
    expect(() => loadNativeAddon('leftpad')).toThrow(expect.objectContaining({ code: 'ERR_NATIVE_ADDON' }));
  });
});

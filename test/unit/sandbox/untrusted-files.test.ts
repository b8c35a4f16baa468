// The one way the platform reads, walks and copies trees that untrusted builds wrote.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { copyTreeInside, diskUsage, kindInside, readFileInside, removeSpecialFiles, walkInside } from '../../../runtime/sandbox/untrusted-files.ts';

const isRoot = process.getuid?.() === 0;
if (!isRoot && process.env.CI === 'true') throw new Error('the untrusted-files tests need root in CI (they make a device node)');

let root: string;
let outside: string;
const SECRET = 'SECRET-outside-the-tree';
const limits = { maxBytes: 1024, timeoutMs: 1000 };

beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'untrusted-tree-'));
  outside = fs.mkdtempSync(path.join(os.tmpdir(), 'untrusted-outside-'));
  fs.writeFileSync(path.join(outside, 'secret.json'), JSON.stringify({ main: SECRET }));
});
afterEach(() => {
  fs.rmSync(root, { recursive: true, force: true });
  fs.rmSync(outside, { recursive: true, force: true });
});

/** resolves within `ms` or fails the test: a blocked read must not pass by hanging */
async function within<T>(ms: number, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`not settled within ${ms} ms`)), ms)));
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

describe('readFileInside', () => {
  it('reads a regular file inside the tree', async () => {
    fs.mkdirSync(path.join(root, 'a'));
    fs.writeFileSync(path.join(root, 'a', 'package.json'), '{"main":"x.js"}');
    const r = await readFileInside(root, 'a/package.json', limits);
    expect(r.ok && r.data.toString()).toBe('{"main":"x.js"}');
  });

  it('says a missing file is missing', async () => {
    expect(await readFileInside(root, 'package.json', limits)).toMatchObject({ ok: false, missing: true });
    expect(await readFileInside(root, 'nodir/package.json', limits)).toMatchObject({ ok: false, missing: true });
  });

  it('does not follow a symlink to a file outside the tree', async () => {
    fs.symlinkSync(path.join(outside, 'secret.json'), path.join(root, 'package.json'));
    const r = await readFileInside(root, 'package.json', limits);
    expect(r).toMatchObject({ ok: false, missing: false });
    expect(JSON.stringify(r)).not.toContain(SECRET);
    expect(!r.ok && r.reason).toMatch(/symlink/);
  });

  it('does not follow a symlink even to a file inside the tree', async () => {
    fs.writeFileSync(path.join(root, 'real.json'), '{}');
    fs.symlinkSync('real.json', path.join(root, 'package.json'));
    expect((await readFileInside(root, 'package.json', limits)).ok).toBe(false);
  });

  it('refuses a FIFO at once instead of blocking on it', async () => {
    execFileSync('mkfifo', [path.join(root, 'package.json')]);
    const r = await within(1000, readFileInside(root, 'package.json', limits));
    expect(r).toMatchObject({ ok: false, missing: false });
    expect(!r.ok && r.reason).toMatch(/FIFO/);
  });

  it('refuses /dev/zero reached through a symlink', async () => {
    fs.symlinkSync('/dev/zero', path.join(root, 'Cargo.toml'));
    const r = await within(1000, readFileInside(root, 'Cargo.toml', limits));
    expect(r).toMatchObject({ ok: false, missing: false });
  });

  it.runIf(isRoot)('refuses a device node in the tree without opening it', async () => {
    execFileSync('mknod', [path.join(root, 'package.json'), 'c', '1', '5']);
    const r = await within(1000, readFileInside(root, 'package.json', limits));
    expect(r).toMatchObject({ ok: false, missing: false });
    expect(!r.ok && r.reason).toMatch(/character device/);
  });

  it('refuses a socket', async () => {
    const sock = path.join(root, 'package.json');
    const server = net.createServer().listen(sock);
    await new Promise((r) => server.once('listening', r));
    try {
      expect(await within(1000, readFileInside(root, 'package.json', limits))).toMatchObject({ ok: false, missing: false });
    } finally {
      server.close();
    }
  });

  it('refuses a file past the byte limit, and reads one exactly at it', async () => {
    fs.writeFileSync(path.join(root, 'big'), Buffer.alloc(1025, 'x'));
    fs.writeFileSync(path.join(root, 'fits'), Buffer.alloc(1024, 'x'));
    const big = await readFileInside(root, 'big', limits);
    expect(big).toMatchObject({ ok: false, missing: false });
    expect(!big.ok && big.reason).toMatch(/larger than 1 KB/);
    const fits = await readFileInside(root, 'fits', limits);
    expect(fits.ok && fits.data.length).toBe(1024);
  });

  it('does not follow a symlinked parent directory out of the tree', async () => {
    fs.symlinkSync(outside, path.join(root, 'sub'));
    const r = await readFileInside(root, 'sub/secret.json', limits);
    expect(r).toMatchObject({ ok: false, missing: false });
    expect(JSON.stringify(r)).not.toContain(SECRET);
    expect(!r.ok && r.reason).toMatch(/sub is a symlink, not a directory/);
  });

  it('refuses paths that climb out', async () => {
    await expect(readFileInside(root, '../x', limits)).rejects.toThrow(/not a relative path/);
    await expect(readFileInside(root, '/etc/passwd', limits)).rejects.toThrow(/not a relative path/);
  });
});

describe('kindInside', () => {
  it('names what is there without following it, and sees nothing behind a symlinked parent', async () => {
    fs.symlinkSync(path.join(outside, 'secret.json'), path.join(root, 'link'));
    fs.symlinkSync(outside, path.join(root, 'sub'));
    execFileSync('mkfifo', [path.join(root, 'fifo')]);
    expect(await kindInside(root, 'link')).toBe('symlink');
    expect(await kindInside(root, 'fifo')).toBe('FIFO');
    expect(await kindInside(root, 'sub')).toBe('symlink');
    // secret.json exists outside, but is not looked for through the link
    expect(await kindInside(root, 'sub/secret.json')).toBeNull();
    expect(await kindInside(root, 'absent')).toBeNull();
  });
});

describe('walkInside and removeSpecialFiles', () => {
  it('never descends into a symlinked directory', async () => {
    fs.mkdirSync(path.join(root, 'd'));
    fs.writeFileSync(path.join(root, 'd', 'f'), 'x');
    fs.symlinkSync(outside, path.join(root, 'd', 'out'));
    const seen: string[] = [];
    await walkInside(root, async (e) => void seen.push(e.rel));
    expect(seen.sort()).toEqual(['', 'd', 'd/f', 'd/out']);
  });

  it('removes FIFOs and sockets, keeps files, directories and links', async () => {
    fs.mkdirSync(path.join(root, 'd'));
    execFileSync('mkfifo', [path.join(root, 'package.json'), path.join(root, 'd', 'pipe')]);
    fs.symlinkSync('/dev/zero', path.join(root, 'zero'));
    fs.writeFileSync(path.join(root, 'app.js'), '');
    const removed = await removeSpecialFiles(root);
    expect(removed.sort((a, b) => a.rel.localeCompare(b.rel))).toEqual([
      { rel: 'd/pipe', kind: 'FIFO' },
      { rel: 'package.json', kind: 'FIFO' },
    ]);
    expect(fs.readdirSync(root).sort()).toEqual(['app.js', 'd', 'zero']);
  });
});

describe('copyTreeInside', () => {
  let dest: string;
  beforeEach(() => {
    dest = fs.mkdtempSync(path.join(os.tmpdir(), 'untrusted-dest-'));
  });
  afterEach(() => fs.rmSync(dest, { recursive: true, force: true }));

  it('copies files and directories, recreates links as they are, leaves special files out', async () => {
    const nm = path.join(root, 'node_modules');
    fs.mkdirSync(path.join(nm, 'ms'), { recursive: true });
    fs.writeFileSync(path.join(nm, 'ms', 'index.js'), 'module.exports = 1');
    fs.mkdirSync(path.join(nm, '.bin'));
    fs.symlinkSync('../ms/index.js', path.join(nm, '.bin', 'ms'));
    fs.symlinkSync(outside, path.join(nm, 'escape'));
    execFileSync('mkfifo', [path.join(nm, 'pipe')]);
    const report = await copyTreeInside(root, 'node_modules', dest, { maxBytes: 1 << 20 });
    expect(report).toEqual({ files: 1, bytes: 18, skipped: [{ rel: 'node_modules/pipe', kind: 'FIFO' }] });
    expect(fs.readFileSync(path.join(dest, 'node_modules', 'ms', 'index.js'), 'utf8')).toBe('module.exports = 1');
    expect(fs.readlinkSync(path.join(dest, 'node_modules', '.bin', 'ms'))).toBe('../ms/index.js');
    // the link is copied as a link: nothing of what it points at came along
    expect(fs.lstatSync(path.join(dest, 'node_modules', 'escape')).isSymbolicLink()).toBe(true);
    expect(fs.existsSync(path.join(dest, 'node_modules', 'pipe'))).toBe(false);
  });

  it('refuses a source that is itself a symlink', async () => {
    fs.symlinkSync(outside, path.join(root, 'node_modules'));
    expect(await copyTreeInside(root, 'node_modules', dest, { maxBytes: 1 << 20 })).toBeNull();
    expect(fs.readdirSync(dest)).toEqual([]);
  });

  it('gives up past its byte budget and leaves nothing behind', async () => {
    fs.mkdirSync(path.join(root, 'node_modules'));
    fs.writeFileSync(path.join(root, 'node_modules', 'a'), Buffer.alloc(600));
    fs.writeFileSync(path.join(root, 'node_modules', 'b'), Buffer.alloc(600));
    expect(await copyTreeInside(root, 'node_modules', dest, { maxBytes: 1000 })).toBeNull();
    expect(fs.readdirSync(dest)).toEqual([]);
  });
});

describe('diskUsage', () => {
  it('counts what is in the tree and nothing a link points at', async () => {
    fs.writeFileSync(path.join(root, 'one-mb'), Buffer.alloc(1 << 20, 1));
    fs.writeFileSync(path.join(outside, 'big'), Buffer.alloc(8 << 20, 1));
    fs.symlinkSync(outside, path.join(root, 'out'));
    fs.symlinkSync(path.join(outside, 'big'), path.join(root, 'big'));
    const bytes = await diskUsage(root);
    expect(bytes).toBeGreaterThanOrEqual(1 << 20);
    expect(bytes).toBeLessThan(2 << 20);
    expect(await diskUsage(path.join(root, 'absent'))).toBe(0);
  });
});

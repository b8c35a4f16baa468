import { readdir, readFile, readlink, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { unpackSource, type SourceLimits } from '../../../../builder/sources/index.ts';
import { CellhostError, type ErrorCode } from '../../../../runtime/core/errors.ts';
import { describeTree, makeLayout, makeTar, makeTarGz, tarHeader, type Layout, type TarEntrySpec } from './archive-fixtures.ts';

const limits: SourceLimits = { maxBytes: 1024 * 1024, maxEntries: 100 };
let layout: Layout;

beforeEach(async () => {
  layout = await makeLayout();
});
afterEach(async () => {
  await layout.cleanup();
});

async function unpackBody(body: Buffer, opts: { limits?: SourceLimits; rootDir?: string } = {}) {
  const file = await layout.upload('source.tar.gz', body);
  return unpackSource({ kind: 'tar.gz', file }, layout.dest, { limits: opts.limits ?? limits, rootDir: opts.rootDir });
}

async function expectRefused(body: Buffer, code: ErrorCode, message: RegExp, opts: { limits?: SourceLimits } = {}) {
  await layout.upload('source.tar.gz', body);
  const before = await layout.outsideDest();
  const err = await unpackBody(body, opts).then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CellhostError);
  expect((err as CellhostError).code).toBe(code);
  expect((err as CellhostError).message).toMatch(message);
  // Nothing outside the build dir changed, and the build dir is left empty.
  expect(await layout.outsideDest()).toEqual(before);
  expect(await readdir(layout.dest)).toEqual([]);
  return err as CellhostError;
}

const file = (path: string, data: string, mode?: number): TarEntrySpec => ({ path, data, mode });

describe('tar.gz: refused archives', () => {
  it('refuses an entry with ..', async () => {
    await expectRefused(makeTarGz([file('ok.txt', 'x'), file('../canary/evil', 'pwned')]), 'ERR_SOURCE_INVALID', /'\.\.\/canary\/evil'.*'\.\.'/);
  });

  it('refuses .. hidden in the middle of a path', async () => {
    await expectRefused(makeTarGz([file('a/b/../../../canary/evil', 'pwned')]), 'ERR_SOURCE_INVALID', /a\/b\/\.\.\/\.\.\/\.\.\/canary\/evil/);
  });

  it('refuses an absolute path', async () => {
    const abs = join(layout.canary, 'evil');
    await expectRefused(makeTarGz([file(abs, 'pwned')]), 'ERR_SOURCE_INVALID', /absolute path/);
  });

  it('refuses a symlink pointing outside, and a file written through it', async () => {
    await expectRefused(
      makeTarGz([{ path: 'out', type: 'SymbolicLink', linkpath: '../canary' }, file('out/evil', 'pwned')]),
      'ERR_SOURCE_INVALID',
      /'out\/evil' goes through the symlink 'out'/,
    );
    await expectRefused(
      makeTarGz([file('a.txt', 'x'), { path: 'out', type: 'SymbolicLink', linkpath: '../canary' }]),
      'ERR_SOURCE_INVALID',
      /'out' is a symlink to '\.\.\/canary', which points outside/,
    );
  });

  it('refuses an absolute symlink', async () => {
    await expectRefused(makeTarGz([{ path: 'etc', type: 'SymbolicLink', linkpath: '/etc' }]), 'ERR_SOURCE_INVALID', /'etc' is a symlink to an absolute path/);
  });

  it('refuses a link that looks inside but resolves outside through another link', async () => {
    // x -> . ; y -> x/..  : lexically y is the root, really it is the root's parent.
    const links: TarEntrySpec[] = [
      file('keep.txt', 'x'),
      { path: 'x', type: 'SymbolicLink', linkpath: '.' },
      { path: 'y', type: 'SymbolicLink', linkpath: 'x/..' },
    ];
    await expectRefused(makeTarGz(links), 'ERR_SOURCE_INVALID', /'y' is a symlink to 'x\/\.\.', which points outside/);
    await expectRefused(makeTarGz([...links, file('y/canary/evil', 'pwned')]), 'ERR_SOURCE_INVALID', /goes through the symlink 'y'/);
  });

  it('refuses hard links that leave the archive', async () => {
    await expectRefused(makeTarGz([{ path: 'hl', type: 'Link', linkpath: '../canary/secret' }]), 'ERR_SOURCE_INVALID', /'hl' is a hard link outside/);
    await expectRefused(makeTarGz([{ path: 'hl', type: 'Link', linkpath: '/etc/passwd' }]), 'ERR_SOURCE_INVALID', /'hl' is a hard link outside/);
    await expectRefused(makeTarGz([{ path: 'hl', type: 'Link', linkpath: 'later.txt' }, file('later.txt', 'x')]), 'ERR_SOURCE_INVALID', /not an earlier file/);
  });

  it('refuses device files and fifos', async () => {
    await expectRefused(makeTarGz([file('a', 'x'), { path: 'null', type: 'CharacterDevice' }]), 'ERR_SOURCE_INVALID', /'null' is a device file or fifo/);
    await expectRefused(makeTarGz([{ path: 'disk', type: 'BlockDevice' }]), 'ERR_SOURCE_INVALID', /'disk' is a device/);
    await expectRefused(makeTarGz([{ path: 'pipe', type: 'FIFO' }]), 'ERR_SOURCE_INVALID', /'pipe' is a device file or fifo/);
  });

  it('refuses more entries than the limit', async () => {
    const many = Array.from({ length: 30 }, (_, i) => file(`f${i}.txt`, 'x'));
    await expectRefused(makeTarGz(many), 'ERR_SOURCE_TOO_LARGE', /more than 20 entries/, { limits: { maxBytes: 1 << 20, maxEntries: 20 } });
  });

  it('refuses more bytes than the limit and stops writing', async () => {
    const chunk = 'z'.repeat(100 * 1024);
    const many = Array.from({ length: 20 }, (_, i) => file(`f${i}.bin`, chunk));
    await expectRefused(makeTarGz(many), 'ERR_SOURCE_TOO_LARGE', /more than 1048576 bytes \(stopped at 'f10\.bin'\)/);
  });

  it('refuses a gzip bomb quickly without filling the disk', async () => {
    // 300 MB of zeros in ~300 KB: a multi-member gzip, built in a few milliseconds.
    const mb = Buffer.alloc(1024 * 1024);
    const oneMember = gzipSync(mb, { level: 9 });
    const members = [gzipSync(Buffer.concat([tarHeader({ path: 'zeros.bin', size: 300 * 1024 * 1024 }), mb]))];
    for (let i = 1; i < 300; i++) members.push(oneMember);
    const bomb = Buffer.concat(members);
    expect(bomb.length).toBeLessThan(2 * 1024 * 1024);
    const started = Date.now();
    await expectRefused(bomb, 'ERR_SOURCE_TOO_LARGE', /more than 1048576 bytes \(stopped at 'zeros\.bin'\)/);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('refuses a flood of extended headers', async () => {
    const pax = Buffer.from('20 comment=aaaaaaaa\n');
    const blocks: Buffer[] = [];
    for (let i = 0; i < 50; i++) {
      blocks.push(tarHeader({ path: 'pax_global_header', type: 'GlobalExtendedHeader', size: pax.length }));
      blocks.push(Buffer.concat([pax, Buffer.alloc(512 - pax.length)]));
    }
    await expectRefused(gzipSync(Buffer.concat(blocks)), 'ERR_SOURCE_TOO_LARGE', /more than 5 entries/, { limits: { maxBytes: 1 << 20, maxEntries: 5 } });
  });

  it('refuses corrupt and truncated archives', async () => {
    const good = makeTarGz([file('a.txt', 'hello'.repeat(5000)), file('b.txt', 'world')]);
    await expectRefused(good.subarray(0, Math.floor(good.length / 2)), 'ERR_SOURCE_INVALID', /corrupt or truncated \(gzip: unexpected end of file\)/);
    const garbage = Buffer.concat([Buffer.from([0x1f, 0x8b, 8, 0]), Buffer.alloc(600, 0xab)]);
    await expectRefused(garbage, 'ERR_SOURCE_INVALID', /corrupt or truncated/);
    const tar = makeTar([file('a.txt', 'x')]);
    tar[10] ^= 0xff; // breaks the header checksum
    await expectRefused(gzipSync(tar), 'ERR_SOURCE_INVALID', /not a tar archive/);
    const cut = makeTar([file('a.txt', 'x'.repeat(4096))], { end: false }).subarray(0, 2048);
    await expectRefused(gzipSync(cut), 'ERR_SOURCE_INVALID', /ends in the middle of an entry/);
    await expectRefused(Buffer.from('PK not really'), 'ERR_SOURCE_INVALID', /not a gzip-compressed tar archive/);
  });

  it('refuses an empty body and an archive with no files', async () => {
    await expectRefused(Buffer.alloc(0), 'ERR_SOURCE_INVALID', /the upload is empty/);
    await expectRefused(gzipSync(Buffer.alloc(1024)), 'ERR_SOURCE_INVALID', /holds no files/);
    await expectRefused(makeTarGz([{ path: 'only-dirs', type: 'Directory' }]), 'ERR_SOURCE_INVALID', /holds no files/);
  });

  it('counts the directories a deep path implies, and refuses names too long', async () => {
    const deep = `${'d/'.repeat(50)}f.txt`;
    await expectRefused(makeTarGz([file(deep, 'x')]), 'ERR_SOURCE_TOO_LARGE', /more than 20 entries/, { limits: { maxBytes: 1 << 20, maxEntries: 20 } });
    await expectRefused(makeTarGz([file(`${'n'.repeat(300)}.txt`, 'x')]), 'ERR_SOURCE_INVALID', /has a name too long for the file system/);
    await expectRefused(makeTarGz([file(`${'abcdefghi/'.repeat(110)}f`, 'x')]), 'ERR_SOURCE_INVALID', /has a path longer than 1024 bytes/);
  });

  it('refuses an entry that is both a file and a directory', async () => {
    await expectRefused(makeTarGz([file('a', 'x'), file('a/b', 'y')]), 'ERR_SOURCE_INVALID', /'a\/b' is inside 'a', which is a file/);
    await expectRefused(makeTarGz([file('a/b', 'y'), file('a', 'x')]), 'ERR_SOURCE_INVALID', /'a' is both a directory and a file/);
  });
});

describe('tar.gz: unpacked archives', () => {
  it('unpacks nested dirs, sane modes, a relative symlink and a hard link, stripping a GitHub-style top dir', async () => {
    const body = makeTarGz([
      { path: 'repo-main/', type: 'Directory', mode: 0o777 },
      file('repo-main/README.md', '# hi\n', 0o600),
      file('repo-main/bin/run.sh', '#!/bin/sh\necho run\n', 0o6755),
      file('repo-main/src/lib/util.js', 'export const x = 1;\n', 0o1666),
      { path: 'repo-main/current', type: 'SymbolicLink', linkpath: 'src/lib' },
      { path: 'repo-main/src/readme-link', type: 'SymbolicLink', linkpath: '../README.md' },
      { path: 'repo-main/src/copy.js', type: 'Link', linkpath: 'repo-main/src/lib/util.js' },
    ]);
    const result = await unpackBody(body);
    expect(await describeTree(layout.dest)).toEqual([
      'README.md 644 5',
      'bin/',
      'bin/run.sh 755 19',
      'current -> src/lib',
      'src/',
      'src/copy.js 644 20',
      'src/lib/',
      'src/lib/util.js 644 20',
      'src/readme-link -> ../README.md',
    ]);
    expect(result).toEqual({ files: 6, bytes: 64 });
    expect(await readFile(join(layout.dest, 'current', 'util.js'), 'utf8')).toBe('export const x = 1;\n');
    expect((await stat(join(layout.dest, 'src'))).mode & 0o777).toBe(0o755);
  });

  it('keeps the layout when files sit at the top level', async () => {
    await unpackBody(makeTarGz([file('app/main.py', 'print(1)\n'), file('requirements.txt', 'flask\n')]));
    expect(await describeTree(layout.dest)).toEqual(['app/', 'app/main.py 644 9', 'requirements.txt 644 6']);
  });

  it('reads ./-prefixed names, pax long names and plain (uncompressed) tar', async () => {
    const long = `./${'d'.repeat(120)}/${'f'.repeat(120)}.txt`;
    const longTarget = long.slice(2);
    await unpackBody(makeTar([file('./top.txt', 'a'), file(long, 'long'), { path: './l', type: 'SymbolicLink', linkpath: longTarget }]));
    expect(await describeTree(layout.dest)).toEqual([
      'd'.repeat(120) + '/',
      `${longTarget} 644 4`,
      `l -> ${longTarget}`,
      'top.txt 644 1',
    ]);
  });

  it('lets a later entry replace an earlier one, as tar does', async () => {
    await unpackBody(makeTarGz([file('a.txt', 'old'), file('b.txt', 'b'), file('a.txt', 'new!')]));
    expect(await readFile(join(layout.dest, 'a.txt'), 'utf8')).toBe('new!');
  });

  it('keeps a symlink to a sibling that arrives later', async () => {
    await unpackBody(makeTarGz([{ path: 'link', type: 'SymbolicLink', linkpath: 'target.txt' }, file('target.txt', 't')]));
    expect(await readlink(join(layout.dest, 'link'))).toBe('target.txt');
    expect(await readFile(join(layout.dest, 'link'), 'utf8')).toBe('t');
  });
});

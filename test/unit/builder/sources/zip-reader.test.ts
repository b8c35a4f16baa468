import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { unpackSource, type SourceLimits } from '../../../../builder/sources/index.ts';
import { CellhostError, type ErrorCode } from '../../../../runtime/core/errors.ts';
import { describeTree, makeLayout, makeRawZip, makeZip, type Layout } from './archive-fixtures.ts';

const limits: SourceLimits = { maxBytes: 1024 * 1024, maxEntries: 100 };
let layout: Layout;

beforeEach(async () => {
  layout = await makeLayout();
});
afterEach(async () => {
  await layout.cleanup();
});

async function unpackBody(body: Buffer, opts: { limits?: SourceLimits; rootDir?: string } = {}) {
  const file = await layout.upload('source.zip', body);
  return unpackSource({ kind: 'zip', file }, layout.dest, { limits: opts.limits ?? limits, rootDir: opts.rootDir });
}

async function expectRefused(body: Buffer, code: ErrorCode, message: RegExp, opts: { limits?: SourceLimits } = {}) {
  await layout.upload('source.zip', body);
  const before = await layout.outsideDest();
  const err = await unpackBody(body, opts).then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CellhostError);
  expect((err as CellhostError).code).toBe(code);
  expect((err as CellhostError).message).toMatch(message);
  expect(await layout.outsideDest()).toEqual(before);
  expect(await readdir(layout.dest)).toEqual([]);
}

describe('zip: refused archives', () => {
  it('refuses ../ and absolute names (hand-written zips)', async () => {
    await expectRefused(makeRawZip([{ name: 'ok.txt', data: 'x' }, { name: '../canary/evil', data: 'pwned' }]), 'ERR_SOURCE_INVALID', /'\.\.\/canary\/evil' escapes/);
    await expectRefused(makeRawZip([{ name: 'a/../../canary/evil', data: 'pwned' }]), 'ERR_SOURCE_INVALID', /escapes the source root/);
    await expectRefused(makeRawZip([{ name: join(layout.canary, 'evil'), data: 'pwned' }]), 'ERR_SOURCE_INVALID', /absolute path/);
    await expectRefused(makeRawZip([{ name: 'C:/evil', data: 'pwned' }]), 'ERR_SOURCE_INVALID', /absolute path/);
    // Backslashes are separators to zip tools on Windows: '..\\' is a way out as well.
    await expectRefused(makeRawZip([{ name: '..\\canary\\evil', data: 'pwned' }]), 'ERR_SOURCE_INVALID', /escapes the source root/);
  });

  it('refuses symlinks pointing outside and writes through them', async () => {
    await expectRefused(await makeZip([{ name: 'a.txt', data: 'x' }, { name: 'out', data: '../canary', mode: 0o120777 }]), 'ERR_SOURCE_INVALID', /'out' is a symlink to '\.\.\/canary', which points outside/);
    await expectRefused(await makeZip([{ name: 'etc', data: '/etc', mode: 0o120777 }]), 'ERR_SOURCE_INVALID', /absolute path/);
    await expectRefused(
      await makeZip([
        { name: 'out', data: '../canary', mode: 0o120777 },
        { name: 'out/evil', data: 'pwned' },
      ]),
      'ERR_SOURCE_INVALID',
      /goes through the symlink 'out'/,
    );
  });

  it('refuses fifos, sockets and devices', async () => {
    await expectRefused(makeRawZip([{ name: 'pipe', mode: 0o010644 }]), 'ERR_SOURCE_INVALID', /'pipe' is a device file, fifo or socket/);
    await expectRefused(makeRawZip([{ name: 'null', mode: 0o020644 }]), 'ERR_SOURCE_INVALID', /'null' is a device/);
  });

  it('refuses more entries than the limit', async () => {
    const many = Array.from({ length: 30 }, (_, i) => ({ name: `f${i}.txt`, data: 'x' }));
    await expectRefused(await makeZip(many), 'ERR_SOURCE_TOO_LARGE', /more than 20 entries/, { limits: { maxBytes: 1 << 20, maxEntries: 20 } });
  });

  it('refuses a zip bomb without filling the disk', async () => {
    const bomb = await makeZip([{ name: 'zeros.bin', data: Buffer.alloc(10 * 1024 * 1024) }]);
    expect(bomb.length).toBeLessThan(200 * 1024);
    const started = Date.now();
    await expectRefused(bomb, 'ERR_SOURCE_TOO_LARGE', /more than 1048576 bytes \(stopped at 'zeros\.bin'\)/);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('refuses a zip whose entries lie about their size', async () => {
    // Central directory says 10 bytes; the deflated data inflates to 400 KB. The header is not
    // what is counted: the stream is cut where the lie shows.
    const zip = await makeZip([{ name: 'liar.bin', data: 'y'.repeat(400 * 1024) }]);
    const cd = zip.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]));
    zip.writeUInt32LE(10, cd + 24);
    await expectRefused(zip, 'ERR_SOURCE_INVALID', /zip entry 'liar\.bin' is corrupt or truncated \(too many bytes/);
    // A stored entry whose sizes disagree is caught before any byte is written.
    const stored = makeRawZip([{ name: 'liar.bin', data: 'y'.repeat(4000) }]);
    const cd2 = stored.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]));
    stored.writeUInt32LE(10, cd2 + 24);
    await expectRefused(stored, 'ERR_SOURCE_INVALID', /zip archive is corrupt or truncated \(compressed\/uncompressed size mismatch/);
  });

  it('refuses corrupt, truncated and empty zips', async () => {
    const good = await makeZip([{ name: 'a.txt', data: 'hello'.repeat(1000) }, { name: 'b.txt', data: 'b' }]);
    await expectRefused(good.subarray(0, good.length - 30), 'ERR_SOURCE_INVALID', /not a valid zip archive/);
    const flipped = Buffer.from(good);
    flipped[40] ^= 0xff; // inside a.txt's deflate data
    await expectRefused(flipped, 'ERR_SOURCE_INVALID', /zip entry 'a\.txt' is corrupt/);
    await expectRefused(Buffer.from([0x50, 0x4b, 0x05, 0x06, ...Buffer.alloc(18)]), 'ERR_SOURCE_INVALID', /holds no files/);
    await expectRefused(Buffer.alloc(0), 'ERR_SOURCE_INVALID', /the upload is empty/);
  });
});

describe('zip: unpacked archives', () => {
  it('unpacks nested dirs, an executable, a relative symlink; strips a single top dir; skips __MACOSX', async () => {
    const body = await makeZip([
      { name: 'proj/', dir: true },
      { name: 'proj/src/app/main.go', data: 'package main\n' },
      { name: 'proj/run.sh', data: '#!/bin/sh\n', mode: 0o104755 },
      { name: 'proj/src/app/link', data: '../../run.sh', mode: 0o120777 },
      { name: '__MACOSX/proj/._run.sh', data: 'junk' },
    ]);
    const result = await unpackBody(body);
    expect(await describeTree(layout.dest)).toEqual(['run.sh 755 10', 'src/', 'src/app/', 'src/app/link -> ../../run.sh', 'src/app/main.go 644 13']);
    expect(result).toEqual({ files: 3, bytes: 23 });
    expect(await readFile(join(layout.dest, 'src/app/link'), 'utf8')).toBe('#!/bin/sh\n');
  });

  it('reads a zip made on Windows (no Unix modes, no directory entries)', async () => {
    const zip = makeRawZip([
      { name: 'app.py', data: 'print(1)\n', mode: 0 },
      { name: 'pkg/__init__.py', data: '', mode: 0 },
    ]);
    await unpackBody(zip);
    expect(await describeTree(layout.dest)).toEqual(['app.py 644 9', 'pkg/', 'pkg/__init__.py 644 0']);
  });
});

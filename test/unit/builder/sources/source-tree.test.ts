import { readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createSourceTree, fileModeFor } from '../../../../builder/sources/source-tree.ts';
import { CellhostError } from '../../../../runtime/core/errors.ts';
import { makeLayout, type Layout } from './archive-fixtures.ts';

let layout: Layout;
beforeEach(async () => {
  layout = await makeLayout();
});
afterEach(async () => {
  await layout.cleanup();
});

async function* chunks(count: number, size: number): AsyncGenerator<Buffer> {
  for (let i = 0; i < count; i++) yield Buffer.alloc(size, 0x61);
}

describe('createSourceTree', () => {
  it('counts the bytes written, not the size a header declares, and stops mid-file', async () => {
    const tree = await createSourceTree(layout.dest, { limits: { maxBytes: 1024 * 1024, maxEntries: 10 } });
    const err = await tree.addFile('big.bin', 0o644, chunks(64, 64 * 1024), 10).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CellhostError);
    expect((err as CellhostError).code).toBe('ERR_SOURCE_TOO_LARGE');
    // Stopped at the chunk that crossed the limit: that chunk was never written.
    expect((await stat(join(tree.stagingDir, 'big.bin'))).size).toBe(1024 * 1024);
    await tree.discard();
    expect(await readdir(layout.dest)).toEqual([]);
  });

  it('refuses a destination that is not empty', async () => {
    await writeFile(join(layout.dest, 'stale'), 'x');
    await expect(createSourceTree(layout.dest, { limits: { maxBytes: 1, maxEntries: 1 } })).rejects.toMatchObject({ code: 'ERR_INTERNAL' });
  });

  it('refuses symlink loops when it finishes', async () => {
    const tree = await createSourceTree(layout.dest, { limits: { maxBytes: 1024, maxEntries: 10 } });
    await tree.addSymlink('a', 'b');
    await tree.addSymlink('b', 'a');
    await expect(tree.finish({ stripSingleTopDir: true })).rejects.toThrow(/symlink loop/);
    await tree.discard();
    expect(await readdir(layout.dest)).toEqual([]);
  });

  it('stops when the signal is aborted', async () => {
    const ctl = new AbortController();
    const tree = await createSourceTree(layout.dest, { limits: { maxBytes: 1024, maxEntries: 10 }, signal: ctl.signal });
    await tree.addFile('a', 0o644, chunks(1, 10));
    ctl.abort();
    await expect(tree.addFile('b', 0o644, chunks(1, 10))).rejects.toThrow(/aborted/);
    await tree.discard();
  });
});

describe('fileModeFor', () => {
  it('keeps only the executable bit', () => {
    expect(fileModeFor(0o6755).toString(8)).toBe('755');
    expect(fileModeFor(0o1777).toString(8)).toBe('755');
    expect(fileModeFor(0o600).toString(8)).toBe('644');
    expect(fileModeFor(0o100).toString(8)).toBe('755');
    expect(fileModeFor(undefined).toString(8)).toBe('644');
  });
});

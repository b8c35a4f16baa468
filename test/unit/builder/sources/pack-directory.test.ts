import { link, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { packDirectory, unpackSource } from '../../../../builder/sources/index.ts';
import { describeTree, makeLayout, type Layout } from './archive-fixtures.ts';

let layout: Layout;
let project: string;

beforeEach(async () => {
  layout = await makeLayout();
  project = await mkdtemp(join(tmpdir(), 'cellhost-pack-'));
});
afterEach(async () => {
  await layout.cleanup();
  await rm(project, { recursive: true, force: true });
});

async function put(rel: string, data: string, mode = 0o644) {
  await mkdir(join(project, rel, '..'), { recursive: true });
  await writeFile(join(project, rel), data, { mode });
}

describe('packDirectory', () => {
  it('round-trips through unpackSource, leaving out dependencies, venvs, build output and ignored files', async () => {
    await put('package.json', '{"name":"app"}');
    await put('bin/start.sh', '#!/bin/sh\n', 0o755);
    await put(`src/${'deep/'.repeat(30)}leaf.js`, 'leaf'); // longer than a ustar name: needs pax
    await symlink('src', join(project, 'code'));
    await put('node_modules/left-pad/index.js', 'x');
    await put('web/node_modules/x/index.js', 'x');
    await put('.git/HEAD', 'ref: refs/heads/main');
    await put('__pycache__/a.pyc', 'x');
    await put('venv/pyvenv.cfg', 'home = /usr/bin');
    await put('venv/bin/python', 'x');
    await put('rust/Cargo.toml', '[package]');
    await put('rust/target/release/app', 'x');
    await put('assets/target/keep.txt', 'not rust output');
    await put('.DS_Store', 'x');
    await put('debug.log', 'x');
    await put('keep.log', 'kept');
    await put('secret/key.pem', 'x');
    await put('.cellhostignore', '*.log\n!keep.log\n/secret/\n');

    const archive = await packDirectory(project);
    const file = await layout.upload('cli.tar.gz', archive);
    await unpackSource({ kind: 'tar.gz', file }, layout.dest, { limits: { maxBytes: 1 << 20, maxEntries: 1000 } });
    const tree = await describeTree(layout.dest);
    expect(tree.filter((l) => !l.startsWith('src/deep'))).toEqual([
      '.cellhostignore 644 25',
      'assets/',
      'assets/target/',
      'assets/target/keep.txt 644 15',
      'bin/',
      'bin/start.sh 755 10',
      'code -> src',
      'keep.log 644 4',
      'package.json 644 14',
      'rust/',
      'rust/Cargo.toml 644 9',
      'src/',
      'web/', // its node_modules left out, the directory itself kept
    ]);
    expect(tree).toContain(`src/${'deep/'.repeat(30)}leaf.js 644 4`);
  });

  it('packs hard links beside a dotfile (the asynchronous packer failed with "zlib: stream error")', async () => {
    await put('.env', 'x');
    await put('a.txt', 'hello');
    await link(join(project, 'a.txt'), join(project, 'b.txt'));
    const archive = await packDirectory(project);
    const file = await layout.upload('links.tar.gz', archive);
    await unpackSource({ kind: 'tar.gz', file }, layout.dest, { limits: { maxBytes: 1 << 20, maxEntries: 1000 } });
    expect(await readFile(join(layout.dest, 'b.txt'), 'utf8')).toBe('hello');
    expect(await readFile(join(layout.dest, '.env'), 'utf8')).toBe('x');
  });

  it('refuses something that is not a directory', async () => {
    await expect(packDirectory(join(project, 'missing'))).rejects.toMatchObject({ code: 'ERR_VALIDATION' });
  });
});

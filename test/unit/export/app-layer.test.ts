// The app layer's tar: the build at app/, owned by root, readable by everyone; /tmp sticky and
// world-writable; links kept.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tar from 'tar';
import { afterAll, describe, expect, it } from 'vitest';
import { writeAppLayer } from '../../../runtime/export/app-layer.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cellhost-layer-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function entries(file: string): Record<string, { type: string; mode: number; uid: number; gid: number; linkpath?: string }> {
  const out: Record<string, { type: string; mode: number; uid: number; gid: number; linkpath?: string }> = {};
  tar.t({ file, sync: true, onReadEntry: (e) => void (out[e.path] = { type: e.type, mode: e.mode ?? -1, uid: e.uid ?? 0, gid: e.gid ?? 0, ...(e.linkpath ? { linkpath: e.linkpath } : {}) }) });
  return out;
}

describe('writeAppLayer', () => {
  it('puts the tree under app/ with normalized modes, /tmp as 1777, hard and symbolic links intact', () => {
    const src = path.join(dir, 'src');
    fs.mkdirSync(path.join(src, 'bin'), { recursive: true });
    fs.writeFileSync(path.join(src, 'a.js'), 'x', { mode: 0o600 });
    // a dotfile beside a hard link: node-tar's asynchronous packer writes after its end on this
    fs.writeFileSync(path.join(src, '.env.example'), 'K=v');
    fs.linkSync(path.join(src, 'a.js'), path.join(src, 'b.js'));
    fs.writeFileSync(path.join(src, 'bin', 'run'), '#!/bin/sh\n', { mode: 0o700 });
    fs.symlinkSync('a.js', path.join(src, 'link.js'));
    fs.symlinkSync('/usr/bin/python3', path.join(src, 'python'));
    const file = path.join(dir, 'layer.tar');
    writeAppLayer(src, file, { '/usr/bin/python3': '/usr/local/bin/python3' });
    const e = entries(file);
    expect(Object.keys(e).sort()).toEqual(['app/', 'app/.env.example', 'app/a.js', 'app/b.js', 'app/bin/', 'app/bin/run', 'app/link.js', 'app/python', 'tmp/', 'usr/bin/python3']);
    expect(e['tmp/']).toMatchObject({ type: 'Directory', mode: 0o1777 });
    expect(e['app/']).toMatchObject({ type: 'Directory', mode: 0o755, uid: 0, gid: 0 });
    expect(e['app/a.js']).toMatchObject({ type: 'File', mode: 0o644, uid: 0, gid: 0 });
    expect(e['app/b.js']).toMatchObject({ type: 'Link', linkpath: 'app/a.js', mode: 0o644 });
    expect(e['app/bin/run']).toMatchObject({ type: 'File', mode: 0o755 });
    expect(e['app/link.js']).toMatchObject({ type: 'SymbolicLink', linkpath: 'a.js' });
    expect(e['app/python']).toMatchObject({ type: 'SymbolicLink', linkpath: '/usr/bin/python3' });
    expect(e['usr/bin/python3']).toMatchObject({ type: 'SymbolicLink', linkpath: '/usr/local/bin/python3' });
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
  });
});

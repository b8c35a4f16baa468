// Where the rust toolchain is found, for both layouts a host may have: Debian's cargo and rustc
// under /usr (nothing to bind), or rustup's proxies in ~/.cargo/bin whose default toolchain lives
// elsewhere (that one dir is bound). A fake rustc answers `--print sysroot` as the real one does.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { findToolchain } from '../../../runtime/sandbox/toolchains.ts';

let dir: string | null = null;
afterEach(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
  dir = null;
});

function fakeRustc(sysroot: string): string {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cellhost-toolchain-'));
  const bin = path.join(dir, 'bin');
  fs.mkdirSync(bin);
  fs.writeFileSync(path.join(bin, 'rustc'), `#!/bin/sh\n[ "$1 $2" = "--print sysroot" ] && echo '${sysroot}'\n`, { mode: 0o755 });
  return bin;
}

describe('rust toolchain', () => {
  it('under /usr (Debian\'s cargo): nothing to bind, /usr/bin on PATH', () => {
    const t = findToolchain('rust', [fakeRustc('/usr')]);
    expect(t).toMatchObject({ binary: '/usr/bin/rustc', binds: [], pathDirs: ['/usr/bin'] });
  });

  it('through a rustup proxy: the default toolchain\'s dir alone is bound and first on PATH', () => {
    const bin = fakeRustc('');
    const sysroot = path.join(dir!, 'rustup', 'toolchains', 'stable-x86_64-unknown-linux-gnu');
    fs.mkdirSync(path.join(sysroot, 'bin'), { recursive: true });
    fs.writeFileSync(path.join(bin, 'rustc'), `#!/bin/sh\necho '${sysroot}'\n`, { mode: 0o755 });
    const t = findToolchain('rust', [bin]);
    expect(t).toMatchObject({ binary: path.join(sysroot, 'bin', 'rustc'), binds: [sysroot], pathDirs: [path.join(sysroot, 'bin')] });
  });

  it('names what to install when there is no rustc', () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cellhost-toolchain-'));
    expect(findToolchain('rust', [dir])).toMatchObject({ binds: [], pathDirs: [], missing: expect.stringContaining('apt-get install cargo') });
    expect(findToolchain('rust', [dir]).binary).toBeUndefined();
  });
});

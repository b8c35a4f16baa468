// What the platform adds to a build, and what the build log says about it: names never values,
// binds only where they really are and never into the platform's own dirs.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { resolveBuildSetup } from '../../../builder/build-setup.ts';

let root: string;
beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'cellhost-setup-'));
});
afterEach(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

describe('resolveBuildSetup', () => {
  it('passes the variables and binds, and the log names them without values', async () => {
    const wheels = path.join(root, 'wheels');
    fs.mkdirSync(wheels);
    const s = await resolveBuildSetup({ env: { HTTPS_PROXY: 'http://u:secret@proxy.example:3128' }, binds: [wheels], hostConfig: false, forbidden: [] });
    expect(s.env).toEqual({ HTTPS_PROXY: 'http://u:secret@proxy.example:3128' });
    expect(s.binds).toEqual([wheels]);
    expect(s.notes).toEqual([`Host dirs bound read-only: ${wheels}`, 'Build variables from the platform: HTTPS_PROXY']);
    expect(s.notes.join('\n') + s.warnings.join('\n')).not.toContain('secret');
  });

  it('leaves out a missing dir and one a link leads into the platform\'s own files, saying why', async () => {
    const data = path.join(root, 'data');
    fs.mkdirSync(path.join(data, 'images'), { recursive: true });
    fs.symlinkSync(path.join(data, 'images'), path.join(root, 'innocent'));
    const s = await resolveBuildSetup({ env: {}, binds: [path.join(root, 'gone'), path.join(root, 'innocent')], hostConfig: false, forbidden: [data] });
    expect(s.binds).toEqual([]);
    expect(s.warnings).toEqual([
      `${path.join(root, 'gone')} (from CELLHOST_BUILD_BINDS) does not exist on the host: not bound`,
      `${path.join(root, 'innocent')} (from CELLHOST_BUILD_BINDS) leads to ${path.join(data, 'images')}, which holds or is inside the platform's own files: not bound`,
    ]);
  });

  it('with the firewall, names an index or proxy on a private address CELLHOST_EGRESS_ALLOW does not open', async () => {
    const home = path.join(root, 'home');
    fs.mkdirSync(path.join(home, '.config', 'pip'), { recursive: true });
    fs.writeFileSync(path.join(home, '.config', 'pip', 'pip.conf'), '[global]\nindex-url = http://192.168.1.20:3141/root/pypi/+simple/\n');
    const s = await resolveBuildSetup({
      env: { HTTPS_PROXY: 'http://10.0.0.3:3128' },
      binds: [],
      hostConfig: { home, goEnv: 'off' },
      forbidden: [],
      egress: { blocked: ['10.0.0.0/8', '192.168.0.0/16'], allowed: ['10.0.0.0/24'] },
    });
    expect(s.files.map((f) => f.tool)).toEqual(['pip']);
    // (the host's own /etc/pip.conf is read too: only these two are the test's)
    expect(s.warnings.filter((w) => /192\.168\.1\.20|10\.0\.0\.3/.test(w))).toEqual(['http://192.168.1.20:3141/root/pypi/+simple/ is on a private address (192.168.1.20) builds cannot reach: add it to CELLHOST_EGRESS_ALLOW']);
  });
});

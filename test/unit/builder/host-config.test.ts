// The host's pip, npm, cargo and Go configuration as builds see it: which files are copied where,
// and which local dirs they name (to bind read-only).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { minimalDirs, parseIni, readHostBuildConfig, unreachableUrls, urlsIn } from '../../../builder/host-config.ts';

let root: string;
beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'cellhost-hostcfg-'));
});
afterEach(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

function write(rel: string, text: string): string {
  const file = path.join(root, rel);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
  return file;
}

describe('pip INI files', () => {
  it('reads every key of every section, with continuation lines and comments', () => {
    const entries = parseIni('# comment\n[global]\nindex_url = https://a/simple\nextra-index-url =\n    file:///x/simple\n    https://b/simple\n; more\n[install]\nfind-links: /w\n');
    expect(entries).toEqual([
      { key: 'index-url', value: 'https://a/simple' },
      { key: 'extra-index-url', value: 'file:///x/simple https://b/simple' },
      { key: 'find-links', value: '/w' },
    ]);
  });
});

describe('readHostBuildConfig', () => {
  it('copies the user\'s pip, npm, cargo and Go files to where each tool looks, and names the local dirs they need', async () => {
    const home = path.join(root, 'home');
    const wheels = path.join(root, 'wheels');
    fs.mkdirSync(wheels);
    fs.mkdirSync(path.join(root, 'pypi', 'simple'), { recursive: true });
    fs.mkdirSync(path.join(root, 'vendor'));
    fs.mkdirSync(path.join(root, 'goproxy'));
    write('home/.config/pip/pip.conf', `[global]\nfind-links = ${wheels}\nextra-index-url = file://${root}/pypi/simple https://192.168.1.5:3141/simple\n`);
    write('home/.npmrc', 'registry=https://npm.lan/\n//npm.lan/:_authToken=tok\n');
    write('home/.cargo/config.toml', `[source.crates-io]\nreplace-with = "vendored"\n[source.vendored]\ndirectory = "${root}/vendor"\n`);
    write('home/.config/go/env', `GOPROXY=file://${root}/goproxy,https://proxy.golang.org\nGOFLAGS=-mod=mod\n`);

    const cfg = await readHostBuildConfig({ home });
    expect(cfg.files.map((f) => [f.tool, f.target])).toEqual([
      ['pip', { home: '.config/pip/pip.conf' }],
      ['npm', { home: '.npmrc' }],
      ['cargo', { root: '/.cargo/config.toml' }],
      ['go', { home: '.config/go/env' }],
    ]);
    expect(cfg.files[1]!.data.toString()).toContain('_authToken=tok');
    // the index's dir above /simple: its pages link to ../../files
    expect(cfg.paths).toEqual([path.join(root, 'goproxy'), path.join(root, 'pypi'), path.join(root, 'vendor'), wheels].sort());
    expect(cfg.urls).toEqual(expect.arrayContaining(['https://192.168.1.5:3141/simple', 'https://npm.lan/', 'https://proxy.golang.org']));
  });

  it('reads nothing where there is nothing, and honours GOENV=off, XDG_CONFIG_HOME and CARGO_HOME', async () => {
    expect(await readHostBuildConfig({ home: path.join(root, 'nobody'), goEnv: 'off' })).toEqual({ files: [], paths: [], urls: [] });
    write('xdg/pip/pip.conf', '[global]\nindex-url = https://pypi.lan/simple\n');
    write('cargo/config', '[net]\ngit-fetch-with-cli = true\n');
    write('cargo/config.toml', '# not read: cargo takes `config` when both exist\n');
    const cfg = await readHostBuildConfig({ home: path.join(root, 'nobody'), xdgConfigHome: path.join(root, 'xdg'), cargoHome: path.join(root, 'cargo') });
    expect(cfg.files.map((f) => f.source)).toEqual([path.join(root, 'xdg/pip/pip.conf'), path.join(root, 'cargo/config')]);
  });
});

describe('minimalDirs', () => {
  it('drops what every sandbox sees and dirs inside another', () => {
    expect(minimalDirs(['/opt/pypi', '/opt/pypi/simple', '/etc/ssl', '/usr/share/wheels', '/srv/w', '/opt/pypi-more'])).toEqual(['/opt/pypi', '/opt/pypi-more', '/srv/w']);
  });
});

describe('unreachableUrls', () => {
  const blocked = ['10.0.0.0/8', '192.168.0.0/16'];
  it('names URLs on a private address the firewall drops, unless allowed; credentials hidden', () => {
    const urls = urlsIn(['http://user:pw@192.168.1.5:3128', 'https://pypi.org/simple https://10.1.2.3/simple', 'https://goproxy.lan,direct']);
    expect(urls).toEqual(['http://user:pw@192.168.1.5:3128', 'https://pypi.org/simple', 'https://10.1.2.3/simple', 'https://goproxy.lan']);
    expect(unreachableUrls(urls, blocked, [])).toEqual([
      { url: 'http://****@192.168.1.5:3128', host: '192.168.1.5' },
      { url: 'https://10.1.2.3/simple', host: '10.1.2.3' },
    ]);
    expect(unreachableUrls(urls, blocked, ['192.168.1.0/24']).map((u) => u.host)).toEqual(['10.1.2.3']);
  });
});

// What every build gets from the platform: CELLHOST_BUILD_ENV (names passed from the platform's
// environment, or NAME=value pairs), CELLHOST_BUILD_BINDS and the host's package-manager config.
import { describe, expect, it } from 'vitest';
import { parseBuildEnv, splitWords } from '../../../runtime/core/build-settings.ts';
import { loadConfig, redactConfig } from '../../../runtime/core/config.ts';

const load = (env: Record<string, string>) => loadConfig({ env: { CELLHOST_DATA: '/var/lib/cellhost', ...env }, cwd: '/tmp' });

describe('CELLHOST_BUILD_ENV', () => {
  it('passes listed names from the platform environment and fixed pairs, keeping commas and quoted spaces', () => {
    const config = load({
      CELLHOST_BUILD_ENV: `PIP_INDEX_URL,HTTPS_PROXY GOPROXY=https://goproxy.lan,direct PIP_EXTRA_INDEX_URL="file:///a file:///b" NO_SUCH_VAR`,
      PIP_INDEX_URL: 'https://pypi.lan/simple',
      HTTPS_PROXY: 'http://user:secret@proxy.lan:3128',
    });
    expect(config.buildEnv).toEqual({
      PIP_INDEX_URL: 'https://pypi.lan/simple',
      HTTPS_PROXY: 'http://user:secret@proxy.lan:3128',
      GOPROXY: 'https://goproxy.lan,direct',
      PIP_EXTRA_INDEX_URL: 'file:///a file:///b',
    });
    expect(config.buildEnvUnset).toEqual(['NO_SUCH_VAR']);
    // print-config shows names, never values (a proxy's password)
    const shown = JSON.stringify(redactConfig(config));
    expect(shown).not.toContain('secret');
    expect(redactConfig(config).buildEnv).toEqual(['PIP_INDEX_URL', 'HTTPS_PROXY', 'GOPROXY', 'PIP_EXTRA_INDEX_URL']);
  });

  it('is empty by default', () => {
    const config = load({});
    expect(config.buildEnv).toEqual({});
    expect(config.buildBinds).toEqual([]);
  });

  it('refuses a bad name, a variable every build sets itself, and an open quote', () => {
    expect(() => load({ CELLHOST_BUILD_ENV: '1BAD' })).toThrow(/CELLHOST_BUILD_ENV: "1BAD" is not a variable name/);
    expect(() => load({ CELLHOST_BUILD_ENV: 'HOME=/root' })).toThrow(/HOME is set by every build itself/);
    expect(() => load({ CELLHOST_BUILD_ENV: 'PIP_CACHE_DIR' })).toThrow(/PIP_CACHE_DIR is set by every build/);
    expect(() => load({ CELLHOST_BUILD_ENV: 'CELLHOST_MASTER_KEY' })).toThrow(/CELLHOST_MASTER_KEY is set by every build/);
    expect(() => load({ CELLHOST_BUILD_ENV: 'A="x' })).toThrow(/quote is not closed/);
  });

  it('splits words as a shell would for quotes and escapes', () => {
    expect(splitWords(` a  'b c' "d \\"e\\"" f\\ g '' `)).toEqual(['a', 'b c', 'd "e"', 'f g', '']);
    expect(parseBuildEnv('A=1 A=2')).toEqual([{ name: 'A', value: '2' }]);
  });
});

describe('CELLHOST_BUILD_BINDS', () => {
  it('takes absolute paths, normalised, separated by commas or spaces', () => {
    expect(load({ CELLHOST_BUILD_BINDS: '/opt/wheels, /srv/pypi/ /opt/wheels' }).buildBinds).toEqual(['/opt/wheels', '/srv/pypi']);
  });

  it('refuses /, relative paths, the sandbox\'s own places and anything near the data dir or host run dir', () => {
    expect(() => load({ CELLHOST_BUILD_BINDS: '/' })).toThrow(/whole host/);
    expect(() => load({ CELLHOST_BUILD_BINDS: 'wheels' })).toThrow(/CELLHOST_BUILD_BINDS: "wheels" is not an absolute path/);
    expect(() => load({ CELLHOST_BUILD_BINDS: '/tmp/wheels' })).toThrow(/inside \/tmp/);
    expect(() => load({ CELLHOST_BUILD_BINDS: '/var/lib' })).toThrow(/holds or is inside the platform's data dir/);
    expect(() => load({ CELLHOST_BUILD_BINDS: '/var/lib/cellhost/images' })).toThrow(/data dir/);
    expect(() => load({ CELLHOST_BUILD_BINDS: '/run' })).toThrow(/host run dir/);
  });
});

describe('CELLHOST_BUILD_HOST_CONFIG', () => {
  it('is on by default, reading where the platform user keeps its configuration', () => {
    const config = load({ HOME: '/home/ops', XDG_CONFIG_HOME: '/home/ops/.xdg', CARGO_HOME: '/opt/cargo' });
    expect(config.buildHostConfig).toEqual({ home: '/home/ops', xdgConfigHome: '/home/ops/.xdg', cargoHome: '/opt/cargo', goEnv: undefined });
  });

  it('is off with 0', () => {
    expect(load({ CELLHOST_BUILD_HOST_CONFIG: '0' }).buildHostConfig).toBe(false);
  });
});

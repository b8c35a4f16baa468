import { describe, expect, it } from 'vitest';
import { baseSandboxEnv, buildSandboxArgv, type SandboxSpec } from '../../../runtime/sandbox/bwrap.ts';

const spec = (over: Partial<SandboxSpec> = {}): SandboxSpec => ({
  uid: 2_000_000_007,
  gid: 2_000_000_007,
  imageDir: '/data/images/svc/d1',
  tmpSizeBytes: 128 * 1024 * 1024,
  roBinds: [],
  env: { PATH: '/usr/bin', PORT: '8080' },
  argv: ['bash', '-c', 'node server.js'],
  ...over,
});

/** the arguments that follow `flag` each time it appears, `arity` at a time */
function operands(argv: string[], flag: string, arity: number): string[][] {
  const out: string[][] = [];
  argv.forEach((a, i) => {
    if (a === flag) out.push(argv.slice(i + 1, i + 1 + arity));
  });
  return out;
}

describe('buildSandboxArgv', () => {
  it('drops to the service uid with setpriv before bwrap runs', () => {
    const argv = buildSandboxArgv(spec());
    const bwrapAt = argv.indexOf('bwrap');
    expect(argv.slice(0, bwrapAt)).toEqual([
      'setpriv',
      '--reuid=2000000007',
      '--regid=2000000007',
      '--clear-groups',
      '--inh-caps=-all',
      '--bounding-set=-all',
      '--no-new-privs',
      '--',
    ]);
  });

  it('unshares pid, ipc, uts (not the network) and dies with its parent', () => {
    const argv = buildSandboxArgv(spec());
    for (const f of ['--unshare-pid', '--unshare-ipc', '--unshare-uts', '--die-with-parent', '--new-session']) expect(argv).toContain(f);
    expect(argv).not.toContain('--unshare-net');
    expect(argv).not.toContain('--unshare-all');
    expect(operands(argv, '--hostname', 1)).toEqual([['cellhost']]);
  });

  it('binds /usr, /etc, the image and extra paths read-only, with merged-/usr links', () => {
    const argv = buildSandboxArgv(spec({ roBinds: ['/opt/node', { src: '/run/cellhost/binds/rust-1', dest: '/root/.rustup/toolchains/stable' }] }));
    expect(operands(argv, '--ro-bind', 2)).toEqual([
      ['/usr', '/usr'],
      ['/etc', '/etc'],
      ['/data/images/svc/d1', '/app'],
      ['/opt/node', '/opt/node'],
      ['/run/cellhost/binds/rust-1', '/root/.rustup/toolchains/stable'],
    ]);
    expect(operands(argv, '--bind', 2)).toEqual([]);
    expect(operands(argv, '--symlink', 2)).toEqual([
      ['usr/bin', '/bin'],
      ['usr/sbin', '/sbin'],
      ['usr/lib', '/lib'],
      ['usr/lib64', '/lib64'],
    ]);
    expect(operands(argv, '--proc', 1)).toEqual([['/proc']]);
    expect(operands(argv, '--dev', 1)).toEqual([['/dev']]);
    expect(operands(argv, '--chdir', 1)).toEqual([['/app']]);
  });

  it('binds a build dir and its cache read-write', () => {
    const argv = buildSandboxArgv(spec({ writableAppDir: true, rwBinds: [{ src: '/data/cache/svc', dest: '/cache' }] }));
    expect(operands(argv, '--bind', 2)).toEqual([
      ['/data/images/svc/d1', '/app'],
      ['/data/cache/svc', '/cache'],
    ]);
    expect(operands(argv, '--ro-bind', 2).map(([, d]) => d)).not.toContain('/app');
  });

  it('sizes /tmp and makes everything else read-only after the last mount', () => {
    const argv = buildSandboxArgv(spec({ roBinds: ['/opt/go'] }));
    const tmpfs = argv.indexOf('--tmpfs');
    expect(argv.slice(tmpfs - 2, tmpfs + 2)).toEqual(['--size', String(128 * 1024 * 1024), '--tmpfs', '/tmp']);
    const lastMount = Math.max(...['--ro-bind', '--bind', '--tmpfs', '--proc', '--dev', '--symlink'].map((f) => argv.lastIndexOf(f)));
    const remounts = operands(argv, '--remount-ro', 1);
    expect(remounts).toEqual([['/dev'], ['/']]);
    expect(argv.indexOf('--remount-ro')).toBeGreaterThan(lastMount);
  });

  it('clears the environment and sets exactly the given variables', () => {
    const argv = buildSandboxArgv(spec({ env: { PATH: '/usr/bin', PORT: '8080', SECRET: 'a b "c"' } }));
    const clear = argv.indexOf('--clearenv');
    expect(clear).toBeGreaterThan(0);
    expect(operands(argv, '--setenv', 2)).toEqual([
      ['PATH', '/usr/bin'],
      ['PORT', '8080'],
      ['SECRET', 'a b "c"'],
    ]);
    expect(argv.indexOf('--setenv')).toBeGreaterThan(clear);
  });

  it('ends with -- and the app argv, untouched', () => {
    const argv = buildSandboxArgv(spec({ argv: ['bash', '-c', 'echo "$PORT" -- --ro-bind / /'] }));
    expect(argv.slice(-4)).toEqual(['--', 'bash', '-c', 'echo "$PORT" -- --ro-bind / /']);
  });

  it('refuses root, relative paths, a bind under /tmp and bad env names', () => {
    expect(() => buildSandboxArgv(spec({ uid: 0 }))).toThrow(/unprivileged/);
    expect(() => buildSandboxArgv(spec({ gid: 0 }))).toThrow(/unprivileged/);
    expect(() => buildSandboxArgv(spec({ imageDir: 'images/x' }))).toThrow(/absolute/);
    expect(() => buildSandboxArgv(spec({ roBinds: ['opt/x'] }))).toThrow(/absolute/);
    expect(() => buildSandboxArgv(spec({ roBinds: ['/tmp/toolchain'] }))).toThrow(/tmpfs/);
    expect(() => buildSandboxArgv(spec({ env: { 'A=B': 'x' } }))).toThrow(/invalid/);
    expect(() => buildSandboxArgv(spec({ env: { A: 'x\0y' } }))).toThrow(/invalid/);
    expect(() => buildSandboxArgv(spec({ tmpSizeBytes: 0 }))).toThrow(/tmpSizeBytes/);
    expect(() => buildSandboxArgv(spec({ argv: [] }))).toThrow(/empty/);
  });
});

describe('baseSandboxEnv', () => {
  it('puts HOME and TMPDIR in /tmp and the toolchain first on PATH', () => {
    const env = baseSandboxEnv(['/opt/go/bin']);
    expect(env.HOME).toBe('/tmp');
    expect(env.TMPDIR).toBe('/tmp');
    expect(env.LANG).toBe('C.UTF-8');
    expect(env.PATH!.split(':')[0]).toBe('/opt/go/bin');
    expect(env.PATH).toContain('/usr/bin');
  });
});

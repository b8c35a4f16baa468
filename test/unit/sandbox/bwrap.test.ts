import { describe, expect, it } from 'vitest';
import { baseSandboxEnv, buildSandboxCommand, sandboxOptions, type SandboxSpec } from '../../../runtime/sandbox/bwrap.ts';
import { seccompProgramFor } from '../../../runtime/sandbox/seccomp.ts';

/** bwrap's options, as it reads them from fd 3 */
const options = (s: SandboxSpec): string[] => sandboxOptions(buildSandboxCommand(s));

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

describe('buildSandboxCommand', () => {
  it('drops to the service uid with setpriv before bwrap runs', () => {
    const { argv } = buildSandboxCommand(spec());
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
    const argv = options(spec());
    for (const f of ['--unshare-pid', '--unshare-ipc', '--unshare-uts', '--die-with-parent', '--new-session']) expect(argv).toContain(f);
    expect(argv).not.toContain('--unshare-net');
    expect(argv).not.toContain('--unshare-all');
    expect(operands(argv, '--hostname', 1)).toEqual([['cellhost']]);
  });

  it('binds /usr, /etc, the image and extra paths read-only, with merged-/usr links', () => {
    const argv = options(spec({ roBinds: ['/opt/node', { src: '/run/cellhost/binds/rust-1', dest: '/root/.rustup/toolchains/stable' }] }));
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
    const argv = options(spec({ writableAppDir: true, rwBinds: [{ src: '/data/cache/svc', dest: '/cache' }] }));
    expect(operands(argv, '--bind', 2)).toEqual([
      ['/data/images/svc/d1', '/app'],
      ['/data/cache/svc', '/cache'],
    ]);
    expect(operands(argv, '--ro-bind', 2).map(([, d]) => d)).not.toContain('/app');
  });

  it('sizes /tmp and makes everything else read-only after the last mount', () => {
    const argv = options(spec({ roBinds: ['/opt/go'] }));
    const tmpfs = argv.indexOf('--tmpfs');
    expect(argv.slice(tmpfs - 2, tmpfs + 2)).toEqual(['--size', String(128 * 1024 * 1024), '--tmpfs', '/tmp']);
    const lastMount = Math.max(...['--ro-bind', '--bind', '--tmpfs', '--proc', '--dev', '--symlink'].map((f) => argv.lastIndexOf(f)));
    const remounts = operands(argv, '--remount-ro', 1);
    expect(remounts).toEqual([['/dev'], ['/']]);
    expect(argv.indexOf('--remount-ro')).toBeGreaterThan(lastMount);
  });

  it('clears the environment and sets exactly the given variables', () => {
    const argv = options(spec({ env: { PATH: '/usr/bin', PORT: '8080', SECRET: 'a b "c"' } }));
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
    const { argv } = buildSandboxCommand(spec({ argv: ['bash', '-c', 'echo "$PORT" -- --ro-bind / /'] }));
    expect(argv.slice(-4)).toEqual(['--', 'bash', '-c', 'echo "$PORT" -- --ro-bind / /']);
  });

  it('puts nothing of the sandbox on the command line: bwrap reads its options from fd 3', () => {
    const cmd = buildSandboxCommand(spec({ env: { PATH: '/usr/bin', SECRET_TOKEN: 'S3cr3t' } }));
    expect(cmd.argv.slice(cmd.argv.indexOf('bwrap'))).toEqual(['bwrap', '--args', '3', '--', 'bash', '-c', 'node server.js']);
    expect(cmd.argv.join(' ')).not.toMatch(/S3cr3t|\/data\/images|--setenv|--ro-bind/);
    expect(cmd.fds[0]!.toString()).toContain('SECRET_TOKEN\0S3cr3t\0');
    expect(cmd.fds[0]!.at(-1)).toBe(0);
  });

  it('disables user namespaces and loads the seccomp program from fd 4', () => {
    const program = Buffer.from([1, 2, 3, 4, 5, 6, 7, 8]);
    const cmd = buildSandboxCommand(spec({ hardening: { disableUserns: true, seccomp: program } }));
    const opts = sandboxOptions(cmd);
    expect(opts.slice(0, 2)).toEqual(['--unshare-user', '--disable-userns']);
    expect(operands(opts, '--seccomp', 1)).toEqual([['4']]);
    expect(cmd.fds).toHaveLength(2);
    expect(cmd.fds[1]).toEqual(program);
  });

  it("hardens by default with the host's seccomp program; leaves out what the host cannot do", () => {
    const byDefault = buildSandboxCommand(spec());
    expect(sandboxOptions(byDefault)).toContain('--disable-userns');
    expect(byDefault.fds[1]).toEqual(seccompProgramFor());
    const bare = buildSandboxCommand(spec({ hardening: { disableUserns: false, seccomp: null } }));
    expect(sandboxOptions(bare)).not.toContain('--disable-userns');
    expect(sandboxOptions(bare)).not.toContain('--seccomp');
    expect(bare.fds).toHaveLength(1);
  });

  it('places files by content from the fds after the options and seccomp, after the tmpfs and before the read-only remount', () => {
    const program = Buffer.from([9, 9, 9, 9, 9, 9, 9, 9]);
    const pip = Buffer.from('[global]\nindex-url = https://pypi.lan/simple\n');
    const cargo = Buffer.from('[net]\n');
    const cmd = buildSandboxCommand(spec({ hardening: { disableUserns: true, seccomp: program }, files: [{ dest: '/tmp/.config/pip/pip.conf', data: pip }, { dest: '/.cargo/config.toml', data: cargo }] }));
    const opts = sandboxOptions(cmd);
    expect(operands(opts, '--ro-bind-data', 2)).toEqual([['5', '/tmp/.config/pip/pip.conf'], ['6', '/.cargo/config.toml']]);
    expect(cmd.fds.slice(1)).toEqual([program, pip, cargo]);
    expect(opts.indexOf('--ro-bind-data')).toBeGreaterThan(opts.indexOf('--tmpfs'));
    expect(opts.lastIndexOf('--ro-bind-data')).toBeLessThan(opts.indexOf('--remount-ro'));
    // without seccomp the first file is fd 4; nothing of the content is on a command line or in the options
    const bare = buildSandboxCommand(spec({ hardening: { disableUserns: false, seccomp: null }, files: [{ dest: '/tmp/.npmrc', data: Buffer.from('//r/:_authToken=T0KEN') }] }));
    expect(operands(sandboxOptions(bare), '--ro-bind-data', 2)).toEqual([['4', '/tmp/.npmrc']]);
    expect(bare.fds[0]!.toString() + bare.argv.join(' ')).not.toContain('T0KEN');
  });

  it('refuses a file in the image, /proc or /dev, or replacing /tmp', () => {
    for (const dest of ['/app/.npmrc', '/proc/x', '/dev/x', '/tmp', 'tmp/x', '/tmp/../app/x']) {
      expect(() => buildSandboxCommand(spec({ files: [{ dest, data: Buffer.from('x') }] }))).toThrow(/file|absolute/);
    }
  });

  it('refuses root, relative paths, a bind under /tmp and bad env names', () => {
    expect(() => buildSandboxCommand(spec({ uid: 0 }))).toThrow(/unprivileged/);
    expect(() => buildSandboxCommand(spec({ gid: 0 }))).toThrow(/unprivileged/);
    expect(() => buildSandboxCommand(spec({ imageDir: 'images/x' }))).toThrow(/absolute/);
    expect(() => buildSandboxCommand(spec({ roBinds: ['opt/x'] }))).toThrow(/absolute/);
    expect(() => buildSandboxCommand(spec({ roBinds: ['/tmp/toolchain'] }))).toThrow(/tmpfs/);
    expect(() => buildSandboxCommand(spec({ env: { 'A=B': 'x' } }))).toThrow(/invalid/);
    expect(() => buildSandboxCommand(spec({ env: { A: 'x\0y' } }))).toThrow(/invalid/);
    expect(() => buildSandboxCommand(spec({ tmpSizeBytes: 0 }))).toThrow(/tmpSizeBytes/);
    expect(() => buildSandboxCommand(spec({ argv: [] }))).toThrow(/empty/);
  });
});

describe('a system-layer build: root of a namespace mapping the service block', () => {
  const block = { first: 2_013_265_920, count: 65_536 };
  const layer = { usr: '/run/ch/layers/b-d1/usr', etc: '/run/ch/layers/b-d1/etc', var: '/run/ch/layers/b-d1/var', writable: true };

  it('enters the mapped namespace with perl instead of setpriv, bwrap as its root', () => {
    const { argv } = buildSandboxCommand(spec({ rangeRoot: block, systemDirs: layer }));
    expect(argv[0]).toBe('perl');
    expect(argv).not.toContain('setpriv');
    const bwrapAt = argv.indexOf('bwrap');
    expect(argv.slice(argv.indexOf('--') + 1, bwrapAt)).toEqual([String(block.first), '65536']);
    expect(argv.slice(bwrapAt)).toEqual(['bwrap', '--args', '3', '--', 'bash', '-c', 'node server.js']);
  });

  it('binds the layer read-write at /usr, /etc and /var, keeps a container root’s capabilities only, /tmp for everyone', () => {
    const o = options(spec({ rangeRoot: block, systemDirs: layer }));
    expect(o).not.toContain('--unshare-user');
    expect(o).not.toContain('--disable-userns');
    expect(o.slice(0, 2)).toEqual(['--cap-drop', 'ALL']);
    const caps = operands(o, '--cap-add', 1).map((c) => c[0]);
    expect(caps).toContain('CAP_CHOWN');
    expect(caps).not.toContain('CAP_SYS_ADMIN');
    expect(caps).not.toContain('CAP_NET_ADMIN');
    expect(caps).not.toContain('CAP_MKNOD');
    expect(operands(o, '--bind', 2)).toEqual(expect.arrayContaining([[layer.usr, '/usr'], [layer.etc, '/etc'], [layer.var, '/var']]));
    expect(operands(o, '--ro-bind', 2).map((b) => b[1])).not.toContain('/usr');
    expect(o.join(' ')).toContain('--perms 1777 --size');
    expect(o).toContain('--seccomp');
  });

  it('is refused without a seccomp filter: nothing else keeps its root from new namespaces', () => {
    expect(() => buildSandboxCommand(spec({ rangeRoot: block, systemDirs: layer, hardening: { disableUserns: true, seccomp: null } }))).toThrow(/seccomp/);
    expect(() => buildSandboxCommand(spec({ rangeRoot: { first: 0, count: 65_536 }, systemDirs: layer }))).toThrow(/unprivileged ids/);
  });

  it('instances of a deployment with a layer: its views read-only in place of the host’s, /var/lib added', () => {
    const view = { usr: '/run/ch/layers/d-d1/usr', etc: '/etc', varLib: '/run/ch/layers/d-d1/varLib' };
    const o = options(spec({ systemDirs: view }));
    expect(operands(o, '--ro-bind', 2)).toEqual(expect.arrayContaining([[view.usr, '/usr'], ['/etc', '/etc'], [view.varLib, '/var/lib']]));
    expect(o).toContain('--unshare-user');
    expect(operands(o, '--bind', 2)).toEqual([]);
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

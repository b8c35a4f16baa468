// The filesystem sandbox: argv for `setpriv … bwrap … -- app`, and a host probe.
//
// setpriv drops to the service's uid (no groups, no capabilities, empty bounding set,
// no_new_privs) before bwrap runs, so bwrap sets up the sandbox unprivileged inside a user
// namespace and the app is that uid on the host, never root.
//
// What the app sees:
// - /usr read-only; /bin /sbin /lib /lib64 are the merged-/usr symlinks (probeSandbox checks the
//   host is merged-/usr; Debian 12 is);
// - /etc read-only, whole. Programs need far more of it than a short list (resolv.conf, hosts,
//   nsswitch.conf, ssl/ and ca-certificates, ld.so.cache, alternatives/, localtime, mime.types,
//   services, protocols, gai.conf, python3.x/, …), and an allowlist breaks a different app each
//   time. Secrets in /etc are already closed to others by their modes (shadow 0640 root:shadow,
//   ssh host keys 0600, ssl/private 0700), and the sandbox uid is in no group and has no
//   capabilities, so it cannot read them; the platform's own secrets are in the data dir, absent;
// - the image at /app (the cwd), read-only (read-write for builds);
// - /tmp: a private tmpfs of tmpSizeBytes, the only writable place, gone with the sandbox;
// - a fresh /proc (only the sandbox's processes) and a minimal /dev;
// - the toolchain dirs given in roBinds, read-only; for builds, rwBinds (the dependency cache);
// - files given by content (a build's copy of the host's package-manager configuration), each a
//   read-only file bwrap writes from a descriptor: no host path of them is bound;
// - nothing else: no data dir, no other images, no /root, no /home, no /var, no /run, no /sys.
// The sandbox's root and /dev are remounted read-only at the end, so nothing can be created
// there either (bwrap leaves both writable otherwise); /dev/shm is therefore read-only too.
//
// What the app can do beyond that (the hardening):
// - no user namespaces of its own (--disable-userns): `unshare -U -r` would hand it every
//   capability over new mount and network namespaces, the usual first step of a kernel exploit;
// - a seccomp filter (seccomp.ts) refuses the calls a container runtime's default profile refuses.
//
// Builds with a system layer (system-layer.ts) run differently: as uid 0 of a user namespace that
// maps the service's block of subuids (no setpriv: perl writes the map, then execs bwrap as that
// root), with /usr, /etc and /var the layer's writable overlays, a world-writable /tmp (apt drops
// to its _apt user), and a container's usual capabilities over what the namespace owns and
// nothing else (--cap-drop ALL, then the list below). bwrap run as root makes no user namespace
// of its own, so --disable-userns cannot apply: the seccomp filter, which refuses every way of
// making one (and every mount call), is what keeps the build's root in its namespace; without a
// filter there are no system layers (probeSystemLayers). Instances of such a deployment run as
// today, with the layer's read-only views in place of the host's /usr and /etc, and /var/lib.
//
// Nothing of the sandbox is on a command line. /proc/PID/cmdline is readable by every user of
// the host, and bwrap's own (which its pid-1 init inside the sandbox shares) would show the
// service's environment (--setenv NAME VALUE) and the data dir's paths. bwrap reads all its
// options from fd 3 instead (--args 3) and the seccomp program from fd 4; its command line is
// `bwrap --args 3 -- <the app's command>`. The environment reaches the app only through its own
// environ, which /proc shows to the same uid and root alone; the chain before bwrap (cgroup join,
// nsenter, setpriv) runs with a fixed PATH and never sees it.
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { CellhostError } from '../core/errors.ts';
import { envNameSchema } from '../core/names.ts';
import { runCommand } from './run-command.ts';
import { enterMappedArgv, type IdBlock } from './id-mapping.ts';
import { seccompProgramFor } from './seccomp.ts';

export interface SandboxBind {
  /** host path bubblewrap can resolve as the service uid (see bind-stage.ts) */
  src: string;
  /** where it appears inside the sandbox */
  dest: string;
}

export interface SandboxSpec {
  /** the service's unprivileged uid and gid */
  uid: number;
  gid: number;
  /** bound at /app, the working directory */
  imageDir: string;
  /** builds: the build dir is bound read-write at /app */
  writableAppDir?: boolean;
  /** size of the private /tmp tmpfs (it counts against the memory cgroup of whoever writes) */
  tmpSizeBytes: number;
  /** extra host paths bound read-only: a string is bound at the same path */
  roBinds: ReadonlyArray<string | SandboxBind>;
  /** builds: host dirs bound read-write (the service's dependency cache), owned by the uid */
  rwBinds?: ReadonlyArray<string | SandboxBind>;
  /** files the sandbox gets by content, read-only (under /tmp or on the root, never in /app) */
  files?: ReadonlyArray<SandboxFile>;
  /** the only environment the app gets */
  env: Readonly<Record<string, string>>;
  /** defaults to "cellhost" */
  hostname?: string;
  /** e.g. ['bash', '-c', startCommand] */
  argv: readonly string[];
  /** what the host's bubblewrap can enforce beyond the namespaces (default: everything) */
  hardening?: SandboxHardening;
  /** builds with a system layer: root of a user namespace mapping this block (uid/gid then unused) */
  rangeRoot?: IdBlock;
  /** a system layer's trees in place of the host's /usr and /etc (and /var or /var/lib) */
  systemDirs?: SystemDirs;
}

export interface SystemDirs {
  usr: string;
  etc: string;
  /** a build's whole /var */
  var?: string;
  /** an instance's /var/lib */
  varLib?: string;
  /** bound read-write (a build's overlays) rather than read-only */
  writable?: boolean;
}

/** what root in a system-layer build may do inside its namespace: a container runtime's default
 *  set without raw sockets and device nodes (the network namespace is not its own anyway) */
export const RANGE_ROOT_CAPS = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FOWNER',
  'CAP_FSETID',
  'CAP_KILL',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETPCAP',
  'CAP_SETFCAP',
  'CAP_SYS_CHROOT',
] as const;

export interface SandboxFile {
  /** where it appears inside */
  dest: string;
  data: Uint8Array;
}

export interface SandboxHardening {
  /** bwrap ≥ 0.8: the app cannot create user namespaces */
  disableUserns: boolean;
  /** the seccomp program (seccomp.ts), or null where there is none for the architecture */
  seccomp: Uint8Array | null;
}

/** A sandbox ready to spawn: its command line, and what it must read on fds 3, 4, … */
export interface SandboxCommand {
  /** `setpriv … -- bwrap --args 3 -- <app>`: nothing secret, no host path */
  argv: string[];
  /** the data for fd 3 (bwrap's options, NUL-separated), fd 4 (the seccomp program, if any), then each file's content */
  fds: Buffer[];
}

/** the fd bwrap reads its options from; the seccomp program follows on the next */
export const SANDBOX_FIRST_FD = 3;

let defaultHardening: SandboxHardening | undefined;
/** full hardening for this host's architecture */
export function fullHardening(): SandboxHardening {
  return (defaultHardening ??= { disableUserns: true, seccomp: seccompProgramFor() });
}

/** The merged-/usr links every sandbox gets (Debian 12, Ubuntu, Fedora, Arch are merged-/usr). */
export const ROOT_LINKS: ReadonlyArray<readonly [string, string]> = [
  ['/bin', 'usr/bin'],
  ['/sbin', 'usr/sbin'],
  ['/lib', 'usr/lib'],
  ['/lib64', 'usr/lib64'],
];

/** the system dirs, in the order a Debian root's PATH has them */
export const SANDBOX_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * The environment every sandboxed process starts from: a sane PATH (the toolchain's dirs first),
 * HOME and TMPDIR in the writable /tmp, a UTF-8 locale that exists without locales installed.
 * The caller adds PORT, CELLHOST_* and the service's own variables on top.
 */
export function baseSandboxEnv(pathDirs: readonly string[] = []): Record<string, string> {
  return {
    PATH: [...pathDirs, SANDBOX_PATH].join(':'),
    HOME: '/tmp',
    TMPDIR: '/tmp',
    LANG: 'C.UTF-8',
  };
}

function assertAbsolute(p: string, what: string): void {
  if (!p.startsWith('/') || p.includes('\0')) {
    throw new CellhostError('ERR_SANDBOX_SETUP', `${what} must be an absolute path, got "${p}"`);
  }
}

function assertId(n: number, what: string): void {
  // 0 would hand the app root; 2^32-1 is the kernel's "no id"
  if (!Number.isInteger(n) || n <= 0 || n >= 4294967295) {
    throw new CellhostError('ERR_SANDBOX_SETUP', `${what} must be an unprivileged id, got ${n}`);
  }
}

/** The sandbox's command and its fds' data: pure, so the exact sandbox is unit-testable. */
export function buildSandboxCommand(spec: SandboxSpec): SandboxCommand {
  assertId(spec.uid, 'uid');
  assertId(spec.gid, 'gid');
  assertAbsolute(spec.imageDir, 'imageDir');
  if (!Number.isInteger(spec.tmpSizeBytes) || spec.tmpSizeBytes <= 0) {
    throw new CellhostError('ERR_SANDBOX_SETUP', `tmpSizeBytes must be a positive integer, got ${spec.tmpSizeBytes}`);
  }
  if (spec.argv.length === 0) throw new CellhostError('ERR_SANDBOX_SETUP', 'argv is empty');

  const setpriv = [
    'setpriv',
    `--reuid=${spec.uid}`,
    `--regid=${spec.gid}`,
    '--clear-groups',
    '--inh-caps=-all',
    // a setuid binary cannot hand caps back; bwrap itself needs none (it uses a user namespace)
    '--bounding-set=-all',
    '--no-new-privs',
    '--',
  ];

  const hardening = spec.hardening ?? fullHardening();
  const root = spec.rangeRoot;
  if (root && !hardening.seccomp) throw new CellhostError('ERR_SANDBOX_SETUP', 'a build as root in its namespace needs the seccomp filter');
  const sys = spec.systemDirs;
  const bwrap = [
    // bwrap, unprivileged, always makes a user namespace; named here because --disable-userns needs it
    ...(root ? [] : ['--unshare-user', ...(hardening.disableUserns ? ['--disable-userns'] : [])]),
    ...(root ? ['--cap-drop', 'ALL', ...RANGE_ROOT_CAPS.flatMap((c) => ['--cap-add', c])] : []),
    '--unshare-pid',
    '--unshare-ipc',
    '--unshare-uts',
    '--unshare-cgroup-try',
    '--die-with-parent',
    '--new-session',
    '--hostname',
    spec.hostname ?? 'cellhost',
  ];
  const sysBind = sys?.writable ? '--bind' : '--ro-bind';
  for (const [src, dest] of [
    [sys?.usr ?? '/usr', '/usr'],
    [sys?.etc ?? '/etc', '/etc'],
    ...(sys?.var ? [[sys.var, '/var']] : []),
    ...(sys?.varLib ? [[sys.varLib, '/var/lib']] : []),
  ] as const) {
    assertAbsolute(src, 'system dir');
    bwrap.push(sys ? sysBind : '--ro-bind', src, dest);
  }
  for (const [link, target] of ROOT_LINKS) bwrap.push('--symlink', target, link);
  bwrap.push('--proc', '/proc', '--dev', '/dev');
  bwrap.push(spec.writableAppDir ? '--bind' : '--ro-bind', spec.imageDir, '/app');
  const binds = [
    ...spec.roBinds.map((b) => ['--ro-bind', b] as const),
    ...(spec.rwBinds ?? []).map((b) => ['--bind', b] as const),
  ];
  for (const [flag, b] of binds) {
    const { src, dest } = typeof b === 'string' ? { src: b, dest: b } : b;
    assertAbsolute(src, 'bind source');
    assertAbsolute(dest, 'bind destination');
    if (dest === '/tmp' || dest.startsWith('/tmp/')) {
      // the private /tmp is mounted after the binds and would hide it
      throw new CellhostError('ERR_SANDBOX_SETUP', `cannot bind ${src} at ${dest}: /tmp is the sandbox's own tmpfs`);
    }
    bwrap.push(flag, src, dest);
  }
  // root's /tmp is everyone's, as on any system (apt's _apt writes there)
  if (root) bwrap.push('--perms', '1777');
  bwrap.push('--size', String(spec.tmpSizeBytes), '--tmpfs', '/tmp');
  // after the tmpfs, so a file under /tmp lands in it; bwrap makes the dirs above each one
  const files = spec.files ?? [];
  let nextFd = SANDBOX_FIRST_FD + (hardening.seccomp ? 2 : 1);
  for (const f of files) {
    assertAbsolute(f.dest, 'file destination');
    const dest = f.dest.replace(/\/+$/, '');
    if (dest.split('/').includes('..') || ['/app', '/proc', '/dev'].some((d) => dest === d || dest.startsWith(d + '/')) || dest === '/tmp') {
      throw new CellhostError('ERR_SANDBOX_SETUP', `cannot place a file at ${f.dest}: only under /tmp or on the sandbox's own root`);
    }
    bwrap.push('--ro-bind-data', String(nextFd++), dest);
  }
  // last, after everything that creates mount points: the root tmpfs and /dev stop being writable
  bwrap.push('--remount-ro', '/dev', '--remount-ro', '/');
  bwrap.push('--chdir', '/app', '--clearenv');
  for (const [k, v] of Object.entries(spec.env)) {
    if (!envNameSchema.safeParse(k).success || v.includes('\0')) {
      throw new CellhostError('ERR_SANDBOX_SETUP', `environment variable "${k}" has an invalid name or value`);
    }
    bwrap.push('--setenv', k, v);
  }
  if (hardening.seccomp) bwrap.push('--seccomp', String(SANDBOX_FIRST_FD + 1));
  const fds = [Buffer.from(bwrap.map((a) => a + '\0').join(''))];
  if (hardening.seccomp) fds.push(Buffer.from(hardening.seccomp));
  for (const f of files) fds.push(Buffer.from(f.data));
  const inner = ['bwrap', '--args', String(SANDBOX_FIRST_FD), '--', ...spec.argv];
  return { argv: root ? enterMappedArgv(root, inner) : [...setpriv, ...inner], fds };
}

/** bwrap's options as it reads them from fd 3 (for tests and diagnostics) */
export function sandboxOptions(cmd: SandboxCommand): string[] {
  return cmd.fds[0]!.toString('utf8').split('\0').slice(0, -1);
}

export interface SandboxProbe {
  available: boolean;
  /** each protection that is off, and what to do about it */
  reasons: string[];
  /** what the sandboxes of this host can add to the namespaces */
  hardening: SandboxHardening;
}

async function readNumber(file: string): Promise<number | undefined> {
  const text = await readFile(file, 'utf8').catch(() => undefined);
  return text === undefined ? undefined : Number(text.trim());
}

/**
 * Can this host run `buildSandboxCommand` sandboxes? Checks root, setpriv, bwrap (and whether it
 * can disable user namespaces), user namespaces, a merged /usr, then runs a real sandbox (`true`
 * as uid `probeUid`, hardened) to catch what static checks cannot (LSM restrictions on user
 * namespaces, a seccomp'd container).
 */
export async function probeSandbox(opts: { probeUid?: number } = {}): Promise<SandboxProbe> {
  const reasons: string[] = [];
  if (process.getuid?.() !== 0) reasons.push('not running as root: cannot run apps as per-service uids (run cellhost as root)');
  const [bwrapV, bwrapHelp, setprivV] = await Promise.all([
    runCommand('bwrap', ['--version'], { timeoutMs: 5000 }),
    runCommand('bwrap', ['--help'], { timeoutMs: 5000 }),
    runCommand('setpriv', ['--version'], { timeoutMs: 5000 }),
  ]);
  const seccomp = seccompProgramFor();
  const hardening: SandboxHardening = { disableUserns: bwrapHelp.stdout.includes('--disable-userns'), seccomp };
  if (bwrapV.spawnError || bwrapV.code !== 0) reasons.push('bubblewrap (bwrap) not installed: apt-get install bubblewrap');
  if (setprivV.spawnError || setprivV.code !== 0) reasons.push('setpriv not installed: apt-get install util-linux');
  const maxUserNs = await readNumber('/proc/sys/user/max_user_namespaces');
  if (maxUserNs === 0) reasons.push('user namespaces are disabled: sysctl -w user.max_user_namespaces=15000');
  const debianClone = await readNumber('/proc/sys/kernel/unprivileged_userns_clone');
  if (debianClone === 0) reasons.push('unprivileged user namespaces are disabled: sysctl -w kernel.unprivileged_userns_clone=1');
  for (const [link, target] of ROOT_LINKS) {
    const st = await lstat(link).catch(() => undefined);
    if (st && !(st.isSymbolicLink() && (await readlink(link)).replace(/^\//, '') === target)) {
      reasons.push(`${link} is not a symlink to ${target}: the sandbox expects a merged-/usr host`);
    }
  }
  if (reasons.length > 0) return { available: false, reasons, hardening };

  const cmd = buildSandboxCommand({
    uid: opts.probeUid ?? 65534,
    gid: opts.probeUid ?? 65534,
    imageDir: '/usr',
    tmpSizeBytes: 1 << 20,
    roBinds: [],
    env: baseSandboxEnv(),
    argv: ['/usr/bin/true'],
    hardening,
  });
  const r = await runCommand(cmd.argv[0]!, cmd.argv.slice(1), { timeoutMs: 10_000, fds: cmd.fds });
  if (r.spawnError || r.code !== 0) {
    const restricted = await readNumber('/proc/sys/kernel/apparmor_restrict_unprivileged_userns');
    reasons.push(
      `a test sandbox failed: ${r.stderr.trim() || `exit ${r.code ?? r.signal}`}` +
        (restricted === 1 ? ' (AppArmor restricts unprivileged user namespaces: allow bwrap in its profile)' : ''),
    );
    return { available: false, reasons, hardening };
  }
  // the sandbox works: what it lacks is said, not a reason to run apps without it
  if (!hardening.disableUserns) reasons.push(`bubblewrap ${bwrapV.stdout.trim()} cannot disable user namespaces (0.8 can): apps may make nested user namespaces`);
  if (!seccomp) reasons.push(`no seccomp filter for the ${process.arch} architecture: apps reach every system call`);
  return { available: true, reasons, hardening };
}

async function childPids(pid: number): Promise<number[]> {
  // bwrap is single-threaded, so its main thread's children file lists all of its children
  const listed = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => undefined);
  if (listed !== undefined) return listed.split(' ').filter(Boolean).map(Number);
  const out: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await readFile(`/proc/${name}/stat`, 'utf8').catch(() => '');
    if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(name));
  }
  return out;
}

/**
 * The host pid of the app in a sandbox whose argv was spawned as `spawnedPid` (setpriv and the
 * wrappers before it exec, so that pid is bwrap's monitor). Stopping gracefully means signalling
 * this pid: SIGTERM to the monitor kills the whole sandbox at once (--die-with-parent), and bwrap's
 * init, pid 1 of the sandbox, ignores signals it has no handler for.
 */
export async function findSandboxAppPid(spawnedPid: number): Promise<number | undefined> {
  const [init] = await childPids(spawnedPid);
  if (init === undefined) return undefined;
  const [app] = await childPids(init);
  return app;
}

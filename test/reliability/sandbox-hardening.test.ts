// What an app's code can ask of the kernel from inside the real sandbox: a probe app (python,
// raw system calls through ctypes) deployed on a real platform tries to get itself a nested user
// namespace and the calls a container runtime's default seccomp profile refuses. Each call is
// made with arguments under which the kernel itself would answer something other than EPERM
// (a bad pointer, a bad flag, a call that works unprivileged), or from inside a user namespace
// the probe first tries to make for itself, where it would hold every capability: EPERM then
// means the sandbox refused it. Calls that need a capability of the host's own user namespace
// (modules, kexec, reboot, swap) answer EPERM either way; the filter's unit test covers them.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probeSandbox } from '../../runtime/sandbox/bwrap.ts';
import { probeNetns } from '../../runtime/sandbox/netns.ts';
import { syscallNumbers, type SyscallName } from '../../runtime/sandbox/seccomp.ts';
import { FIXTURES, startTestServer, type TestServer } from '../helpers/server.ts';

const isCI = process.env.CI === 'true';
const [sandboxProbe, netProbe] = await Promise.all([probeSandbox(), probeNetns()]);
const ready = sandboxProbe.available && netProbe.available && (process.arch === 'x64' || process.arch === 'arm64');
const EPERM = 1;
const ENOSYS = 38;

describe('sandbox hardening prerequisites', () => {
  it.runIf(isCI)('root, bubblewrap, iproute2, a NAT backend and a known architecture are present in CI', () => {
    expect([...sandboxProbe.reasons, ...netProbe.reasons]).toEqual([]);
    expect(['x64', 'arm64']).toContain(process.arch);
  });
});

const KEY_SPEC_PROCESS_KEYRING = -2;
const CLONE_NEWUSER = 0x10000000;
const CLONE_NEWNET = 0x40000000;
const SIGCHLD = 17;

/** each refused call, the arguments it is tried with, and whether from a user namespace of the probe's own */
const REFUSED: Array<{ name: SyscallName; args: Array<number | string>; userns?: boolean; errno?: number }> = [
  { name: 'keyctl', args: [0 /* KEYCTL_GET_KEYRING_ID */, KEY_SPEC_PROCESS_KEYRING, 1] },
  { name: 'add_key', args: ['s:user', 's:cellhost-probe', 's:x', 1, KEY_SPEC_PROCESS_KEYRING] },
  { name: 'request_key', args: ['s:user', 's:cellhost-none', 0, KEY_SPEC_PROCESS_KEYRING] },
  { name: 'bpf', args: [9999, 0, 0] },
  { name: 'perf_event_open', args: [0, 0, -1, -1, 0] },
  { name: 'userfaultfd', args: [1 /* UFFD_USER_MODE_ONLY */ | 4] },
  { name: 'io_uring_setup', args: [0, 0] },
  { name: 'kexec_load', args: [0, 0, 0, 0] },
  { name: 'kexec_file_load', args: [-1, -1, 0, 0, 0] },
  { name: 'init_module', args: [0, 0, 's:'] },
  { name: 'finit_module', args: [-1, 's:', 0] },
  { name: 'delete_module', args: ['s:cellhost-none', 0] },
  { name: 'mount', args: [1, 1, 1, 0, 0] },
  { name: 'umount2', args: ['s:/nonexistent', 0xffff] },
  { name: 'pivot_root', args: ['s:.', 's:.'], userns: true },
  { name: 'move_mount', args: [-1, 's:', -1, 's:', 0], userns: true },
  { name: 'open_tree', args: [-1, 's:', 0xffffffff] },
  { name: 'fsopen', args: ['s:cellhost-nofs', 0], userns: true },
  { name: 'fsconfig', args: [-1, 0, 0, 0, 0] },
  { name: 'fsmount', args: [-1, 0, 0], userns: true },
  { name: 'fspick', args: [-1, 's:', 0xffff], userns: true },
  { name: 'mount_setattr', args: [-1, 's:', 0xffffffff, 0, 0] },
  { name: 'ptrace', args: [0 /* PTRACE_TRACEME */] },
  { name: 'process_vm_readv', args: [1, 0, 0, 0, 0, 1] },
  { name: 'pidfd_getfd', args: [-1, 0, 0] },
  { name: 'personality', args: [0x0040000 /* ADDR_NO_RANDOMIZE */] },
  { name: 'unshare', args: [CLONE_NEWUSER] },
  { name: 'unshare', args: [CLONE_NEWNET], userns: true },
  { name: 'clone', args: [CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0] },
  { name: 'clone3', args: [0, 0], errno: ENOSYS },
  { name: 'setns', args: [-1, 0] },
  { name: 'settimeofday', args: [0, 1] },
  { name: 'clock_settime', args: [0, 0] },
  { name: 'get_mempolicy', args: [0, 0, 0, 0, 0] },
];

describe.skipIf(!ready)('an app cannot reach past its sandbox through the kernel', () => {
  let server: TestServer;
  let dataDir: string;
  const nrs = syscallNumbers(process.arch as 'x64' | 'arm64');

  const probe = async (p: string) => {
    const r = await server.app('sys', p);
    expect(r.status, `${p}: ${r.text.slice(0, 300)}`).toBe(200);
    return r.json;
  };
  const call = (name: SyscallName, args: Array<number | string>, userns = false) =>
    probe(`/call?nr=${nrs.get(name)}&args=${args.join(',')}&userns=${userns ? 1 : 0}`) as Promise<{ ret: number; errno: number; userns: boolean }>;

  beforeAll(async () => {
    // a data dir whose path the app must not learn (outside /tmp, so its absence is the sandbox's doing)
    dataDir = fs.mkdtempSync('/var/tmp/cellhost-hardening-');
    server = await startTestServer({ dataDir, ownsDataDir: true });
    const dep = await server.deploy('sys', path.join(FIXTURES, 'python-syscall-probe'), { runtime: 'python', startCommand: 'python3 app.py', idleTimeoutS: 60 });
    expect(dep.status, JSON.stringify(dep)).toBe('live');
  });

  afterAll(async () => {
    if (server) await server.close();
    else if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('nested user namespace is refused (`unshare -U -r true` fails)', async () => {
    const r = await probe('/run?argv=unshare,-U,-r,true');
    expect(r.code, r.output).not.toBe(0);
  });

  it('a seccomp filter is loaded', async () => {
    expect(await probe('/seccomp')).toContain('Seccomp:\t2');
  });

  it('/proc/1/cmdline shows nothing of the host', async () => {
    const argv = (await probe('/proc1')) as string[];
    const text = argv.join(' ');
    expect(text).not.toContain(dataDir);
    expect(text).not.toMatch(/images|\/run\/|--ro-bind|--setenv/);
  });

  it.each(REFUSED.map((c) => [`${c.name}(${c.args.join(', ')})${c.userns ? ' from a user namespace of its own' : ''}`, c] as const))('%s is denied', async (_label, c) => {
    const r = await call(c.name, c.args, c.userns);
    expect({ ret: r.ret, errno: r.errno }).toEqual({ ret: -1, errno: c.errno ?? EPERM });
  });

  it('a build cannot make a nested user namespace either, and runs under the filter', async () => {
    const dep = await server.deploy('sysbuild', path.join(FIXTURES, 'python-syscall-probe'), {
      runtime: 'python',
      startCommand: 'python3 app.py',
      // `set +e`: the build shell stops at the first failing command otherwise
      buildCommand: "set +e; unshare -U -r true; echo \"nested userns exit $?\"; grep '^Seccomp:' /proc/self/status; tr '\\0' ' ' < /proc/1/cmdline; echo",
    });
    expect(dep.status, JSON.stringify(dep)).toBe('live');
    const log = String((await server.api('GET', `/api/v1/deployments/${dep.id}/logs`)).body);
    expect(log).toMatch(/nested userns exit [1-9]/);
    expect(log).toMatch(/Seccomp:\s+2/);
    expect(log).not.toContain(dataDir);
  });

  it('what apps do every day still works: fork, threads, harmless personality and unshare calls', async () => {
    expect((await call('clone', [SIGCHLD, 0, 0, 0, 0])).ret).toBeGreaterThan(0);
    expect((await call('personality', [0xffffffff])).ret).toBeGreaterThanOrEqual(0);
    expect((await call('unshare', [0x400 /* CLONE_FILES */])).ret).toBe(0);
    expect(await probe(`/run?argv=python3,-c,${encodeURIComponent('import threading; t = threading.Thread(target=print); t.start(); t.join()')}`)).toEqual({ code: 0, output: '\n' });
    expect(await probe(`/run?argv=sh,-c,${encodeURIComponent('echo ok | cat')}`)).toEqual({ code: 0, output: 'ok\n' });
  });
});

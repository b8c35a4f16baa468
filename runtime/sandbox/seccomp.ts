// The seccomp filter every sandboxed process runs under, as the classic-BPF program bubblewrap
// loads from a file descriptor (`bwrap --seccomp FD`: an array of struct sock_filter, 8 bytes each).
//
// Modelled on the default profile container runtimes ship, written as a deny list: the calls
// below fail with EPERM (clone3 with ENOSYS, so libc falls back to clone, whose flags a filter
// can read). They are the kernel's surface an app has no use for and that kernel exploits lean
// on: keyrings, eBPF, perf events, userfaultfd, io_uring, module loading, kexec, every mount
// call, ptrace and its relatives (process_vm_*, kcmp, pidfd_getfd), personality changes other
// than the harmless ones, new namespaces (unshare and clone with a CLONE_NEW* flag, setns),
// clock and swap and quota administration, and the obsolete calls. Most of them already need a
// capability the app does not have; the filter keeps them closed when a kernel bug or a user
// namespace would hand one over, and shrinks the code an exploit can reach.
//
// Calls through another ABI (i386's int 0x80 on x86_64, arm32 on arm64) and x86_64's x32 calls
// are refused whole: the table only knows each architecture's native numbers, and a deny list
// checked against the wrong numbers would let everything through.
//
// The numbers are the kernel's (arch/x86/entry/syscalls/syscall_64.tbl, include/uapi/asm-generic/
// unistd.h for arm64); a unit test checks them against the host's headers when they are installed.

/** name → [x86_64 number, arm64 number]; null where the architecture has no such call */
const SYSCALLS = {
  // keyrings
  add_key: [248, 217],
  keyctl: [250, 219],
  request_key: [249, 218],
  // eBPF, perf, userfaultfd, io_uring
  bpf: [321, 280],
  perf_event_open: [298, 241],
  userfaultfd: [323, 282],
  io_uring_setup: [425, 425],
  io_uring_enter: [426, 426],
  io_uring_register: [427, 427],
  // kernel modules and kexec
  create_module: [174, null],
  init_module: [175, 105],
  finit_module: [313, 273],
  delete_module: [176, 106],
  get_kernel_syms: [177, null],
  query_module: [178, null],
  kexec_load: [246, 104],
  kexec_file_load: [320, 294],
  // mounts
  mount: [165, 40],
  umount2: [166, 39],
  pivot_root: [155, 41],
  move_mount: [429, 429],
  open_tree: [428, 428],
  fsopen: [430, 430],
  fsconfig: [431, 431],
  fsmount: [432, 432],
  fspick: [433, 433],
  mount_setattr: [442, 442],
  // other processes' memory and files
  ptrace: [101, 117],
  process_vm_readv: [310, 270],
  process_vm_writev: [311, 271],
  kcmp: [312, 272],
  pidfd_getfd: [438, 438],
  // namespaces (unshare and clone are filtered by their flags, clone3 answers ENOSYS)
  setns: [308, 268],
  unshare: [272, 97],
  clone: [56, 220],
  clone3: [435, 435],
  personality: [135, 92],
  // host administration
  acct: [163, 89],
  reboot: [169, 142],
  swapon: [167, 224],
  swapoff: [168, 225],
  syslog: [103, 116],
  quotactl: [179, 60],
  quotactl_fd: [443, 443],
  clock_settime: [227, 112],
  clock_adjtime: [305, 266],
  settimeofday: [164, 170],
  vhangup: [153, 58],
  iopl: [172, null],
  ioperm: [173, null],
  fanotify_init: [300, 262],
  name_to_handle_at: [303, 264],
  open_by_handle_at: [304, 265],
  // NUMA policy (needs CAP_SYS_NICE in containers)
  mbind: [237, 235],
  set_mempolicy: [238, 237],
  get_mempolicy: [239, 236],
  move_pages: [279, 239],
  // obsolete
  lookup_dcookie: [212, 18],
  nfsservctl: [180, 42],
  uselib: [134, null],
  ustat: [136, null],
  sysfs: [139, null],
  _sysctl: [156, null],
} as const satisfies Record<string, readonly [number, number | null]>;

export type SyscallName = keyof typeof SYSCALLS;
export type SeccompArch = 'x64' | 'arm64';

/** CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET (clone's low byte is the exit signal) */
const CLONE_NEW_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000;
/** unshare also takes CLONE_NEWTIME */
const UNSHARE_NEW_FLAGS = CLONE_NEW_FLAGS | 0x00000080;
/** personality(): PER_LINUX, PER_LINUX32, UNAME26, and 0xffffffff (read the current one) */
const HARMLESS_PERSONALITIES = [0x0, 0x8, 0x20000, 0xffffffff];

const EPERM = 1;
const ENOSYS = 38;

/** what the filter does with one call: refuse it, or look at its first argument */
type Rule =
  | { kind: 'errno'; errno: number }
  | { kind: 'deny-flags'; mask: number }
  | { kind: 'allow-values'; values: readonly number[] };

const RULES: Record<SyscallName, Rule> = Object.fromEntries(
  (Object.keys(SYSCALLS) as SyscallName[]).map((name): [SyscallName, Rule] => {
    if (name === 'clone3') return [name, { kind: 'errno', errno: ENOSYS }];
    if (name === 'clone') return [name, { kind: 'deny-flags', mask: CLONE_NEW_FLAGS }];
    if (name === 'unshare') return [name, { kind: 'deny-flags', mask: UNSHARE_NEW_FLAGS }];
    if (name === 'personality') return [name, { kind: 'allow-values', values: HARMLESS_PERSONALITIES }];
    return [name, { kind: 'errno', errno: EPERM }];
  }),
) as Record<SyscallName, Rule>;

const ARCHES: Record<SeccompArch, { audit: number; column: 0 | 1; x32: boolean }> = {
  x64: { audit: 0xc000003e, column: 0, x32: true },
  arm64: { audit: 0xc00000b7, column: 1, x32: false },
};

/** every call the filter touches and its number on `arch` (calls the architecture lacks are left out) */
export function syscallNumbers(arch: SeccompArch): Map<SyscallName, number> {
  const out = new Map<SyscallName, number>();
  for (const [name, nums] of Object.entries(SYSCALLS) as [SyscallName, readonly [number, number | null]][]) {
    const nr = nums[ARCHES[arch].column];
    if (nr !== null) out.set(name, nr);
  }
  return out;
}

// classic BPF, as seccomp runs it
export const BPF = {
  LD_W_ABS: 0x20,
  JMP_JA: 0x05,
  JMP_JEQ_K: 0x15,
  JMP_JGT_K: 0x25,
  JMP_JGE_K: 0x35,
  JMP_JSET_K: 0x45,
  RET_K: 0x06,
} as const;
export const SECCOMP_RET_ALLOW = 0x7fff0000;
export const SECCOMP_RET_ERRNO = 0x00050000;
/** offsets in struct seccomp_data: nr, arch, then six 64-bit args (low half first: little-endian) */
const OFF_NR = 0;
const OFF_ARCH = 4;
const OFF_ARG0_LOW = 16;

export interface BpfInsn {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

const insn = (code: number, k: number, jt = 0, jf = 0): BpfInsn => ({ code, jt, jf, k: k >>> 0 });
const ret = (value: number): BpfInsn => insn(BPF.RET_K, value);
const retErrno = (errno: number): BpfInsn => ret(SECCOMP_RET_ERRNO | errno);

/** what one call's rule does once its number matched; always ends in a return */
function ruleCode(rule: Rule): BpfInsn[] {
  if (rule.kind === 'errno') return [retErrno(rule.errno)];
  const load = insn(BPF.LD_W_ABS, OFF_ARG0_LOW);
  if (rule.kind === 'deny-flags') {
    // any of the flags set → EPERM, else allow
    return [load, insn(BPF.JMP_JSET_K, rule.mask, 0, 1), retErrno(EPERM), ret(SECCOMP_RET_ALLOW)];
  }
  // one of the values → allow (jump over the checks left and the EPERM), else EPERM
  const n = rule.values.length;
  return [load, ...rule.values.map((v, i) => insn(BPF.JMP_JEQ_K, v, n - i, 0)), retErrno(EPERM), ret(SECCOMP_RET_ALLOW)];
}

/**
 * A binary search over the sorted call numbers, so an allowed call (nearly every call an app
 * makes) costs a handful of comparisons rather than one per listed call. The accumulator holds
 * the call number throughout; every branch ends in a return.
 */
function searchCode(entries: ReadonlyArray<{ nr: number; rule: Rule }>): BpfInsn[] {
  if (entries.length <= 4) {
    const out: BpfInsn[] = [];
    for (const e of entries) {
      const body = ruleCode(e.rule);
      out.push(insn(BPF.JMP_JEQ_K, e.nr, 0, body.length), ...body);
    }
    out.push(ret(SECCOMP_RET_ALLOW));
    return out;
  }
  const mid = entries.length >> 1;
  const low = searchCode(entries.slice(0, mid));
  const high = searchCode(entries.slice(mid));
  if (low.length > 255) throw new Error(`seccomp: a branch of ${low.length} instructions is too long for a BPF jump`);
  // nr > the largest number on the low side → skip the low side
  return [insn(BPF.JMP_JGT_K, entries[mid - 1]!.nr, low.length, 0), ...low, ...high];
}

/** The filter for `arch`, as instructions (for tests) */
export function buildSeccompFilter(arch: SeccompArch): BpfInsn[] {
  const a = ARCHES[arch];
  const entries = [...syscallNumbers(arch)]
    .map(([name, nr]) => ({ nr, rule: RULES[name] }))
    .sort((x, y) => x.nr - y.nr);
  return [
    insn(BPF.LD_W_ABS, OFF_ARCH),
    insn(BPF.JMP_JEQ_K, a.audit, 1, 0),
    retErrno(EPERM),
    insn(BPF.LD_W_ABS, OFF_NR),
    // x32: the same numbers with bit 30 set
    ...(a.x32 ? [insn(BPF.JMP_JGE_K, 0x40000000, 0, 1), retErrno(EPERM)] : []),
    ...searchCode(entries),
  ];
}

/** struct sock_filter[] in the host's byte order (little-endian on both architectures) */
export function encodeFilter(program: readonly BpfInsn[]): Buffer {
  const buf = Buffer.alloc(program.length * 8);
  program.forEach((p, i) => {
    buf.writeUInt16LE(p.code, i * 8);
    buf.writeUInt8(p.jt, i * 8 + 2);
    buf.writeUInt8(p.jf, i * 8 + 3);
    buf.writeUInt32LE(p.k, i * 8 + 4);
  });
  return buf;
}

/** the encoded filter for this host, or null on an architecture the table does not cover */
export function seccompProgramFor(arch: string = process.arch): Buffer | null {
  return arch === 'x64' || arch === 'arm64' ? encodeFilter(buildSeccompFilter(arch)) : null;
}

// The seccomp program, run through a small classic-BPF interpreter: what each call gets on each
// architecture, and the call numbers checked against the host's kernel headers.
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { BPF, buildSeccompFilter, encodeFilter, SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO, seccompProgramFor, syscallNumbers, type BpfInsn, type SeccompArch } from '../../../runtime/sandbox/seccomp.ts';

const AUDIT = { x64: 0xc000003e, arm64: 0xc00000b7, i386: 0x40000003 };
const EPERM = SECCOMP_RET_ERRNO | 1;
const ENOSYS = SECCOMP_RET_ERRNO | 38;

/** runs the program on one struct seccomp_data; args are the low 32 bits of each argument */
function run(program: readonly BpfInsn[], data: { nr: number; arch: number; args?: number[] }): number {
  const word = (off: number): number => {
    if (off === 0) return data.nr >>> 0;
    if (off === 4) return data.arch >>> 0;
    if (off >= 16 && (off - 16) % 8 === 0) return (data.args?.[(off - 16) / 8] ?? 0) >>> 0;
    if (off >= 16 && (off - 16) % 8 === 4) return 0;
    throw new Error(`load at ${off}`);
  };
  let a = 0;
  for (let pc = 0, steps = 0; pc < program.length; pc++, steps++) {
    if (steps > program.length) throw new Error('loop');
    const p = program[pc]!;
    switch (p.code) {
      case BPF.LD_W_ABS:
        a = word(p.k);
        break;
      case BPF.JMP_JA:
        pc += p.k;
        break;
      case BPF.JMP_JEQ_K:
        pc += a === p.k ? p.jt : p.jf;
        break;
      case BPF.JMP_JGT_K:
        pc += a > p.k ? p.jt : p.jf;
        break;
      case BPF.JMP_JGE_K:
        pc += a >= p.k ? p.jt : p.jf;
        break;
      case BPF.JMP_JSET_K:
        pc += (a & p.k) !== 0 ? p.jt : p.jf;
        break;
      case BPF.RET_K:
        return p.k;
      default:
        throw new Error(`opcode ${p.code}`);
    }
  }
  throw new Error('fell off the end');
}

const ARCHES: SeccompArch[] = ['x64', 'arm64'];
const CLONE_NEWUSER = 0x10000000;
const CLONE_NEWNET = 0x40000000;
const CLONE_NEWTIME = 0x80;
const SIGCHLD = 17;
// what glibc and the Go runtime pass for threads and fork/vfork
const THREAD_FLAGS = 0x003d0f00;
const VFORK_FLAGS = 0x00004100 | SIGCHLD;

describe.each(ARCHES)('seccomp filter (%s)', (arch) => {
  const program = buildSeccompFilter(arch);
  const nrs = syscallNumbers(arch);
  const call = (name: string, args: number[] = []) => run(program, { nr: nrs.get(name as never)!, arch: AUDIT[arch], args });

  it('fits in a program the kernel accepts', () => {
    expect(program.length).toBeLessThan(4096);
    expect(encodeFilter(program).length).toBe(program.length * 8);
  });

  it('refuses every listed call with EPERM', () => {
    const plain = [...nrs.keys()].filter((n) => !['clone', 'clone3', 'unshare', 'personality'].includes(n));
    expect(plain.length).toBeGreaterThan(40);
    for (const name of plain) expect(call(name), name).toBe(EPERM);
  });

  it('lets every other call number through', () => {
    const listed = new Set(nrs.values());
    for (let nr = 0; nr < 600; nr++) {
      if (listed.has(nr)) continue;
      expect(run(program, { nr, arch: AUDIT[arch] }), `call ${nr}`).toBe(SECCOMP_RET_ALLOW);
    }
  });

  it('answers clone3 with ENOSYS so libc falls back to clone', () => {
    expect(call('clone3')).toBe(ENOSYS);
  });

  it('refuses clone and unshare only with a namespace flag', () => {
    expect(call('clone', [THREAD_FLAGS])).toBe(SECCOMP_RET_ALLOW);
    expect(call('clone', [VFORK_FLAGS])).toBe(SECCOMP_RET_ALLOW);
    expect(call('clone', [SIGCHLD])).toBe(SECCOMP_RET_ALLOW);
    expect(call('clone', [CLONE_NEWUSER | SIGCHLD])).toBe(EPERM);
    expect(call('clone', [CLONE_NEWNET | SIGCHLD])).toBe(EPERM);
    expect(call('unshare', [0x00000400 /* CLONE_FILES */])).toBe(SECCOMP_RET_ALLOW);
    expect(call('unshare', [CLONE_NEWUSER])).toBe(EPERM);
    expect(call('unshare', [CLONE_NEWTIME])).toBe(EPERM);
    expect(call('unshare', [0x00020000 /* CLONE_NEWNS */])).toBe(EPERM);
  });

  it('allows only the harmless personalities', () => {
    for (const p of [0, 8, 0x20000, 0xffffffff]) expect(call('personality', [p]), `personality ${p}`).toBe(SECCOMP_RET_ALLOW);
    for (const p of [0x0040000 /* ADDR_NO_RANDOMIZE */, 0x0400000 /* READ_IMPLIES_EXEC */, 6]) expect(call('personality', [p]), `personality ${p}`).toBe(EPERM);
  });

  it('refuses every call made through another ABI', () => {
    expect(run(program, { nr: 0, arch: AUDIT.i386 })).toBe(EPERM);
    expect(run(program, { nr: 3, arch: arch === 'x64' ? AUDIT.arm64 : AUDIT.x64 })).toBe(EPERM);
  });
});

describe('seccomp filter (x64 only)', () => {
  it('refuses x32 calls, whose numbers carry bit 30', () => {
    expect(run(buildSeccompFilter('x64'), { nr: 0x40000000 + 0 /* read */, arch: AUDIT.x64 })).toBe(EPERM);
  });

  it('is built for the host architecture and for nothing unknown', () => {
    expect(seccompProgramFor('x64')).toEqual(encodeFilter(buildSeccompFilter('x64')));
    expect(seccompProgramFor('riscv64')).toBeNull();
  });
});

/** __NR_name values from a header, if the header is installed */
function headerNumbers(file: string): Map<string, number> | null {
  if (!fs.existsSync(file)) return null;
  const out = new Map<string, number>();
  for (const m of fs.readFileSync(file, 'utf8').matchAll(/^#define __NR(?:3264)?_(\w+)\s+(\d+)\s*$/gm)) out.set(m[1]!, Number(m[2]));
  return out;
}

describe('call numbers against the kernel headers', () => {
  it.each([
    ['x64', '/usr/include/x86_64-linux-gnu/asm/unistd_64.h'],
    ['arm64', '/usr/include/asm-generic/unistd.h'],
  ] as const)('%s matches %s', (arch, file) => {
    const header = headerNumbers(file);
    if (!header) {
      // linux-libc-dev is part of the toolchain CI has; a laptop without it checks nothing here
      expect(process.env.CI === 'true' && arch === 'x64', `${file} is missing`).toBe(false);
      return;
    }
    for (const [name, nr] of syscallNumbers(arch)) expect(header.get(name), name).toBe(nr);
  });
});

// A service's block of host ids as the ids 0..65535 of a user namespace: how system-layer builds
// become root without being root on the host, and how the host's own files look to them.
//
// Two kernel features, both driven as root:
// - a user namespace whose uid_map/gid_map say "0 <first> 65536": the process inside is uid 0
//   with every capability over what the namespace owns, and host uid <first>+N outside. Writing a
//   map of more than one's own id needs CAP_SETUID/CAP_SETGID in the parent namespace, so the
//   platform (root) writes it for a process that has just unshared and waits. util-linux 2.38's
//   `unshare --map-users` cannot: it goes through newuidmap, which grants only what /etc/subuid
//   lists for the caller;
// - idmapped mounts (Linux 5.12+, overlayfs on top of them 5.19+): a read-only view of a host tree
//   in which host id N shows as <first>+N, so inside the namespace the host's root-owned files are
//   root's and dpkg can replace them (in the overlay's upper layer, never in the host's tree).
//
// Node cannot call unshare(2), open_tree(2), mount_setattr(2) or move_mount(2), and no host tool of
// Debian 12 does what is needed, so each is a few lines of perl run with `perl -e` (perl-base is
// Essential on Debian and Ubuntu). The scripts take numbers and paths as arguments, nothing secret.
import { CellhostError } from '../core/errors.ts';
import { runCommand } from './run-command.ts';

/** host ids [first, first + count) seen as [0, count) */
export interface IdBlock {
  first: number;
  count: number;
}

/** system call numbers the scripts use, per architecture (x86_64's table, and arm64's generic one) */
const SYSCALLS: Record<'x64' | 'arm64', Record<string, number>> = {
  x64: { unshare: 272, setgroups: 116, setresuid: 117, setresgid: 119, open_tree: 428, move_mount: 429, mount_setattr: 442 },
  arm64: { unshare: 97, setgroups: 159, setresuid: 147, setresgid: 149, open_tree: 428, move_mount: 429, mount_setattr: 442 },
};

/** the numbers for this host, or null on an architecture the table lacks */
function syscallsFor(arch: string = process.arch): Record<string, number> | null {
  return arch === 'x64' || arch === 'arm64' ? SYSCALLS[arch] : null;
}

export function idMappingSupported(arch: string = process.arch): boolean {
  return syscallsFor(arch) !== null;
}

function numbers(): Record<string, number> {
  const n = syscallsFor();
  if (!n) throw new CellhostError('ERR_SANDBOX_SETUP', `system layers are not supported on the ${process.arch} architecture`);
  return n;
}

/** one line per argument the scripts are given, checked before any of them runs */
function assertBlock(block: IdBlock): void {
  // a block starting at 0 would map the host's root
  if (!Number.isInteger(block.first) || !Number.isInteger(block.count) || block.first < 65_536 || block.count < 1 || block.first + block.count > 2 ** 31) {
    throw new CellhostError('ERR_SANDBOX_SETUP', `id block ${block.first}+${block.count} is not a block of unprivileged ids`);
  }
}

const PERL_SYS = `sub sys { my ($n, @a) = @_; my $r = syscall($n, @a); die "cellhost: system call $n failed: $!\\n" if $r < 0; return $r }`;

/**
 * argv that runs `argv` as uid 0 of a new user namespace mapping `block`: the process unshares,
 * a forked child (still root on the host) writes the maps, then the process takes uid/gid 0 and
 * no supplementary groups and execs. The fds it was given (bwrap's options on 3 and 4) stay open.
 */
export function enterMappedArgv(block: IdBlock, argv: readonly string[]): string[] {
  assertBlock(block);
  const n = numbers();
  const script = [
    'use strict; use warnings;',
    PERL_SYS,
    'my ($first, $count, @cmd) = @ARGV;',
    'pipe(my $r1, my $w1) or die; pipe(my $r2, my $w2) or die;',
    'my $parent = $$; my $pid = fork() // die "cellhost: fork: $!\\n";',
    'if ($pid == 0) { close $w1; close $r2; sysread($r1, my $x, 1) == 1 or exit 1;',
    '  for my $f ("uid_map", "gid_map") { open(my $fh, ">", "/proc/$parent/$f") or die "cellhost: $f: $!\\n"; print $fh "0 $first $count\\n"; close $fh or die "cellhost: $f: $!\\n"; }',
    '  syswrite($w2, "y"); exit 0; }',
    'close $r1; close $w2;',
    `sys(${n.unshare}, 0x10000000);`,
    'syswrite($w1, "u"); close $w1;',
    'sysread($r2, my $x, 1) == 1 or die "cellhost: the id map was not written\\n"; waitpid($pid, 0);',
    `sys(${n.setgroups}, 0, 0); sys(${n.setresgid}, 0, 0, 0); sys(${n.setresuid}, 0, 0, 0);`,
    'exec { $cmd[0] } @cmd or die "cellhost: exec $cmd[0]: $!\\n";',
  ].join('\n');
  return ['perl', '-e', script, '--', String(block.first), String(block.count), ...argv];
}

/**
 * Mounts each `src` read-only (nosuid, nodev) at `dest`, idmapped by `block`: host id N shows as
 * first + N (ids at or past `count` show as the overflow id and cannot be written). Not
 * recursive: mounts below `src` are not part of the view. `dest` must exist.
 */
export async function mountIdmapped(block: IdBlock, pairs: ReadonlyArray<{ src: string; dest: string }>): Promise<void> {
  assertBlock(block);
  const n = numbers();
  // MOUNT_ATTR_RDONLY | NOSUID | NODEV | IDMAP; OPEN_TREE_CLONE | O_CLOEXEC; AT_EMPTY_PATH; MOVE_MOUNT_F_EMPTY_PATH
  const script = [
    'use strict; use warnings;',
    PERL_SYS,
    'my ($first, $count, @pairs) = @ARGV;',
    'pipe(my $r1, my $w1) or die; pipe(my $r2, my $w2) or die;',
    'my $pid = fork() // die "cellhost: fork: $!\\n";',
    `if ($pid == 0) { close $w1; close $r2; sys(${n.unshare}, 0x10000000); syswrite($w2, "u"); close $w2; sysread($r1, my $x, 1); exit 0; }`,
    'close $r1; close $w2;',
    'sysread($r2, my $x, 1) == 1 or die "cellhost: no user namespace for the id map\\n";',
    'for my $f ("uid_map", "gid_map") { open(my $fh, ">", "/proc/$pid/$f") or die "cellhost: $f: $!\\n"; print $fh "0 $first $count\\n"; close $fh or die "cellhost: $f: $!\\n"; }',
    'open(my $ns, "<", "/proc/$pid/ns/user") or die "cellhost: user namespace: $!\\n";',
    'while (@pairs) { my ($src, $dest) = splice(@pairs, 0, 2);',
    `  my $fd = sys(${n.open_tree}, -100, $src, 1 | 0x80000);`,
    '  my $attr = pack("QQQQ", 0x1 | 0x2 | 0x4 | 0x100000, 0, 0, fileno($ns));',
    `  sys(${n.mount_setattr}, $fd, "", 0x1000, $attr, length($attr));`,
    `  sys(${n.move_mount}, $fd, "", -100, $dest, 0x4);`,
    '  POSIX::close($fd); }',
    'syswrite($w1, "x"); waitpid($pid, 0);',
  ].join('\n');
  const args = ['-MPOSIX', '-e', script, '--', String(block.first), String(block.count), ...pairs.flatMap((p) => [p.src, p.dest])];
  const r = await runCommand('perl', args, { timeoutMs: 15_000 });
  if (r.spawnError || r.code !== 0) {
    const why = r.spawnError ? `perl could not be started (${r.spawnError.message})` : r.stderr.trim().split('\n').slice(-2).join('; ') || `exit ${r.code ?? r.signal}`;
    throw new CellhostError('ERR_SANDBOX_SETUP', `idmapped mount of ${pairs.map((p) => p.src).join(', ')} failed: ${why}`);
  }
}

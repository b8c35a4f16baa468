// Host paths the sandbox must see but its uid cannot reach (a toolchain under /root, which is 0700).
//
// bubblewrap runs as the service's uid and resolves every bind source with realpath() as that
// uid, so `--ro-bind /root/.rustup/toolchains/x ...` fails with EACCES, and so does
// `--ro-bind-fd` (bwrap 0.8 realpath()s /proc/self/fd/N too). Loosening /root's mode would change
// the host's policy for every local user. Instead the platform, as root, bind-mounts such a path
// read-only once under a stage dir that others may traverse, and the sandbox binds the stage
// path back at the original path (`{ src: staged, dest: original }`), so shebangs and PATH entries
// that name the original still work. Inside the sandbox, /root then holds only that toolchain.
//
// The stage dir and its parents must be searchable by others (e.g. /run/cellhost/binds, 0755).
// Mounts live until close(); a crash leaves them, and reclaimLeftovers() unmounts them at the next start.
import { createHash } from 'node:crypto';
import { chmod, lstat, mkdir, readFile, readdir, realpath, rmdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { CellhostError, describeError } from '../core/errors.ts';
import { silentLogger, type Logger } from '../core/log.ts';
import { runChecked, runCommand } from './run-command.ts';

export interface BindStage {
  /**
   * A path the sandbox uid can resolve that shows `hostPath` (read-only): `hostPath` itself when
   * every directory above it is searchable by others, else a read-only bind mount in the stage.
   */
  expose(hostPath: string): Promise<string>;
  /** unmounts everything this stage mounted and removes its mount points */
  close(): Promise<void>;
  /** unmounts whatever a previous run left under the stage dir */
  reclaimLeftovers(): Promise<void>;
}

/** true when a process that is neither owner nor in the group can walk to `p` (o+x on every ancestor) */
export async function isReachableByOthers(p: string): Promise<boolean> {
  const abs = path.resolve(p);
  let dir = path.dirname(abs);
  for (;;) {
    const st = await stat(dir);
    if (!(st.mode & 0o001)) return false;
    if (dir === '/') return true;
    dir = path.dirname(dir);
  }
}

/** mount points (unescaped) listed in a mountinfo text that lie strictly under `dir` */
export function parseMountPointsUnder(mountinfo: string, dir: string): string[] {
  const prefix = dir.endsWith('/') ? dir : dir + '/';
  const out: string[] = [];
  for (const line of mountinfo.split('\n')) {
    const field = line.split(' ')[4];
    if (!field) continue;
    const mp = field.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    if (mp.startsWith(prefix)) out.push(mp);
  }
  // deepest first, so nested mounts come off before their parents
  return out.sort((a, b) => b.length - a.length);
}

export function createBindStage(opts: { dir: string; log?: Logger }): BindStage {
  const dir = path.resolve(opts.dir);
  const log = opts.log ?? silentLogger;
  const mounted = new Map<string, string>(); // host realpath → stage path
  const pending = new Map<string, Promise<string>>();

  const unmountUnder = async (): Promise<void> => {
    const info = await readFile('/proc/self/mountinfo', 'utf8');
    for (const mp of parseMountPointsUnder(info, dir)) {
      const r = await runCommand('umount', ['-l', mp], { timeoutMs: 10_000 });
      if (r.code !== 0) log.warn('bind_stage.umount_failed', { path: mp, stderr: r.stderr.trim() });
    }
    const names = await readdir(dir).catch(() => [] as string[]);
    for (const name of names) {
      // only empty mount points are removed: rmdir refuses anything that still holds data
      await rmdir(path.join(dir, name)).catch((err: unknown) => {
        log.warn('bind_stage.rmdir_failed', { path: path.join(dir, name), error: describeError(err) });
      });
    }
  };

  const mountOne = async (real: string): Promise<string> => {
    await mkdir(dir, { recursive: true, mode: 0o755 });
    // explicit: the platform runs with umask 077, and the sandbox uids must walk through
    await chmod(dir, 0o755);
    if (!(await isReachableByOthers(path.join(dir, 'x')))) {
      throw new CellhostError('ERR_SANDBOX_SETUP', `bind stage ${dir} is not searchable by others: sandboxes could not use it`);
    }
    const hash = createHash('sha256').update(real).digest('hex').slice(0, 12);
    const target = path.join(dir, `${path.basename(real).replace(/[^A-Za-z0-9._-]/g, '_')}-${hash}`);
    const info = await readFile('/proc/self/mountinfo', 'utf8');
    if (!parseMountPointsUnder(info, dir).includes(target)) {
      const isDir = (await lstat(real)).isDirectory();
      if (isDir) await mkdir(target, { recursive: true, mode: 0o755 });
      else throw new CellhostError('ERR_SANDBOX_SETUP', `only directories can be staged, not ${real}`);
      // util-linux turns `--bind -o ro` into bind + read-only remount
      await runChecked('ERR_SANDBOX_SETUP', 'mount', ['--bind', '-o', 'ro', real, target], { timeoutMs: 10_000 });
      log.info('bind_stage.mounted', { source: real, path: target });
    }
    mounted.set(real, target);
    return target;
  };

  return {
    async expose(hostPath) {
      const real = await realpath(hostPath);
      if (await isReachableByOthers(real)) return real;
      const known = mounted.get(real);
      if (known) return known;
      let p = pending.get(real);
      if (!p) {
        p = mountOne(real).finally(() => pending.delete(real));
        pending.set(real, p);
      }
      return p;
    },
    async close() {
      mounted.clear();
      await unmountUnder();
    },
    async reclaimLeftovers() {
      await unmountUnder();
    },
  };
}

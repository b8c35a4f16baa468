// A loopback OCI world for the export tests: a registry (Debian's docker-registry, the CNCF
// distribution registry) with a self-signed certificate the tools are pointed at per command,
// base images built here from this host's own binaries (nothing is pulled from the internet), and
// podman with its storage, run state and cgroups in places the test owns and removes.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { findBinary } from '../../builder/runtimes/index.ts';
import { freePort } from '../../runtime/instances/launcher.ts';
import { runCommand, type CommandResult } from '../../runtime/sandbox/run-command.ts';
import { isAlive, tempDir, waitFor } from './server.ts';

export const OCI_TOOLS = [
  { bin: 'docker-registry', pkg: 'docker-registry' },
  { bin: 'skopeo', pkg: 'skopeo' },
  { bin: 'umoci', pkg: 'umoci' },
  { bin: 'podman', pkg: 'podman' },
  { bin: 'runc', pkg: 'runc' },
  { bin: 'openssl', pkg: 'openssl' },
] as const;

export function missingOciTools(): string[] {
  return OCI_TOOLS.filter((t) => !findBinary(t.bin)).map((t) => t.pkg);
}

async function checked(file: string, args: string[], opts: { env?: Record<string, string> } = {}): Promise<string> {
  const r = await runCommand(file, args, { env: opts.env, timeoutMs: 300_000 });
  if (r.code !== 0) throw new Error(`${file} ${args.join(' ')} failed (${r.code ?? r.signal}): ${r.stderr || r.spawnError?.message}`);
  return r.stdout;
}

export interface LocalRegistry {
  /** 127.0.0.1:PORT */
  host: string;
  /** holds ca.crt: pass as skopeo's --cert-dir / podman's --cert-dir */
  certDir: string;
  /** SIGKILL, returning once the process is gone: from a synchronous callback, the next request finds no registry */
  killNow(): void;
  stop(): Promise<void>;
}

/** a self-signed certificate for 127.0.0.1, and a cert dir that trusts it */
function makeCertificate(dir: string): { cert: string; key: string; certDir: string } {
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  const certDir = path.join(dir, 'certs');
  fs.mkdirSync(certDir);
  fs.copyFileSync(cert, path.join(certDir, 'ca.crt'));
  return { cert, key, certDir };
}

/** `readonly`: the registry serves what it has and refuses every push */
export async function startRegistry(opts: { readonly?: boolean } = {}): Promise<LocalRegistry> {
  const dir = tempDir('cellhost-registry-');
  const { cert, key, certDir } = makeCertificate(dir);
  const port = await freePort();
  const config = path.join(dir, 'config.yml');
  fs.writeFileSync(
    config,
    [
      'version: 0.1',
      'log:',
      '  level: error',
      '  accesslog:',
      '    disabled: true',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${path.join(dir, 'store')}`,
      ...(opts.readonly ? ['  maintenance:', '    readonly:', '      enabled: true'] : []),
      'http:',
      `  addr: 127.0.0.1:${port}`,
      '  secret: cellhost-test',
      '  tls:',
      `    certificate: ${cert}`,
      `    key: ${key}`,
    ].join('\n') + '\n',
  );
  const child: ChildProcess = spawn('docker-registry', ['serve', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-4000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(
      () =>
        new Promise<boolean>((resolve) => {
          if (child.exitCode !== null) throw new Error(`docker-registry exited: ${stderr}`);
          const s = net.connect(port, '127.0.0.1', () => {
            s.destroy();
            resolve(true);
          });
          s.on('error', () => resolve(false));
        }),
      { timeoutMs: 15_000, what: 'the registry to listen' },
    );
  } catch (err) {
    await stop();
    throw err;
  }
  const killNow = () => {
    child.kill('SIGKILL');
    const deadline = Date.now() + 5000;
    while (isAlive(child.pid!) && Date.now() < deadline) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
    if (isAlive(child.pid!)) throw new Error('the registry outlived SIGKILL for 5 s');
  };
  return { host: `127.0.0.1:${port}`, certDir, killNow, stop };
}

/** files a binary needs: itself and what ldd lists */
function withLibraries(bins: string[]): string[] {
  const files = new Set<string>();
  for (const bin of bins) {
    files.add(bin);
    const out = execFileSync('ldd', [bin], { encoding: 'utf8' });
    for (const m of out.matchAll(/(\/[^\s)]+)/g)) files.add(m[1]!);
  }
  return [...files];
}

function copyInto(rootfs: string, file: string): void {
  const dest = path.join(rootfs, file);
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  fs.cpSync(file, dest, { dereference: true, recursive: true });
}

/**
 * A base image made of this host's own binaries, pushed to `registry` as base/KIND:1.
 * node: node and bash; python: Debian's python3 with its standard library and bash; shell: bash
 * (enough for a Go binary, which needs only libc).
 */
export async function pushBaseImage(registry: LocalRegistry, kind: 'node' | 'python' | 'shell'): Promise<string> {
  const dir = tempDir(`cellhost-base-${kind}-`);
  try {
    const rootfs = path.join(dir, 'rootfs');
    const bins = ['/bin/bash'];
    if (kind === 'node') bins.push(fs.realpathSync(findBinary('node')!));
    if (kind === 'python') {
      const stdlib = path.join('/usr/lib', path.basename(fs.realpathSync('/usr/bin/python3')));
      bins.push(fs.realpathSync('/usr/bin/python3'));
      copyInto(rootfs, stdlib);
      const dynload = path.join(stdlib, 'lib-dynload');
      bins.push(...fs.readdirSync(dynload).filter((f) => f.endsWith('.so')).map((f) => path.join(dynload, f)));
    }
    for (const f of withLibraries(bins)) copyInto(rootfs, f);
    // the interpreter where Debian (and so a venv built here) has it
    if (kind === 'python') fs.copyFileSync('/usr/bin/python3', path.join(rootfs, 'usr/bin/python3'));
    const layout = path.join(dir, 'layout');
    await checked('umoci', ['init', `--layout=${layout}`]);
    await checked('umoci', ['new', `--image=${layout}:base`]);
    await checked('umoci', ['insert', `--image=${layout}:base`, rootfs, '/']);
    const ref = `${registry.host}/base/${kind}:1`;
    await checked('skopeo', ['copy', '--quiet', '--dest-cert-dir', registry.certDir, `oci:${layout}:base`, `docker://${ref}`]);
    return ref;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** the hard limits of this process: podman's default ulimits are above them, and raising one needs CAP_SYS_RESOURCE */
function hardLimit(name: string): string {
  const line = fs.readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith(name));
  return line?.trim().split(/\s{2,}/)[2] ?? 'unlimited';
}

export interface Podman {
  run(args: string[]): Promise<CommandResult>;
  /** removes every container and image, the storage, and the cgroups podman made */
  close(): Promise<void>;
  /** ulimit flags within this process's hard limits */
  ulimits: string[];
  cgroupParent: string;
}

/**
 * Rootful podman with everything in a temp dir: vfs storage (no overlay mounts), cgroupfs under
 * a parent named for this test (runc: crun 1.8 refuses this host's hybrid cgroup layout), events
 * in a file.
 */
export function createPodman(): Podman {
  const dir = tempDir('cellhost-podman-');
  const cgroupParent = `cellhost-test-podman-${process.pid}`;
  const base = [
    `--root=${dir}/root`,
    `--runroot=${dir}/run`,
    `--tmpdir=${dir}/tmp`,
    '--storage-driver=vfs',
    '--cgroup-manager=cgroupfs',
    '--runtime=runc',
    '--events-backend=file',
  ];
  // runc was refused even a limit equal to the hard one here: stay well below it
  const limit = (n: string) => String(n === 'unlimited' ? 4096 : Math.min(4096, Math.floor(Number(n) / 2)));
  const nofile = limit(hardLimit('Max open files'));
  const nproc = limit(hardLimit('Max processes'));
  return {
    cgroupParent: `/${cgroupParent}`,
    ulimits: [`--ulimit=nofile=${nofile}:${nofile}`, `--ulimit=nproc=${nproc}:${nproc}`],
    run: (args) => runCommand('podman', [...base, ...args], { timeoutMs: 300_000 }),
    async close() {
      await runCommand('podman', [...base, 'rm', '--all', '--force', '--time=0'], { timeoutMs: 120_000 });
      await runCommand('podman', [...base, 'rmi', '--all', '--force'], { timeoutMs: 120_000 });
      for (const controller of fs.readdirSync('/sys/fs/cgroup')) {
        const parent = path.join('/sys/fs/cgroup', controller, cgroupParent);
        if (!fs.existsSync(parent)) continue;
        for (const e of fs.readdirSync(parent, { withFileTypes: true })) if (e.isDirectory()) fs.rmdirSync(path.join(parent, e.name));
        fs.rmdirSync(parent);
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

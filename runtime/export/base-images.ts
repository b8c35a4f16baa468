// The base image each runtime's services go onto. The default matches what the app was built
// and runs with here: the host's Debian release and the host toolchain's version, because the
// /app tree carries what that toolchain produced (node_modules with native addons, a venv for
// this Python, binaries linked against this glibc).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import type { RuntimeName } from '../core/names.ts';
import { findToolchain } from '../sandbox/toolchains.ts';

export interface HostVersions {
  /** Debian codename (bookworm) */
  debian: string;
  node?: string;
  python?: string;
}

export interface BaseChoice {
  ref: string;
  /** links the app layer adds for this base (see BaseImage.links) */
  links: Record<string, string>;
}

/** The official images' names for a runtime on this host's Debian release and toolchain version. */
export function defaultBaseImage(runtime: RuntimeName, host: HostVersions): BaseChoice {
  switch (runtime) {
    case 'node':
      return { ref: `docker.io/library/node:${host.node?.split('.')[0] ?? 'lts'}-${host.debian}-slim`, links: {} };
    case 'python':
      // the build's venv points at Debian's /usr/bin/python3; the official image installs Python
      // under /usr/local, so the same interpreter is linked where the venv looks for it
      return {
        ref: `docker.io/library/python:${host.python?.split('.').slice(0, 2).join('.') ?? '3'}-slim-${host.debian}`,
        links: { '/usr/bin/python3': '/usr/local/bin/python3' },
      };
    case 'go':
    case 'rust':
      // the binary was linked on this host: the same Debian release has the same glibc (and bash
      // for the start command)
      return { ref: `docker.io/library/debian:${host.debian}-slim`, links: {} };
  }
}

function ask(file: string | undefined, args: string[]): string | undefined {
  if (!file) return undefined;
  try {
    return execFileSync(file, args, { encoding: 'utf8', timeout: 15_000, stdio: ['ignore', 'pipe', 'ignore'] }).trim() || undefined;
  } catch {
    return undefined;
  }
}

/** Reads the host's Debian codename and, for the runtimes asked, the toolchain's version. */
export function readHostVersions(runtimes: readonly RuntimeName[]): HostVersions {
  let debian = 'bookworm';
  try {
    debian = /^VERSION_CODENAME=(\w+)/m.exec(fs.readFileSync('/etc/os-release', 'utf8'))?.[1] ?? debian;
  } catch {
    // no os-release: assume the release cellhost is built for
  }
  return {
    debian,
    node: runtimes.includes('node') ? ask(findToolchain('node').binary, ['-p', 'process.versions.node']) : undefined,
    python: runtimes.includes('python') ? ask(findToolchain('python').binary, ['-c', 'import sys; print("%d.%d" % sys.version_info[:2])']) : undefined,
  };
}

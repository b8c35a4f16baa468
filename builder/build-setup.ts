// What the platform adds to every build, worked out per build: CELLHOST_BUILD_ENV's variables,
// CELLHOST_BUILD_BINDS' dirs and, unless CELLHOST_BUILD_HOST_CONFIG=0, the host's own
// package-manager configuration with the local dirs it names. The build log says what was
// passed (names, never values) and what could not be.
import fs from 'node:fs/promises';
import type { HostConfigHome } from '../runtime/core/config.ts';
import { describeError } from '../runtime/core/errors.ts';
import { minimalDirs, readHostBuildConfig, unreachableUrls, urlsIn, type BuildConfigFile } from './host-config.ts';

export interface PlatformBuildSetup {
  /** variables below the service's own (a service may set its own PIP_INDEX_URL) */
  env: Record<string, string>;
  /** host dirs bound read-only at the same path */
  binds: string[];
  /** the host's configuration files, copied into the build */
  files: BuildConfigFile[];
  /** for the build log: what was passed */
  notes: string[];
  /** for the build log: what was left out, or will not work, and what to do */
  warnings: string[];
}

export interface BuildSetupOptions {
  /** CELLHOST_BUILD_ENV, resolved */
  env: Readonly<Record<string, string>>;
  /** CELLHOST_BUILD_BINDS */
  binds: readonly string[];
  /** CELLHOST_BUILD_HOST_CONFIG: where to read the host's configuration, or false */
  hostConfig: HostConfigHome | false;
  /** dirs a bind must never reach, whatever links lead there (the data dir, the host run dir) */
  forbidden: readonly string[];
  /** with the egress firewall: the ranges it drops and the ones CELLHOST_EGRESS_ALLOW opens */
  egress?: { blocked: readonly string[]; allowed: readonly string[] };
}

const within = (p: string, dir: string) => p === dir || p.startsWith(dir.endsWith('/') ? dir : dir + '/');

export async function resolveBuildSetup(opts: BuildSetupOptions): Promise<PlatformBuildSetup> {
  const notes: string[] = [];
  const warnings: string[] = [];
  let files: BuildConfigFile[] = [];
  let named: string[] = [];
  let urls: string[] = urlsIn(Object.values(opts.env));
  if (opts.hostConfig) {
    try {
      const host = await readHostBuildConfig(opts.hostConfig);
      files = host.files;
      named = host.paths;
      urls = [...urls, ...host.urls];
    } catch (err) {
      warnings.push(`the host's package-manager configuration could not be read: ${describeError(err)}`);
    }
  }

  // a path given, or named by a configuration, is bound only where it really is, and never when a
  // link leads it into the platform's own dirs
  const binds: string[] = [];
  for (const [p, from] of [...opts.binds.map((b) => [b, 'CELLHOST_BUILD_BINDS'] as const), ...named.map((b) => [b, 'the host configuration'] as const)]) {
    const real = await fs.realpath(p).catch(() => null);
    if (!real) {
      warnings.push(`${p} (from ${from}) does not exist on the host: not bound`);
      continue;
    }
    if (opts.forbidden.some((d) => within(real, d) || within(d, real))) {
      warnings.push(`${p} (from ${from}) leads to ${real}, which holds or is inside the platform's own files: not bound`);
      continue;
    }
    binds.push(p);
  }
  const bound = minimalDirs(binds);

  if (files.length) notes.push(`Package-manager configuration from the host (read-only, readable by the build): ${files.map((f) => `${f.tool} ${f.source}`).join(', ')}`);
  if (bound.length) notes.push(`Host dirs bound read-only: ${bound.join(', ')}`);
  const names = Object.keys(opts.env);
  if (names.length) notes.push(`Build variables from the platform: ${names.join(', ')}`);
  if (opts.egress) {
    for (const u of unreachableUrls([...new Set(urls)], opts.egress.blocked, opts.egress.allowed)) {
      warnings.push(`${u.url} is on a private address (${u.host}) builds cannot reach: add it to CELLHOST_EGRESS_ALLOW`);
    }
  }
  return { env: { ...opts.env }, binds: bound, files, notes, warnings };
}

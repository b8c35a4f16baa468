// What a runtime needs around an app or a build, whichever launcher runs it: its toolchain on
// PATH (and, for python, the venv as `activate` would set it), and inside the sandbox the
// toolchain's dirs bound read-only where the sandbox uid can reach them. The instances' and the
// builds' launchers both start from here.
import type { RuntimeName } from '../core/names.ts';
import { baseSandboxEnv, SANDBOX_PATH, type SandboxBind } from './bwrap.ts';
import { findToolchain } from './toolchains.ts';

/** where the sandbox uid can resolve a host path (the bind stage) */
export interface SandboxPaths {
  reachable(hostPath: string): Promise<string>;
}

/**
 * PATH as the sandbox sets it: the python venv (as `activate` would), then the runtime's toolchain
 * dirs (rustup's toolchain, a Go outside /usr), then the system dirs.
 */
export function runtimePathEnv(runtime: RuntimeName, appDir: string, toolDirs: readonly string[] = findToolchain(runtime).pathDirs): Record<string, string> {
  const dirs = [...toolDirs, SANDBOX_PATH];
  if (runtime !== 'python') return { PATH: dirs.join(':') };
  return { PATH: [`${appDir}/.venv/bin`, ...dirs].join(':'), VIRTUAL_ENV: `${appDir}/.venv` };
}

/** binds for a runtime's toolchain, each made reachable for the sandbox uid */
export async function toolchainMounts(runtime: RuntimeName, paths: SandboxPaths): Promise<{ binds: SandboxBind[]; pathDirs: string[] }> {
  const tc = findToolchain(runtime);
  const binds = await Promise.all(tc.binds.map(async (dest) => ({ src: await paths.reachable(dest), dest })));
  return { binds, pathDirs: tc.pathDirs };
}

/** `extra` (the app's or the build's variables) with PATH as inside the sandbox, the code at /app */
export function sandboxEnv(runtime: RuntimeName, pathDirs: string[], extra: Record<string, string>): Record<string, string> {
  const base = baseSandboxEnv(runtime === 'python' ? ['/app/.venv/bin', ...pathDirs] : pathDirs);
  return { ...extra, PATH: base.PATH!, ...(runtime === 'python' ? { VIRTUAL_ENV: '/app/.venv' } : {}) };
}

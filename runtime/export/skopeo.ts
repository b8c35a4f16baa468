// skopeo: resolves a base image to its digest, copies it into the OCI layout, pushes the result.
import fs from 'node:fs/promises';
import { CellhostError, type ErrorCode } from '../core/errors.ts';
import { runCommand, TOOL_ENV } from '../sandbox/run-command.ts';
import type { RegistryAccess } from './model.ts';

const INSPECT_TIMEOUT_MS = 5 * 60_000;
const COPY_TIMEOUT_MS = 60 * 60_000;

/** skopeo's own reason (its msg="…"), not the whole log line */
export function skopeoReason(stderr: string): string {
  const lines = stderr.trim().split('\n').filter(Boolean);
  const last = lines.at(-1) ?? '';
  const msg = /msg="((?:[^"\\]|\\.)*)"/.exec(last)?.[1];
  const text = msg ? msg.replace(/\\n/g, ' ').replace(/\\(.)/g, '$1') : last;
  return text.trim() || 'no output';
}

async function skopeo(code: ErrorCode, what: string, args: string[], access: RegistryAccess, timeoutMs: number, tmpDir?: string): Promise<string> {
  const r = await runCommand('skopeo', args, { env: { ...TOOL_ENV, ...access.env, ...(tmpDir ? { TMPDIR: tmpDir } : {}) }, timeoutMs });
  if (r.spawnError) throw new CellhostError('ERR_EXPORT_TOOL_MISSING', `skopeo could not be started (apt-get install skopeo): ${r.spawnError.message}`, { cause: r.spawnError });
  if (r.code !== 0) {
    const why = r.signal ? `stopped after ${timeoutMs / 1000} s` : skopeoReason(r.stderr);
    throw new CellhostError(code, `${what}: ${why}`);
  }
  return r.stdout;
}

const certs = (flag: string, access: RegistryAccess) => (access.certDir ? [flag, access.certDir] : []);

/** the digest a reference points at now (a multi-platform index's own digest when it is one) */
export async function resolveDigest(ref: string, access: RegistryAccess): Promise<string> {
  const out = await skopeo(
    'ERR_EXPORT_BASE_IMAGE',
    `base image ${ref} could not be resolved`,
    ['inspect', '--no-tags', '--format', '{{.Digest}}', ...certs('--cert-dir', access), `docker://${ref}`],
    access,
    INSPECT_TIMEOUT_MS,
  );
  const digest = out.trim();
  if (!/^sha256:[a-f0-9]{64}$/.test(digest)) throw new CellhostError('ERR_EXPORT_BASE_IMAGE', `base image ${ref}: skopeo gave no digest ("${digest}")`);
  return digest;
}

/** copies an image (pinned by digest) from its registry into `layout` under `tag` */
export async function pullImage(ref: string, layout: string, tag: string, access: RegistryAccess, tmpDir: string): Promise<void> {
  await skopeo(
    'ERR_EXPORT_BASE_IMAGE',
    `base image ${ref} could not be pulled`,
    ['copy', '--quiet', ...certs('--src-cert-dir', access), `docker://${ref}`, `oci:${layout}:${tag}`],
    access,
    COPY_TIMEOUT_MS,
    tmpDir,
  );
}

/** pushes `layout:tag` to `dest` (repo:tag) byte for byte; returns the digest the registry stored */
export async function pushImage(layout: string, tag: string, dest: string, access: RegistryAccess, tmpDir: string, digestFile: string): Promise<string> {
  await skopeo(
    'ERR_EXPORT_REGISTRY',
    `pushing to ${dest} failed`,
    ['copy', '--quiet', '--preserve-digests', '--digestfile', digestFile, ...certs('--dest-cert-dir', access), `oci:${layout}:${tag}`, `docker://${dest}`],
    access,
    COPY_TIMEOUT_MS,
    tmpDir,
  );
  return (await fs.readFile(digestFile, 'utf8')).trim();
}

// umoci: edits an OCI image layout in place (no daemon, no container storage): appends the app
// layer and rewrites the config.
import fs from 'node:fs/promises';
import path from 'node:path';
import { CellhostError } from '../core/errors.ts';
import { runCommand, TOOL_ENV } from '../sandbox/run-command.ts';
import type { ImageConfig } from './image-config.ts';

const TIMEOUT_MS = 30 * 60_000;

async function umoci(what: string, args: string[]): Promise<void> {
  const r = await runCommand('umoci', args, { env: { ...TOOL_ENV }, timeoutMs: TIMEOUT_MS });
  if (r.spawnError) throw new CellhostError('ERR_EXPORT_TOOL_MISSING', `umoci could not be started (apt-get install umoci): ${r.spawnError.message}`, { cause: r.spawnError });
  if (r.code !== 0) {
    const why = r.stderr.trim().split('\n').filter(Boolean).at(-1) ?? `exit ${r.code ?? r.signal}`;
    throw new CellhostError('ERR_EXPORT_IMAGE_BUILD', `${what}: ${why}`);
  }
}

/** `layout:from` plus the (uncompressed) tar as one more layer, saved as `layout:to` */
export async function appendLayer(layout: string, from: string, to: string, tarFile: string, history: { created: string; createdBy: string }): Promise<void> {
  await umoci(`adding the app layer to ${to}`, [
    'raw', 'add-layer',
    `--image=${layout}:${from}`,
    `--tag=${to}`,
    `--history.created=${history.created}`,
    `--history.created_by=${history.createdBy}`,
    tarFile,
  ]);
}

/** replaces the start command, exposed ports and working dir of `layout:tag`; adds env, labels, annotations */
export async function writeImageConfig(layout: string, tag: string, c: ImageConfig): Promise<void> {
  await umoci(`writing the image config of ${tag}`, [
    'config',
    `--image=${layout}:${tag}`,
    '--no-history',
    '--clear=config.entrypoint',
    '--clear=config.cmd',
    '--clear=config.exposedports',
    ...c.cmd.map((a) => `--config.cmd=${a}`),
    ...Object.entries(c.env).map(([k, v]) => `--config.env=${k}=${v}`),
    `--config.workingdir=${c.workingDir}`,
    `--config.user=${c.user}`,
    ...c.exposedPorts.map((p) => `--config.exposedports=${p}`),
    ...Object.entries(c.labels).map(([k, v]) => `--config.label=${k}=${v}`),
    ...Object.entries(c.annotations).map(([k, v]) => `--manifest.annotation=${k}=${v}`),
    `--created=${c.created}`,
  ]);
}

/** the manifest digest `tag` names in the layout's index */
export async function readTagDigest(layout: string, tag: string): Promise<string> {
  const index = JSON.parse(await fs.readFile(path.join(layout, 'index.json'), 'utf8')) as {
    manifests?: { digest: string; annotations?: Record<string, string> }[];
  };
  const hit = index.manifests?.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag);
  if (!hit) throw new CellhostError('ERR_EXPORT_IMAGE_BUILD', `the OCI layout has no image tagged ${tag}`);
  return hit.digest;
}

/** removes a tag (its blobs stay while another image uses them) */
export async function removeTag(layout: string, tag: string): Promise<void> {
  await umoci(`removing tag ${tag}`, ['rm', `--image=${layout}:${tag}`]);
}

/** deletes blobs no tag uses any more */
export async function collectGarbage(layout: string): Promise<void> {
  await umoci('cleaning the OCI layout', ['gc', `--layout=${layout}`]);
}

// `cellhost deploy [dir]`: create the service if needed, upload the directory, stream the
// build, print the URL. The exit code says whether the deployment went live.
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { packDirectory } from '../../../builder/sources/index.ts';
import type { RuntimeName } from '../../core/names.ts';
import { decodeManifest } from '../../manifest/find.ts';
import { describeProblem, MANIFEST_FILES, MANIFEST_MAX_BYTES, parseManifest, type Manifest } from '../../manifest/manifest.ts';
import { ApiError, createClient, loadClientSettings, readSse } from './client.ts';
import { UsageError, type CliIo } from '../io.ts';
import { createProgress, streamWithProgress } from './progress.ts';

export const DEPLOY_HELP = `cellhost deploy [DIR] [--name NAME] [--runtime node|python|go|rust] [--build CMD] [--start CMD]
                [--port PORT] [--memory MB] [--git URL [--ref REF]]
  Creates the service NAME (default: the name in DIR's cellhost.toml or cellhost.json, else the
  directory's name) if it does not exist, uploads DIR (default: .) or deploys from git, streams
  the build and prints the URL once it is live. On a terminal, packing and uploading show a
  progress bar with the bytes and the rate. A new service takes its runtime from the manifest
  (else from the files). The manifest is checked here before anything is uploaded; the server
  applies it to every setting not set explicitly. Flags are explicit settings: they change an
  existing service first, and win over the manifest.`;

interface ServiceBody {
  name: string;
  url: string;
  liveDeploymentId: string | null;
  rootDir: string | null;
}
interface DeploymentBody {
  id: string;
  status: string;
  error?: { code: string; message: string };
}

export function detectRuntime(dir: string): RuntimeName | null {
  const has = (f: string) => fs.existsSync(path.join(dir, f));
  if (has('package.json')) return 'node';
  if (has('go.mod')) return 'go';
  if (has('Cargo.toml')) return 'rust';
  if (has('requirements.txt') || has('pyproject.toml') || fs.readdirSync(dir).some((f) => f.endsWith('.py'))) return 'python';
  if (fs.readdirSync(dir).some((f) => /\.(c|m)?js$/.test(f))) return 'node';
  return null;
}

/**
 * The manifest in a local directory, checked as the server will check it, so a mistake is told
 * before the upload. Null when there is none.
 */
export function readLocalManifest(dir: string): Manifest | null {
  const present = MANIFEST_FILES.filter((f) => fs.statSync(path.join(dir, f), { throwIfNoEntry: false })?.isFile());
  if (present.length === 0) return null;
  if (present.length > 1) throw new UsageError(`both ${present.join(' and ')} are in ${dir}: keep one`);
  const file = present[0]!;
  const full = path.join(dir, file);
  if (fs.statSync(full).size > MANIFEST_MAX_BYTES) throw new UsageError(`${full} is larger than ${MANIFEST_MAX_BYTES / 1024} KB`);
  const parsed = parseManifest(file, decodeManifest(file, fs.readFileSync(full)));
  if (!parsed.ok) throw new ManifestInvalid(full, parsed.problems.map((p) => describeProblem(file, p)));
  return parsed.manifest;
}

export class ManifestInvalid extends Error {
  constructor(
    readonly file: string,
    readonly lines: string[],
  ) {
    super(`${file} is not valid`);
  }
}

export async function deployCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      name: { type: 'string' },
      runtime: { type: 'string' },
      build: { type: 'string' },
      start: { type: 'string' },
      port: { type: 'string' },
      memory: { type: 'string' },
      git: { type: 'string' },
      ref: { type: 'string' },
    },
  });
  if (positionals.length > 1) throw new UsageError('deploy takes one directory');
  const dir = path.resolve(io.cwd, positionals[0] ?? '.');
  if (!values.git && !fs.statSync(dir, { throwIfNoEntry: false })?.isDirectory()) throw new UsageError(`"${dir}" is not a directory`);
  // a git deploy's manifest is in the repository, read by the server
  const check = (at: string): Manifest | null | 'invalid' => {
    try {
      return values.git ? null : readLocalManifest(at);
    } catch (err) {
      if (!(err instanceof ManifestInvalid)) throw err;
      io.err(`${err.file} is not valid; nothing was uploaded:\n${err.lines.map((l) => `  ${l}\n`).join('')}`);
      return 'invalid';
    }
  };
  // without --name, the manifest at DIR names the service; else it is read once the service's root dir is known
  let manifest: Manifest | null | undefined;
  if (!values.name) {
    const atRoot = check(dir);
    if (atRoot === 'invalid') return 1;
    manifest = atRoot;
  }
  const name = values.name ?? manifest?.name ?? path.basename(dir).toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '');
  const client = createClient(loadClientSettings(io.env));

  const settings: Record<string, unknown> = {};
  if (values.runtime) settings.runtime = values.runtime;
  if (values.build !== undefined) settings.buildCommand = values.build;
  if (values.start !== undefined) settings.startCommand = values.start;
  if (values.port) settings.port = Number(values.port);
  if (values.memory) settings.memoryMb = Number(values.memory);

  let service: ServiceBody;
  try {
    service = await client.request<ServiceBody>('GET', `/api/v1/services/${encodeURIComponent(name)}`);
    if (manifest === undefined || service.rootDir) {
      // the server reads the manifest in the service's root dir
      const inRootDir = check(path.join(dir, service.rootDir ?? ''));
      if (inRootDir === 'invalid') return 1;
      manifest = inRootDir;
    }
    if (Object.keys(settings).length) service = await client.request<ServiceBody>('PATCH', `/api/v1/services/${name}`, settings);
  } catch (err) {
    if (!(err instanceof ApiError) || err.code !== 'ERR_SERVICE_NOT_FOUND') throw err;
    if (manifest === undefined) {
      const atRoot = check(dir);
      if (atRoot === 'invalid') return 1;
      manifest = atRoot;
    }
    const fromManifest = manifest?.settings.runtime;
    const runtime = values.runtime ?? fromManifest ?? (values.git ? null : detectRuntime(dir));
    if (!runtime) throw new UsageError('cannot tell the runtime from the files: pass --runtime node|python|go|rust, or set runtime in cellhost.toml');
    service = await client.request<ServiceBody>('POST', '/api/v1/services', { name, ...settings, runtime });
    // a runtime this verb worked out (from the manifest or the files) is not the user's explicit
    // choice: handed back, so a later change of the manifest's runtime applies
    if (!values.runtime) service = await client.request<ServiceBody>('PATCH', `/api/v1/services/${name}`, { runtime: null });
    io.err(`Created service ${name} (${runtime}${fromManifest && !values.runtime ? `, from ${manifest!.file}` : ''})\n`);
  }
  if (manifest) io.err(`Using ${manifest.file}: the build log says which of its settings apply\n`);

  let dep: DeploymentBody;
  if (values.git) {
    dep = await client.request<DeploymentBody>('POST', `/api/v1/services/${name}/deployments`, { git: values.git, ...(values.ref ? { ref: values.ref } : {}) });
  } else {
    const packing = createProgress(io, `Packing ${path.basename(dir)}`);
    const archive = await packDirectory(dir, (n) => packing.update(n));
    packing.done(`Packed ${dir}:`);
    const uploading = createProgress(io, 'Uploading', archive.length);
    const body = streamWithProgress(new Uint8Array(archive), (n) => uploading.update(n));
    const res = await client.raw('POST', `/api/v1/services/${name}/deployments`, { body, headers: { 'content-type': 'application/gzip', 'content-length': String(archive.length) } });
    uploading.done('Uploaded');
    dep = (await res.json()) as DeploymentBody;
  }

  const logRes = await client.raw('GET', `/api/v1/deployments/${dep.id}/logs?follow=1`, { headers: { accept: 'text/event-stream' } });
  let final: DeploymentBody | null = null;
  await readSse(logRes, (event, data) => {
    if (event === 'log') io.out(JSON.parse(data) as string);
    else if (event === 'end') final = JSON.parse(data) as DeploymentBody | null;
  });
  final ??= await client.request<DeploymentBody>('GET', `/api/v1/deployments/${dep.id}`);
  const result = final as DeploymentBody;
  if (result.status !== 'live') {
    io.err(`\nDeployment ${dep.id} ${result.status}${result.error ? `: ${result.error.message} (${result.error.code})` : ''}\n`);
    return 1;
  }
  io.out(`\n${service.url}\n`);
  return 0;
}

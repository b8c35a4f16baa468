// `cellhost deploy [dir]`: create the service if needed, upload the directory, stream the
// build, print the URL. The exit code says whether the deployment went live.
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { packDirectory } from '../../../builder/sources/index.ts';
import type { RuntimeName } from '../../core/names.ts';
import { ApiError, createClient, loadClientSettings, readSse } from './client.ts';
import { UsageError, type CliIo } from '../io.ts';
import { createProgress, streamWithProgress } from './progress.ts';

export const DEPLOY_HELP = `cellhost deploy [DIR] [--name NAME] [--runtime node|python|go|rust] [--build CMD] [--start CMD]
                [--port PORT] [--memory MB] [--git URL [--ref REF]]
  Creates the service NAME (default: the directory's name) if it does not exist, uploads DIR
  (default: .) or deploys from git, streams the build and prints the URL once it is live.
  On a terminal, packing and uploading show a progress bar with the bytes and the rate.
  Flags given for an existing service change its settings first.`;

interface ServiceBody {
  name: string;
  url: string;
  liveDeploymentId: string | null;
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
  const name = values.name ?? path.basename(dir).toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '');
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
    if (Object.keys(settings).length) service = await client.request<ServiceBody>('PATCH', `/api/v1/services/${name}`, settings);
  } catch (err) {
    if (!(err instanceof ApiError) || err.code !== 'ERR_SERVICE_NOT_FOUND') throw err;
    const runtime = values.runtime ?? (values.git ? null : detectRuntime(dir));
    if (!runtime) throw new UsageError('cannot tell the runtime from the files: pass --runtime node|python|go|rust');
    service = await client.request<ServiceBody>('POST', '/api/v1/services', { name, ...settings, runtime });
    io.err(`Created service ${name} (${runtime})\n`);
  }

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

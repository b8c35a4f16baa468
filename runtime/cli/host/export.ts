// `cellhost export --to knative`: a host-side verb like `keys` and `doctor`. It reads the data
// dir (the live builds under images/, which only root reads, and the env values, which only the
// master key opens) and runs skopeo and umoci here, with the invoking user's registry logins; the
// server keeps neither registry credentials nor long pushes. SQLite's WAL lets it read while
// `cellhost serve` runs, and it writes nothing in the data dir.
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../../core/config.ts';
import { CellhostError } from '../../core/errors.ts';
import { serviceNameSchema } from '../../core/names.ts';
import { collectServices } from '../../export/collect.ts';
import { exportToKnative } from '../../export/export-knative.ts';
import { parseBaseImageFlags, parseRegistry } from '../../export/image-ref.ts';
import type { RegistryAccess } from '../../export/model.ts';
import { checkMasterKey, createEnvStore } from '../../store/env.ts';
import { openStore } from '../../store/index.ts';
import { loadMasterKey } from '../../store/secrets.ts';
import { UsageError, type CliIo } from '../io.ts';

export const EXPORT_HELP = `cellhost export NAME... | --all --to knative --registry REGISTRY [--out DIR] [--push]
                [--base-image RUNTIME=REF]... [--namespace NS] [--cert-dir DIR] [--force] [--data DIR]
  Run on the cellhost host, as the user that runs "cellhost serve" (root): it reads the live
  builds and env values from the data dir. For each service, an OCI image (its base pinned by
  digest, the live build at /app) and a Knative Service manifest (serving.knative.dev/v1), with
  DomainMappings for its domains and a Secret for its env.
  Without --out: pushes each image to REGISTRY/NAME:DEPLOYMENT and prints the manifests (never
  the Secrets). With --out DIR: writes DIR/NAME.yaml, DIR/NAME.env.yaml (the Secret, mode 0600)
  and DIR/images (an OCI image layout) instead of pushing; add --push to push as well. DIR must be
  new or empty unless --force (which replaces it).
  --base-image node=REF   the base for a runtime (default: the official image for this host's
                          Debian release and toolchain version, e.g. node:20-bookworm-slim)
  --namespace NS          the Kubernetes namespace in the manifests (default: default)
  --cert-dir DIR          CA certificates (*.crt) for registries with a private CA
  Registry logins are skopeo's: "skopeo login REGISTRY" first (or REGISTRY_AUTH_FILE).
  Needs skopeo and umoci ("cellhost doctor" says whether they are here).`;

/** what skopeo needs from the caller's environment to find logins and proxies, and nothing else */
const REGISTRY_ENV = ['HOME', 'XDG_RUNTIME_DIR', 'REGISTRY_AUTH_FILE', 'DOCKER_CONFIG', 'HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy', 'NO_PROXY', 'no_proxy'];

export async function exportCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      to: { type: 'string' },
      registry: { type: 'string' },
      out: { type: 'string' },
      push: { type: 'boolean', default: false },
      all: { type: 'boolean', default: false },
      force: { type: 'boolean', default: false },
      'base-image': { type: 'string', multiple: true, default: [] },
      namespace: { type: 'string', default: 'default' },
      'cert-dir': { type: 'string' },
      data: { type: 'string' },
    },
  });
  if (values.to !== 'knative') throw new UsageError(values.to ? `unknown target "${values.to}": the only one is knative` : '--to knative is required');
  if (!values.registry) throw new UsageError('--registry is required (where the images go, e.g. registry.example.com/team)');
  if (values.all === (positionals.length > 0)) throw new UsageError('name the services to export, or pass --all');
  for (const name of positionals) {
    if (!serviceNameSchema.safeParse(name).success) throw new UsageError(`"${name}" is not a service name`);
  }
  if (!serviceNameSchema.safeParse(values.namespace).success) throw new UsageError(`--namespace "${values.namespace}" is not a Kubernetes namespace name`);
  const registry = parseRegistry(values.registry);
  const baseImages = parseBaseImageFlags(values['base-image']);
  const outDir = values.out ? path.resolve(io.cwd, values.out) : undefined;
  const certDir = values['cert-dir'] ? path.resolve(io.cwd, values['cert-dir']) : undefined;

  const config = loadConfig({ flags: { data: values.data }, env: io.env, cwd: io.cwd });
  if (!fs.existsSync(config.paths.db)) throw new CellhostError('ERR_VALIDATION', `no cellhost data in ${config.dataDir} (pass --data or set CELLHOST_DATA)`);
  const store = openStore(config.paths.db);
  let collected;
  try {
    const { key } = loadMasterKey({ fromEnv: config.masterKey, file: config.paths.masterKey, create: false });
    checkMasterKey(store.db, key);
    collected = collectServices(store, createEnvStore(store.db, () => key), values.all ? 'all' : positionals);
  } finally {
    store.close();
  }
  for (const s of collected.skipped) io.err(`skipped ${s.service}: ${s.reason}\n`);

  const access: RegistryAccess = {
    certDir,
    env: Object.fromEntries(REGISTRY_ENV.flatMap((k) => (io.env[k] ? [[k, io.env[k]!]] : []))),
  };
  const result = await exportToKnative(collected.items, {
    registry,
    namespace: values.namespace,
    outDir,
    push: values.push || !outDir,
    force: values.force,
    baseImages,
    access,
    say: (line) => io.err(`${line}\n`),
  });
  for (const w of result.warnings) io.err(`warning: ${w}\n`);
  if (outDir) {
    for (const s of result.services) io.err(`${s.name}: ${s.image}${s.pushedAs ? ` (pushed as ${s.pushedAs})` : ''} → ${s.files.map((f) => path.join(outDir, f)).join(', ')}\n`);
    io.err(`OCI image layout: ${path.join(outDir, 'images')}${values.push ? '' : ' (not pushed: skopeo copy --preserve-digests oci:DIR/images:NAME docker://REGISTRY/NAME:TAG keeps the digests the manifests name)'}\n`);
    io.err(`apply: kubectl apply -f ${outDir}\n`);
  } else {
    const withEnv = collected.items.filter((i) => Object.keys(i.env).length).map((i) => i.service.name);
    if (withEnv.length) io.err(`The env of ${withEnv.join(', ')} is in Secrets, which are written only with --out (never printed)\n`);
    io.out(result.yaml);
  }
  return 0;
}

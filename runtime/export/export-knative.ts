// `cellhost export --to knative`, once the services are read: bases pinned and pulled, one image
// per service, pushed (or kept as an OCI layout), then the manifests. Nothing is reported or
// written as done before every image is: a failure leaves --out untouched and names what the
// registry already received.
import fs from 'node:fs';
import path from 'node:path';
import { CellhostError } from '../core/errors.ts';
import type { RuntimeName } from '../core/names.ts';
import { defaultBaseImage, readHostVersions, type BaseChoice } from './base-images.ts';
import { baseTag, buildServiceImage, dropBaseTags } from './build-image.ts';
import { cronJobsFor } from './cron-jobs.ts';
import { domainMappingsFor } from './domain-mappings.ts';
import { envSecretFor } from './env-secret.ts';
import { formatImageRef, parseImageRef } from './image-ref.ts';
import { knativeServiceFor, type Manifest } from './knative-service.ts';
import type { BaseImage, ExportItem, RegistryAccess } from './model.ts';
import { checkOutDir, commitOutDir, createWorkDir, toYaml, writeFileWithMode } from './output.ts';
import { pullImage, pushImage, resolveDigest } from './skopeo.ts';
import { checkExportTools } from './tools.ts';

export interface KnativeExportOptions {
  /** repository prefix: images go to <registry>/<service> */
  registry: string;
  namespace: string;
  /** write manifests, Secrets and the OCI layout here */
  outDir?: string;
  push: boolean;
  force: boolean;
  baseImages: Partial<Record<RuntimeName, string>>;
  access: RegistryAccess;
  /** progress, one line at a time */
  say(line: string): void;
}

export interface ExportedService {
  name: string;
  /** <registry>/<service>@<digest> */
  image: string;
  /** the tag pushed, when pushed */
  pushedAs?: string;
  /** files written under --out */
  files: string[];
}

export interface KnativeExportResult {
  services: ExportedService[];
  bases: BaseImage[];
  warnings: string[];
  /** the manifests without Secrets (for stdout when there is no --out) */
  yaml: string;
}

async function pinBase(choice: BaseChoice, access: RegistryAccess): Promise<BaseImage> {
  const ref = parseImageRef(choice.ref);
  const digest = ref.digest ?? (await resolveDigest(choice.ref, access));
  return { ref: choice.ref, name: ref.name, digest, links: choice.links };
}

function manifestsFor(item: ExportItem, image: string, namespace: string) {
  const service = knativeServiceFor(item, image, namespace);
  return {
    public: [service.manifest, ...domainMappingsFor(item.service, namespace), ...cronJobsFor(item, namespace)],
    secret: envSecretFor(item, namespace),
    warnings: service.warnings,
  };
}

/** pushes one image after the other; a failure names those the registry already has */
async function pushAll(built: readonly { item: ExportItem; digest: string }[], layout: string, tmpDir: string, opts: KnativeExportOptions): Promise<void> {
  const pushed: string[] = [];
  for (const { item, digest } of built) {
    const dest = `${opts.registry}/${item.service.name}:${item.deploymentId}`;
    try {
      const stored = await pushImage(layout, item.service.name, dest, opts.access, tmpDir, path.join(tmpDir, `${item.service.name}.digest`));
      if (stored !== digest) throw new CellhostError('ERR_EXPORT_REGISTRY', `the registry stored ${dest} as ${stored}, not ${digest}`);
    } catch (err) {
      const done = pushed.length ? `already pushed: ${pushed.join(', ')}; ` : '';
      const coded = err as CellhostError;
      throw new CellhostError(coded.code ?? 'ERR_EXPORT_REGISTRY', `${coded.message} (${done}no manifests were written)`, { cause: err });
    }
    pushed.push(dest);
    opts.say(`pushed ${dest}`);
  }
}

export async function exportToKnative(items: readonly ExportItem[], opts: KnativeExportOptions): Promise<KnativeExportResult> {
  if (opts.outDir) checkOutDir(opts.outDir, opts.force);
  checkExportTools();
  // settings Knative cannot take fail here, before anything is pulled or built
  const warnings = items.flatMap((item) => manifestsFor(item, `${opts.registry}/${item.service.name}`, opts.namespace).warnings);

  const workDir = createWorkDir(opts.outDir);
  try {
    const layout = path.join(workDir, 'images');
    // layer tars, digests and skopeo's buffers: removed before the rest becomes --out
    const tmpDir = path.join(workDir, 'tmp');
    fs.mkdirSync(tmpDir);
    const runtimes = [...new Set(items.map((i) => i.service.runtime))];
    const host = readHostVersions(runtimes.filter((r) => !opts.baseImages[r]));
    const bases = new Map<RuntimeName, BaseImage>();
    for (const runtime of runtimes) {
      const given = opts.baseImages[runtime];
      const base = await pinBase(given ? { ref: given, links: {} } : defaultBaseImage(runtime, host), opts.access);
      opts.say(`base for ${runtime}: ${base.name}@${base.digest}`);
      await pullImage(formatImageRef({ name: base.name, digest: base.digest }), layout, baseTag(runtime), opts.access, tmpDir);
      bases.set(runtime, base);
    }

    const built: { item: ExportItem; digest: string }[] = [];
    for (const item of items) {
      const digest = await buildServiceImage(item, bases.get(item.service.runtime)!, layout, tmpDir);
      opts.say(`built ${item.service.name} (${item.deploymentId}): ${digest}`);
      built.push({ item, digest });
    }

    if (opts.push) await pushAll(built, layout, tmpDir, opts);

    const services: ExportedService[] = [];
    const publicDocs: Manifest[] = [];
    for (const { item, digest } of built) {
      const name = item.service.name;
      const image = `${opts.registry}/${name}@${digest}`;
      const docs = manifestsFor(item, image, opts.namespace);
      publicDocs.push(...docs.public);
      const files: string[] = [];
      if (opts.outDir) {
        writeFileWithMode(path.join(workDir, `${name}.yaml`), toYaml(docs.public), 0o644);
        files.push(`${name}.yaml`);
        if (docs.secret) {
          writeFileWithMode(path.join(workDir, `${name}.env.yaml`), toYaml([docs.secret]), 0o600);
          files.push(`${name}.env.yaml`);
        }
      }
      services.push({ name, image, ...(opts.push ? { pushedAs: `${opts.registry}/${name}:${item.deploymentId}` } : {}), files });
    }
    if (opts.outDir) {
      await dropBaseTags(layout, runtimes);
      fs.rmSync(tmpDir, { recursive: true, force: true });
      commitOutDir(workDir, opts.outDir);
    }
    return { services, bases: [...bases.values()], warnings, yaml: toYaml(publicDocs) };
  } finally {
    fs.rmSync(workDir, { recursive: true, force: true });
  }
}

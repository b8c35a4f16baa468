// Image references as the export takes them from the command line: where to push, which base.
import { CellhostError } from '../core/errors.ts';
import { RUNTIMES, type RuntimeName } from '../core/names.ts';

// host[:port] then path components, the distribution spec's lowercase repository grammar
const REPOSITORY = /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:\d{1,5})?(\/[a-z0-9]+([._-]+[a-z0-9]+)*)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;

/** "registry.example.com/team" (a docker:// prefix and trailing slashes are dropped) */
export function parseRegistry(text: string): string {
  const registry = text.trim().replace(/^docker:\/\//, '').replace(/\/+$/, '');
  if (!REPOSITORY.test(registry)) {
    throw new CellhostError('ERR_VALIDATION', `--registry "${text}" is not a registry path such as registry.example.com/team (lowercase, host[:port][/path])`);
  }
  return registry;
}

export interface ImageRef {
  /** repository: host/path */
  name: string;
  tag?: string;
  digest?: string;
}

/** "host/repo[:tag][@sha256:…]" */
export function parseImageRef(text: string): ImageRef {
  const ref = text.trim().replace(/^docker:\/\//, '');
  const at = ref.indexOf('@');
  const digest = at >= 0 ? ref.slice(at + 1) : undefined;
  const rest = at >= 0 ? ref.slice(0, at) : ref;
  const colon = rest.lastIndexOf(':');
  const hasTag = colon > rest.lastIndexOf('/');
  const name = hasTag ? rest.slice(0, colon) : rest;
  const tag = hasTag ? rest.slice(colon + 1) : undefined;
  if (!REPOSITORY.test(name) || (tag !== undefined && !TAG.test(tag)) || (digest !== undefined && !DIGEST.test(digest))) {
    throw new CellhostError('ERR_VALIDATION', `"${text}" is not an image reference such as docker.io/library/node:20-bookworm-slim`);
  }
  return { name, tag, digest };
}

export function formatImageRef(ref: ImageRef): string {
  return `${ref.name}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
}

/** "--base-image node=REF" values → runtime → reference */
export function parseBaseImageFlags(values: readonly string[]): Partial<Record<RuntimeName, string>> {
  const out: Partial<Record<RuntimeName, string>> = {};
  for (const v of values) {
    const eq = v.indexOf('=');
    const runtime = v.slice(0, eq) as RuntimeName;
    if (eq < 0 || !RUNTIMES.includes(runtime)) {
      throw new CellhostError('ERR_VALIDATION', `--base-image "${v}" is not RUNTIME=REF with RUNTIME one of ${RUNTIMES.join(', ')}`);
    }
    const ref = v.slice(eq + 1);
    parseImageRef(ref);
    out[runtime] = ref.replace(/^docker:\/\//, '');
  }
  return out;
}

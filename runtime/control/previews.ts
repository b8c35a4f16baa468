// Preview deployments: a branch (or a pull request's branch) of a service that has previews on
// runs as a service of its own, `<branch>--<service>`, with the parent's settings and the
// variables the parent lets previews have, scaled to zero when idle, no custom domains. Its
// settings and variables follow the parent's at each of its deploys. It goes when its branch is
// deleted, its pull request closed, or its parent deleted.
import crypto from 'node:crypto';
import type { Clock } from '../core/clock.ts';
import { CellhostError, describeError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { serviceNameSchema } from '../core/names.ts';
import type { Preview, PreviewStore } from '../store/previews.ts';
import type { Service } from '../store/services.ts';
import type { EnvControl } from './env.ts';
import type { ServiceView, Services } from './types.ts';

export interface PreviewsDeps {
  previews: PreviewStore;
  services: Services;
  env: EnvControl;
  clock: Clock;
  log: Logger;
  onEvent?(service: string, event: string, fields: Record<string, unknown>): void;
}

export interface Previews {
  /** the preview service of a parent's branch, made or brought in line with the parent (settings, variables) */
  prepare(parent: string, branch: string, pullRequest?: number | null): ServiceView;
  /** removes the preview of a parent's branch; null when it had none */
  remove(parent: string, branch: string): Promise<Preview | null>;
  /** a parent was deleted: its previews go too */
  removeAllOf(parent: string): Promise<void>;
  /** a service was deleted by any means: its preview record is closed (usage stays under the parent) */
  forget(name: string): void;
  list(parent: string): Preview[];
  /** the live preview of that name */
  get(name: string): Preview | undefined;
  /** preview name → parent, deleted ones included */
  parents(): Map<string, string>;
}

const LABEL_MAX = 63;

/** a branch as the first label of a host name: lowercase letters, digits and single hyphens */
export function branchLabel(branch: string): string {
  const label = branch
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
  return label || 'branch';
}

/** `<label>--<parent>`, the label cut (and marked with a hash of the branch) to fit 63 characters */
export function previewName(parent: string, branch: string, hashed = false): string | null {
  const room = LABEL_MAX - 2 - parent.length;
  const hash = crypto.createHash('sha256').update(branch).digest('hex').slice(0, 6);
  if (room < hash.length) return null;
  let label = branchLabel(branch);
  if (hashed || label.length > room) label = `${label.slice(0, Math.max(0, room - hash.length - 1)).replace(/-+$/, '')}-${hash}`.replace(/^-/, '');
  const name = `${label}--${parent}`;
  return serviceNameSchema.safeParse(name).success ? name : null;
}

/** what a preview runs with: the parent's settings, never kept warm (nor prewarmed: the budget is
 *  for the services themselves), no domains, no previews of its own */
export function previewSettings(parent: Service) {
  return {
    runtime: parent.runtime,
    buildCommand: parent.buildCommand,
    startCommand: parent.startCommand,
    port: parent.port,
    memoryMb: parent.memoryMb,
    plan: parent.plan,
    minInstances: 0,
    maxInstances: parent.maxInstances,
    concurrency: parent.concurrency,
    idleTimeoutS: parent.idleTimeoutS,
    requestTimeoutS: parent.requestTimeoutS,
    healthPath: parent.healthPath,
    rootDir: parent.rootDir,
    domains: [],
    deployBranch: parent.deployBranch,
    previews: false,
    prewarm: false,
  };
}

export function createPreviews(deps: PreviewsDeps): Previews {
  const iso = () => new Date(deps.clock.now()).toISOString();

  function pickName(parent: string, branch: string): string {
    for (const hashed of [false, true]) {
      const name = previewName(parent, branch, hashed);
      if (!name) break;
      // a name some other service (or another branch's preview) holds is not taken over
      let taken = true;
      try {
        deps.services.get(name);
      } catch {
        taken = false;
      }
      if (!taken) return name;
    }
    throw new CellhostError('ERR_PREVIEW_NAME', `no preview name is free for branch "${branch}" of ${parent} (a preview is <branch>--${parent}, at most 63 characters)`);
  }

  async function removePreview(p: Preview): Promise<void> {
    try {
      await deps.services.remove(p.name);
    } catch (err) {
      if (!(err instanceof CellhostError && err.code === 'ERR_SERVICE_NOT_FOUND')) throw err;
    }
    deps.previews.markDeleted(p.name, iso());
    deps.onEvent?.(p.parent, 'preview_deleted', { preview: p.name, branch: p.branch });
  }

  return {
    prepare(parentName, branch, pullRequest) {
      const parent = deps.services.get(parentName);
      if (deps.previews.get(parentName)) throw new CellhostError('ERR_VALIDATION', `${parentName} is a preview: previews have no previews`);
      const existing = deps.previews.forBranch(parentName, branch);
      const settings = previewSettings(parent);
      let view: ServiceView;
      if (existing) {
        view = deps.services.update(existing.name, settings);
        if (pullRequest !== undefined && pullRequest !== existing.pullRequest) deps.previews.setPullRequest(existing.name, pullRequest);
      } else {
        const name = pickName(parentName, branch);
        view = deps.services.create({ name, ...settings });
        deps.previews.insert({ name, parent: parentName, branch, pullRequest: pullRequest ?? null, now: iso() });
        deps.onEvent?.(parentName, 'preview_created', { preview: name, branch });
      }
      deps.env.copyToPreview(view.name, deps.env.forPreviews(parentName));
      return view;
    },
    async remove(parent, branch) {
      const p = deps.previews.forBranch(parent, branch);
      if (!p) return null;
      await removePreview(p);
      return p;
    },
    async removeAllOf(parent) {
      for (const p of deps.previews.listFor(parent)) {
        await removePreview(p).catch((err) => deps.log.error('preview.remove_failed', { preview: p.name, error: describeError(err) }));
      }
    },
    forget(name) {
      deps.previews.markDeleted(name, iso());
    },
    list: (parent) => deps.previews.listFor(parent),
    get: (name) => deps.previews.get(name),
    parents: () => deps.previews.parents(),
  };
}

// The architecture, as a table a newcomer can read, and checked: every file of runtime/, builder/
// and ui/ belongs to one module below, and imports (type imports too) only from its own module
// and the modules its row allows. The rows are in order from the bottom up: a module may import
// only rows above it, so the arrows point one way and there is no cycle. The composition root
// (runtime/server.ts) is the one place that may import every part; events travel upward as
// callbacks it wires, never as imports.
//
// A new folder needs a row (the test fails for a file no row claims): say what it holds and
// what it may import. An import the table does not allow fails with the file, the import and
// the rule, so the fix is either to pass the dependency in from the root, to move shared code
// down (as runtime/sandbox/runtime-env.ts and core/cpu-for-memory.ts were), or to change the
// table on purpose.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

interface Module {
  name: string;
  /** a folder (ending in /) or a file; a file belongs to the row with the longest matching path */
  path: string;
  /** the modules it may import from (its own files always) */
  may: string[];
  holds: string;
}

const MODULES: Module[] = [
  { name: 'core', path: 'runtime/core/', may: [], holds: 'config, errors and their codes, log, clock, names, the product rules every part shares' },
  { name: 'version', path: 'runtime/version.ts', may: [], holds: 'the version, from package.json' },
  { name: 'store', path: 'runtime/store/', may: ['core'], holds: 'SQLite: one file per table family, secrets, uids' },
  { name: 'sandbox', path: 'runtime/sandbox/', may: ['core'], holds: "cgroups (v1 and v2), bubblewrap, seccomp, network namespaces, what a runtime needs inside, cellhost's own files for edge builds and instances" },
  { name: 'edge', path: 'runtime/edge/', may: [], holds: "the edge host: the small server an edge service's sandbox runs (plain JavaScript read as a file, never imported)" },
  { name: 'settings', path: 'runtime/control/service-settings.ts', may: ['core', 'store'], holds: "a service's settings as the API, CLI, UI and manifest give them, validated" },
  { name: 'manifest', path: 'runtime/manifest/', may: ['core', 'store', 'sandbox', 'settings'], holds: 'cellhost.toml / cellhost.json: parsed with line numbers (read through the sandbox\'s untrusted-files)' },
  { name: 'instances', path: 'runtime/instances/', may: ['core', 'sandbox'], holds: 'launchers, processes, the pool' },
  { name: 'sources', path: 'builder/sources/', may: ['core', 'sandbox'], holds: 'archives and git checkouts, unpacked safely' },
  { name: 'builder', path: 'builder/', may: ['core', 'sandbox', 'store', 'sources'], holds: 'build launchers, queue, runner, runtimes (store: the plan type)' },
  { name: 'meter', path: 'runtime/meter/', may: ['core', 'store'], holds: 'billing intervals, histograms, usage reports' },
  { name: 'logs', path: 'runtime/logs/', may: ['core', 'store'], holds: "each service's runtime log: sink, masking, event sentences" },
  { name: 'router', path: 'runtime/router/', may: ['core', 'instances'], holds: 'the hot path: HTTP/1.1, the route table, forwarding to a lease from the pool' },
  { name: 'certs', path: 'runtime/certs/', may: ['core', 'store', 'router'], holds: "certificates: ACME orders (acme-client), DNS checks and the DNS-01 hook, the user's files, renewal and backoff; fills the router's certificate table" },
  { name: 'cron', path: 'runtime/cron/', may: ['core', 'store', 'router'], holds: 'cron jobs: schedules (croner), the scheduler, its verbs; runs go in through the router' },
  { name: 'tasks', path: 'runtime/tasks/', may: ['core', 'store', 'router'], holds: 'async tasks: the intake on the router, the workers, their verbs' },
  { name: 'queues', path: 'runtime/queues.ts', may: ['core', 'store', 'router', 'cron', 'tasks'], holds: 'cron and tasks wired together' },
  {
    name: 'control',
    path: 'runtime/control/',
    may: ['core', 'store', 'sandbox', 'instances', 'sources', 'builder', 'logs', 'router', 'certs', 'settings', 'manifest'],
    holds: 'the verbs on services, deployments, env and domains; what the pool runs; writes the route table',
  },
  { name: 'git', path: 'runtime/git/', may: ['core', 'store', 'sources', 'builder', 'control'], holds: "each service's git remote (git http-backend), the push hook, deploys of pushed commits" },
  { name: 'hooks', path: 'runtime/hooks/', may: ['core', 'store', 'sources', 'router', 'control'], holds: "forges' webhooks on the router: signatures, events, what each delivery does" },
  { name: 'isolation', path: 'runtime/isolation/', may: ['core', 'sandbox', 'instances', 'builder'], holds: 'the isolation layers (probe, start, wrap the launchers)' },
  { name: 'backup', path: 'runtime/backup/', may: ['core', 'store'], holds: 'backup and restore of a data dir' },
  { name: 'export', path: 'runtime/export/', may: ['core', 'store', 'sandbox', 'instances', 'builder', 'settings', 'control'], holds: 'images and Knative manifests, and reading them back' },
  { name: 'api', path: 'runtime/api/', may: ['core', 'store', 'sources', 'builder', 'logs', 'meter', 'settings', 'manifest', 'control', 'cron', 'tasks', 'git'], holds: 'the management API: routes with their schemas, auth' },
  { name: 'ui', path: 'ui/', may: ['core', 'store', 'sources', 'builder', 'logs', 'meter', 'settings', 'manifest', 'control', 'cron', 'tasks', 'git', 'api'], holds: 'the console: pages, forms, sessions' },
  { name: 'data-dir', path: 'runtime/data-dir.ts', may: ['core'], holds: "the data dir's own files kept private" },
  {
    name: 'root',
    path: 'runtime/server.ts',
    may: ['core', 'version', 'store', 'sandbox', 'instances', 'sources', 'builder', 'meter', 'logs', 'router', 'certs', 'queues', 'control', 'git', 'hooks', 'isolation', 'api', 'ui', 'data-dir'],
    holds: 'the composition root: builds every part and wires them',
  },
  { name: 'cli-common', path: 'runtime/cli/', may: ['core'], holds: "the CLI's io, formatting and shell completion" },
  { name: 'cli-client', path: 'runtime/cli/client/', may: ['core', 'cli-common', 'sources', 'manifest', 'export'], holds: 'client verbs: over the API by HTTP only (sources: packing a dir; manifest: checking cellhost.toml before an upload; export: reading Knative manifests)' },
  {
    name: 'cli-host',
    path: 'runtime/cli/host/',
    may: ['core', 'version', 'cli-common', 'store', 'sandbox', 'builder', 'isolation', 'backup', 'export', 'root'],
    holds: "host verbs: serve, doctor, keys, backup, restore, export, on the data dir and the host (sandbox: doctor reads the host's package state, to name system layers built on an older base)",
  },
  { name: 'cli', path: 'runtime/cli/index.ts', may: ['core', 'version', 'cli-common', 'cli-client', 'cli-host'], holds: 'the verb table' },
  { name: 'main', path: 'runtime/main.ts', may: ['cli', 'cli-common'], holds: "the executable's entry" },
];

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const SCANNED = ['runtime/', 'builder/', 'ui/'];

/** the row a file belongs to: the longest path that is the file or a folder holding it */
function moduleOf(file: string): Module | undefined {
  let best: Module | undefined;
  for (const m of MODULES) {
    const matches = m.path.endsWith('/') ? file.startsWith(m.path) : file === m.path;
    if (matches && (!best || m.path.length > best.path.length)) best = m;
  }
  return best;
}

/** relative import specifiers of a source file: import/export … from, import '…', import('…') */
function importsOf(source: string): string[] {
  // comment lines out, so prose that mentions "from './x'" is not an import
  const code = source
    .split('\n')
    .filter((line) => !/^\s*(\/\/|\*|\/\*)/.test(line))
    .join('\n');
  const specs: string[] = [];
  for (const m of code.matchAll(/\bfrom\s*['"](\.{1,2}\/[^'"]+)['"]|\bimport\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g)) specs.push((m[1] ?? m[2])!);
  return specs;
}

interface Violation {
  file: string;
  /** the imported file, or null when the file itself is in no row */
  imports: string | null;
  rule: string;
}

const describeViolation = (v: Violation) => `${v.file}${v.imports ? ` → ${v.imports}` : ''}: ${v.rule}`;

/** every import that the table does not allow, and every file it does not place */
function findViolations(files: ReadonlyMap<string, string>): Violation[] {
  const violations: Violation[] = [];
  for (const [file, source] of files) {
    const from = moduleOf(file);
    if (!from) {
      violations.push({ file, imports: null, rule: 'no row of the module table holds this file: add one (what it holds, what it may import)' });
      continue;
    }
    for (const spec of importsOf(source)) {
      const target = path.posix.normalize(path.posix.join(path.posix.dirname(file), spec));
      if (!SCANNED.some((dir) => target.startsWith(dir))) continue; // package.json, node_modules
      const to = moduleOf(target);
      if (!to || to === from || from.may.includes(to.name)) continue;
      violations.push({ file, imports: target, rule: `${from.name} may import only ${from.may.join(', ') || 'nothing of ours'}; ${target} is ${to.name}` });
    }
  }
  return violations;
}

function sourceFiles(): Map<string, string> {
  const files = new Map<string, string>();
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
      const rel = `${dir}${e.name}`;
      if (e.isDirectory()) walk(`${rel}/`);
      else if (/\.tsx?$/.test(e.name)) files.set(rel, fs.readFileSync(path.join(ROOT, rel), 'utf8'));
    }
  };
  for (const dir of SCANNED) walk(dir);
  return files;
}

describe('the import graph', () => {
  it('every import in runtime/, builder/ and ui/ is one the module table allows', () => {
    const files = sourceFiles();
    expect(files.size).toBeGreaterThan(100);
    expect(findViolations(files).map(describeViolation)).toEqual([]);
  });

  it('the table points one way: a row may import only rows above it', () => {
    const seen = new Set<string>();
    for (const m of MODULES) {
      for (const dep of m.may) expect(seen.has(dep), `${m.name} may import ${dep}, which is not above it`).toBe(true);
      seen.add(m.name);
    }
  });

  it('fails on an upward import, a sideways one, and a file no row holds', () => {
    const files = new Map([
      ['runtime/store/usage.ts', "import type { Histogram } from '../meter/histogram.ts';\n"],
      ['runtime/router/proxy.ts', "import {\n  type Services,\n} from '../control/types.ts';\n// from '../api/app.ts' in a comment is not an import\n"],
      ['runtime/sandbox/x.ts', "const m = await import('../instances/pool/index.ts');\n"],
      ['runtime/newpart/thing.ts', "import { z } from '../core/zod.ts';\n"],
      ['runtime/instances/ok.ts', "import { CellhostError } from '../core/errors.ts';\nimport { bwrap } from '../sandbox/bwrap.ts';\nimport { z } from 'zod';\n"],
    ]);
    expect(findViolations(files).map(describeViolation)).toEqual([
      'runtime/store/usage.ts → runtime/meter/histogram.ts: store may import only core; runtime/meter/histogram.ts is meter',
      'runtime/router/proxy.ts → runtime/control/types.ts: router may import only core, instances; runtime/control/types.ts is control',
      'runtime/sandbox/x.ts → runtime/instances/pool/index.ts: sandbox may import only core; runtime/instances/pool/index.ts is instances',
      'runtime/newpart/thing.ts: no row of the module table holds this file: add one (what it holds, what it may import)',
    ]);
  });
});

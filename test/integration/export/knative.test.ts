// `cellhost export --to knative` end to end, on loopback: Node, Python and Go services deployed
// on a real platform are exported against a local registry (self-signed TLS) with base images
// built here from this host's binaries; each pushed image is run by podman and must answer as the
// service does under cellhost, with its env from the exported Secret. The manifests are read back
// and held against the services' settings and against what Knative documents; `cellhost import`
// turns them into the same services on a second platform.
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../../runtime/cli/index.ts';
import { freePort } from '../../../runtime/instances/launcher.ts';
import { runCommand } from '../../../runtime/sandbox/run-command.ts';
import { checkKnativeRules, checkSchema, DOMAIN_MAPPING, KNATIVE_SERVICE, SECRET } from '../../helpers/knative-schema.ts';
import { createPodman, missingOciTools, pushBaseImage, startRegistry, type LocalRegistry, type Podman } from '../../helpers/oci.ts';
import { FIXTURES, startTestServer, tempDir, TOKEN, waitFor, type TestServer } from '../../helpers/server.ts';
import { removeCgroupParents } from '../../helpers/cgroups.ts';

const isCI = process.env.CI === 'true';
const missing = missingOciTools();
const ready = process.getuid?.() === 0 && missing.length === 0;

describe('export prerequisites', () => {
  it.runIf(isCI)('root, docker-registry, skopeo, umoci, podman, runc and openssl are present in CI', () => {
    expect({ root: process.getuid?.() === 0, missing }).toEqual({ root: true, missing: [] });
  });
});

const GREETING = 'hello from the Secret';
// quotes, a newline, an equals sign and non-ASCII: the Secret must carry it byte for byte
const ODD = `a'b"c\nd=e ü`;
const SETTINGS = {
  hello: { runtime: 'node', startCommand: 'node app.js', memoryMb: 256, concurrency: 7, minInstances: 0, maxInstances: 3, requestTimeoutS: 30.5, idleTimeoutS: 120, domains: ['hello.example.com', 'www.hello.example.com'] },
  py: { runtime: 'python', memoryMb: 512, concurrency: 20, minInstances: 1, maxInstances: 4, requestTimeoutS: 60, idleTimeoutS: 7200, healthPath: '/health', buildCommand: 'echo built' },
  gosvc: { runtime: 'go', memoryMb: 1769, port: 8081, plan: 'pro' },
} as const;
const NAMES = Object.keys(SETTINGS) as (keyof typeof SETTINGS)[];

let server: TestServer;
let registry: LocalRegistry;
let refusing: LocalRegistry;
let podman: Podman;
let work: string;
let bases: { node: string; python: string; shell: string };
/** one cert dir that trusts every test registry (skopeo reads each *.crt in it) */
let trustDir: string;
const trust = (r: LocalRegistry) => fs.copyFileSync(path.join(r.certDir, 'ca.crt'), path.join(trustDir, `${r.host.replace(':', '_')}.crt`));

async function cli(args: string[], cwd = work) {
  let out = '';
  let err = '';
  const code = await runCli(args, {
    env: { HOME: work, CELLHOST_URL: server.adminUrl, CELLHOST_TOKEN: TOKEN },
    cwd,
    out: (t) => void (out += t),
    err: (t) => void (err += t),
    isTTY: false,
  });
  return { code, out, err };
}

function exportArgs(names: string[], extra: string[], reg = registry): string[] {
  return [
    'export', ...names, '--to', 'knative', '--registry', `${reg.host}/apps`, '--data', server.dataDir, '--cert-dir', trustDir,
    '--base-image', `node=${bases.node}`, '--base-image', `python=${bases.python}`, '--base-image', `go=${bases.shell}`,
    ...extra,
  ];
}

async function skopeoJson(args: string[]): Promise<any> {
  const r = await runCommand('skopeo', ['inspect', '--cert-dir', registry.certDir, ...args], { timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`skopeo inspect ${args.join(' ')}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

const docsOf = (file: string) => YAML.parseAllDocuments(fs.readFileSync(file, 'utf8')).map((d) => d.toJS());
/** the app's answer without what differs between any two processes */
const comparable = (body: Record<string, unknown>) => {
  const { pid: _pid, boot: _boot, ...rest } = body;
  return rest;
};

describe.runIf(ready)('cellhost export --to knative', () => {
  let outDir: string;
  const digests: Record<string, string> = {};

  beforeAll(async () => {
    work = tempDir('cellhost-export-test-');
    server = await startTestServer();
    [registry, refusing] = await Promise.all([startRegistry(), startRegistry({ readonly: true })]);
    podman = createPodman();
    trustDir = path.join(work, 'trust');
    fs.mkdirSync(trustDir);
    trust(registry);
    trust(refusing);
    const fixture = { hello: 'node-hello', py: 'python-hello', gosvc: 'go-hello' } as const;
    for (const name of NAMES) {
      const dep = await server.deploy(name, path.join(FIXTURES, fixture[name]), SETTINGS[name]);
      expect(dep.status, JSON.stringify(dep)).toBe('live');
    }
    expect((await server.api('PUT', '/api/v1/services/hello/env', { vars: { GREETING, ODD } })).status).toBe(200);
    bases = {
      node: await pushBaseImage(registry, 'node'),
      python: await pushBaseImage(registry, 'python'),
      shell: await pushBaseImage(registry, 'shell'),
    };
    outDir = path.join(work, 'out');
  }, 300_000);

  afterAll(async () => {
    await podman?.close();
    await Promise.all([registry?.stop(), refusing?.stop()]);
    await server?.close();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  }, 120_000);

  it('builds and pushes an image per service and writes the manifests, the Secret (0600) and the OCI layout', async () => {
    const r = await cli(exportArgs(NAMES, ['--out', outDir, '--push']));
    expect(r.code, r.err).toBe(0);
    expect(r.out).toBe('');
    // cellhost's default request timeout (15 min) is above Knative's default ceiling (10 min)
    expect(r.err).toContain('warning: gosvc: timeoutSeconds 900 is above Knative\'s default max-revision-timeout-seconds (600)');
    expect(r.err.match(/^warning:/gm)).toHaveLength(2);
    expect(r.err).not.toContain(GREETING);
    expect(fs.readdirSync(outDir).sort()).toEqual(['gosvc.yaml', 'hello.env.yaml', 'hello.yaml', 'images', 'py.yaml']);
    expect(fs.statSync(path.join(outDir, 'hello.env.yaml')).mode & 0o777).toBe(0o600);
    const index = JSON.parse(fs.readFileSync(path.join(outDir, 'images', 'index.json'), 'utf8'));
    const tags = Object.fromEntries(index.manifests.map((m: any) => [m.annotations['org.opencontainers.image.ref.name'], m.digest]));
    expect(Object.keys(tags).sort()).toEqual(['gosvc', 'hello', 'py']);
    for (const name of NAMES) {
      const service = docsOf(path.join(outDir, `${name}.yaml`))[0];
      const image: string = service.spec.template.spec.containers[0].image;
      expect(image).toBe(`${registry.host}/apps/${name}@${tags[name]}`);
      digests[name] = tags[name];
      // the registry holds exactly that manifest, under the deployment's tag too
      const live = (await server.api('GET', `/api/v1/services/${name}`)).body.liveDeploymentId;
      expect((await skopeoJson(['--no-tags', `docker://${registry.host}/apps/${name}:${live}`])).Digest).toBe(tags[name]);
    }
  }, 300_000);

  it('skopeo inspect shows the start command, PORT, the exposed port, /app, a non-root user and the pinned base', async () => {
    const baseDigests = {
      node: (await skopeoJson(['--no-tags', `docker://${bases.node}`])).Digest,
      python: (await skopeoJson(['--no-tags', `docker://${bases.python}`])).Digest,
      go: (await skopeoJson(['--no-tags', `docker://${bases.shell}`])).Digest,
    };
    const expected = { hello: { cmd: 'node app.js', port: 8080 }, py: { cmd: 'python app.py', port: 8080 }, gosvc: { cmd: './app', port: 8081 } };
    for (const name of NAMES) {
      const ref = `docker://${registry.host}/apps/${name}@${digests[name]}`;
      const config = (await skopeoJson(['--config', ref])).config;
      expect(config.Cmd).toEqual(['bash', '-c', expected[name].cmd]);
      expect(config.Entrypoint ?? null).toBeNull();
      expect(config.WorkingDir).toBe('/app');
      expect(config.User).toBe('65532:65532');
      expect(Object.keys(config.ExposedPorts)).toEqual([`${expected[name].port}/tcp`]);
      const env = Object.fromEntries((config.Env as string[]).map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
      expect(env).toMatchObject({ PORT: String(expected[name].port), HOME: '/tmp', TMPDIR: '/tmp', CELLHOST_SERVICE: name, CELLHOST_MEMORY_MB: String(SETTINGS[name].memoryMb) });
      expect(env).not.toHaveProperty('GREETING');
      if (name === 'py') expect(env).toMatchObject({ VIRTUAL_ENV: '/app/.venv', PATH: expect.stringMatching(/^\/app\/\.venv\/bin:/) });
      const manifest = await skopeoJson(['--raw', ref]);
      const runtime = SETTINGS[name].runtime;
      expect(manifest.annotations['org.opencontainers.image.base.digest']).toBe(baseDigests[runtime]);
      // base layers plus exactly one
      const baseLayers = (await skopeoJson(['--raw', `docker://${runtime === 'go' ? bases.shell : bases[runtime]}`])).layers;
      expect(manifest.layers.length).toBe(baseLayers.length + 1);
      expect(manifest.layers.slice(0, -1)).toEqual(baseLayers);
    }
  }, 120_000);

  it('podman runs each pushed image, read-only, as the image user, with env from the Secret: same answer as under cellhost', async () => {
    const secret = docsOf(path.join(outDir, 'hello.env.yaml'))[0];
    const envFile = path.join(work, 'hello.env');
    fs.writeFileSync(envFile, '', { mode: 0o600 });
    const envArgs: string[] = [];
    for (const [k, v] of Object.entries(secret.data as Record<string, string>)) envArgs.push('--env', `${k}=${Buffer.from(v, 'base64').toString('utf8')}`);
    for (const name of NAMES) {
      const ref = `${registry.host}/apps/${name}@${digests[name]}`;
      const pull = await podman.run(['pull', '--quiet', `--cert-dir=${registry.certDir}`, ref]);
      expect(pull.code, pull.stderr).toBe(0);
      const port = await freePort();
      const run = await podman.run([
        'run', '--detach', `--name=${name}`, '--network=host', '--read-only', `--cgroup-parent=${podman.cgroupParent}`, ...podman.ulimits,
        // Knative sets PORT to the containerPort; on the host network each needs a free one
        '--env', `PORT=${port}`, ...(name === 'hello' ? envArgs : []), ref,
      ]);
      expect(run.code, run.stderr).toBe(0);
      const fetchJson = async (p: string) => {
        const res = await fetch(`http://127.0.0.1:${port}${p}`).catch(() => null);
        return res?.ok ? ((await res.json()) as Record<string, unknown>) : null;
      };
      const fromPodman = await waitFor(() => fetchJson('/x?y=1'), { timeoutMs: 30_000, what: `${name} in podman` });
      const fromCellhost = (await server.app(name, '/x?y=1')).json;
      expect(comparable(fromPodman)).toEqual(comparable(fromCellhost));
      if (name === 'hello') {
        expect(fromPodman.env).toBe(GREETING);
        const odd = await podman.run(['exec', name, 'bash', '-c', 'printf %s "$ODD"']);
        expect(odd.stdout).toBe(ODD);
      }
      // the image's user, /tmp writable, everything else read-only
      const probe = await podman.run(['exec', name, 'bash', '-c', 'echo "$UID"; : > /tmp/x && echo tmp-ok; : > /app/x 2>/dev/null || echo app-ro']);
      expect(probe.stdout.split('\n').filter(Boolean)).toEqual(['65532', 'tmp-ok', 'app-ro']);
      expect((await podman.run(['rm', '--force', '--time=0', name])).code).toBe(0);
    }
  }, 300_000);

  it("manifests: every mapped field matches the service's settings, within what Knative documents", async () => {
    for (const name of NAMES) {
      const docs = docsOf(path.join(outDir, `${name}.yaml`));
      const { body: s } = await server.api('GET', `/api/v1/services/${name}`);
      const svc = docs[0];
      expect(checkSchema(svc, KNATIVE_SERVICE)).toEqual([]);
      // with the limit raised as the export's warning says, for the service on the default 900 s
      expect(checkKnativeRules(svc, { maxTimeoutS: Math.max(600, Math.ceil(s.requestTimeoutS)) })).toEqual([]);
      expect(svc.metadata).toMatchObject({ name, namespace: 'default' });
      const tmpl = svc.spec.template;
      expect(tmpl.metadata.annotations).toEqual({
        'autoscaling.knative.dev/min-scale': String(s.minInstances),
        'autoscaling.knative.dev/max-scale': String(s.maxInstances),
        'autoscaling.knative.dev/target': String(s.concurrency),
        'autoscaling.knative.dev/scale-to-zero-pod-retention-period': `${Math.min(s.idleTimeoutS, 3600)}s`,
      });
      expect(tmpl.spec.containerConcurrency).toBe(s.concurrency);
      expect(tmpl.spec.timeoutSeconds).toBe(Math.ceil(s.requestTimeoutS));
      const c = tmpl.spec.containers[0];
      expect(c.ports).toEqual([{ containerPort: s.port }]);
      const cpu = Math.round((s.memoryMb / 1769) * 1000);
      expect(c.resources.limits).toEqual({ memory: `${s.memoryMb}Mi`, cpu: `${cpu}m` });
      expect(c.resources.requests).toEqual({ memory: `${Math.min(128, s.memoryMb)}Mi`, cpu: `${Math.max(1, Math.round(cpu / 10))}m` });
      expect(c.readinessProbe ?? null).toEqual(s.healthPath ? { httpGet: { path: s.healthPath } } : null);
      expect(c.securityContext).toMatchObject({ runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false });
      expect(c.volumeMounts).toEqual([{ name: 'tmp', mountPath: '/tmp' }]);
      expect(tmpl.spec.volumes).toEqual([{ name: 'tmp', emptyDir: { medium: 'Memory', sizeLimit: `${s.memoryMb}Mi` } }]);
      expect(svc.metadata.annotations).toMatchObject({ 'cellhost.dev/runtime': s.runtime, 'cellhost.dev/plan': s.plan, 'cellhost.dev/deployment': s.liveDeploymentId });
      // domains: one DomainMapping each, to this Service
      const mappings = docs.filter((d) => d.kind === 'DomainMapping');
      expect(mappings.map((m) => m.metadata.name)).toEqual(s.domains);
      for (const m of mappings) {
        expect(checkSchema(m, DOMAIN_MAPPING)).toEqual([]);
        expect(m.apiVersion).toBe('serving.knative.dev/v1beta1');
        expect(m.spec.ref).toEqual({ apiVersion: 'serving.knative.dev/v1', kind: 'Service', name });
      }
      expect(docs.filter((d) => !['Service', 'DomainMapping'].includes(d.kind))).toEqual([]);
    }
    // the 2 h idle timeout is longer than Knative's longest retention: capped, and kept exactly for an import
    expect(docsOf(path.join(outDir, 'py.yaml'))[0].metadata.annotations['cellhost.dev/idle-timeout-seconds']).toBe('7200');
    // env: names in the Service, values only in the Secret
    const hello = docsOf(path.join(outDir, 'hello.yaml'))[0];
    expect(hello.spec.template.spec.containers[0].env).toEqual([
      { name: 'GREETING', valueFrom: { secretKeyRef: { name: 'hello-env', key: 'GREETING' } } },
      { name: 'ODD', valueFrom: { secretKeyRef: { name: 'hello-env', key: 'ODD' } } },
    ]);
    expect(fs.readFileSync(path.join(outDir, 'hello.yaml'), 'utf8')).not.toContain(GREETING);
    const secret = docsOf(path.join(outDir, 'hello.env.yaml'));
    expect(secret).toHaveLength(1);
    expect(checkSchema(secret[0], SECRET)).toEqual([]);
    expect(secret[0]).toMatchObject({ apiVersion: 'v1', kind: 'Secret', type: 'Opaque', metadata: { name: 'hello-env', namespace: 'default' } });
    expect(Object.fromEntries(Object.entries(secret[0].data as Record<string, string>).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]))).toEqual({ GREETING, ODD });
  });

  it('without --out: pushes and prints the manifests, never the Secret', async () => {
    const r = await cli(exportArgs(['hello'], ['--namespace', 'apps']));
    expect(r.code, r.err).toBe(0);
    const docs = YAML.parseAllDocuments(r.out).map((d) => d.toJS());
    expect(docs.map((d) => d.kind)).toEqual(['Service', 'DomainMapping', 'DomainMapping']);
    expect(docs[0].metadata.namespace).toBe('apps');
    expect(docs[0].spec.template.spec.containers[0].image).toBe(`${registry.host}/apps/hello@${digests.hello}`);
    expect(r.out + r.err).not.toContain(GREETING);
    expect(r.out + r.err).not.toContain(Buffer.from(GREETING).toString('base64'));
    expect(r.err).toContain('written only with --out');
  }, 120_000);

  it('refuses a non-empty --out without --force, and replaces it with --force', async () => {
    const dir = path.join(work, 'busy');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'keep.txt'), 'mine');
    const refused = await cli(exportArgs(['gosvc'], ['--out', dir]));
    expect(refused.code).toBe(1);
    expect(refused.err).toContain('ERR_EXPORT_OUT_NOT_EMPTY');
    expect(fs.readdirSync(dir)).toEqual(['keep.txt']);
    const forced = await cli(exportArgs(['gosvc'], ['--out', dir, '--force']));
    expect(forced.code, forced.err).toBe(0);
    expect(fs.readdirSync(dir).sort()).toEqual(['gosvc.yaml', 'images']);
    // an --out without --push writes the layout and pushes nothing: the manifest names the layout's digest
    const index = JSON.parse(fs.readFileSync(path.join(dir, 'images', 'index.json'), 'utf8'));
    expect(docsOf(path.join(dir, 'gosvc.yaml'))[0].spec.template.spec.containers[0].image).toBe(`${registry.host}/apps/gosvc@${index.manifests[0].digest}`);
    expect(fs.readdirSync(work).filter((f) => f.includes('.export-'))).toEqual([]);
  }, 120_000);

  it('bad input: unknown service, no live build, registry down, registry refusing', async () => {
    const unknown = await cli(exportArgs(['nope'], []));
    expect(unknown.code).toBe(1);
    expect(unknown.err).toMatch(/no service named "nope".*ERR_SERVICE_NOT_FOUND/);

    expect((await server.api('POST', '/api/v1/services', { name: 'empty', runtime: 'node' })).status).toBe(201);
    const unbuilt = await cli(exportArgs(['empty'], []));
    expect(unbuilt.code).toBe(1);
    expect(unbuilt.err).toMatch(/"empty" has no live build.*ERR_EXPORT_NO_BUILD/);
    // --all leaves it out and says so
    const nowhere = ['node', 'python', 'go'].flatMap((r) => ['--base-image', `${r}=127.0.0.1:1/none:1`]);
    const all = await cli(['export', '--all', '--to', 'knative', '--registry', '127.0.0.1:1/x', '--data', server.dataDir, '--out', path.join(work, 'never'), ...nowhere]);
    expect(all.err).toContain('skipped empty');
    expect(all.err).toMatch(/base image 127\.0\.0\.1:1\/none:1 could not be resolved.*ERR_EXPORT_BASE_IMAGE/);
    expect(fs.existsSync(path.join(work, 'never'))).toBe(false);

    const cases = [
      ['down', { host: `127.0.0.1:${await freePort()}` }, /connection refused/],
      ['refusing', refusing, /405, Method not allowed/],
    ] as const;
    for (const [what, reg, reason] of cases) {
      const out = path.join(work, `out-${what}`);
      const r = await cli(exportArgs(['hello', 'py'], ['--out', out, '--push'], reg as LocalRegistry));
      expect(r.code, `${what}: ${r.err}`).toBe(1);
      expect(r.err).toMatch(new RegExp(`pushing to ${(reg as LocalRegistry).host}/apps/hello:d-[a-f0-9]+ failed: .*\\(no manifests were written\\) \\(ERR_EXPORT_REGISTRY\\)`));
      expect(r.err).toMatch(reason);
      expect(r.err).not.toMatch(/^pushed /m);
      expect(r.out).toBe('');
      expect(fs.existsSync(out)).toBe(false);
    }
    // a registry that goes away after the first push: the first is reported pushed, the rest not
    const dying = await startRegistry();
    trust(dying);
    try {
      const out = path.join(work, 'out-dying');
      let err = '';
      const code = await runCli(exportArgs(['hello', 'py'], ['--out', out, '--push'], dying), {
        env: { HOME: work },
        cwd: work,
        out: () => {},
        err: (t) => {
          err += t;
          if (t.startsWith('pushed ')) dying.killNow();
        },
        isTTY: false,
      });
      expect(code, err).toBe(1);
      expect(err).toMatch(new RegExp(`^pushed ${dying.host}/apps/hello:d-[a-f0-9]+$`, 'm'));
      expect(err).not.toMatch(/^pushed .*\/apps\/py:/m);
      expect(err).toMatch(new RegExp(`pushing to ${dying.host}/apps/py:d-[a-f0-9]+ failed: .*\(already pushed: ${dying.host}/apps/hello:d-[a-f0-9]+; no manifests were written\)`));
      expect(fs.existsSync(out)).toBe(false);
    } finally {
      await dying.stop();
    }
    // the refusing registry holds nothing under that name
    const probe = await runCommand('skopeo', ['inspect', '--no-tags', '--cert-dir', refusing.certDir, `docker://${refusing.host}/apps/hello@${digests.hello}`]);
    expect(probe.code).not.toBe(0);
    expect(fs.readdirSync(work).filter((f) => f.includes('.export-'))).toEqual([]);
  }, 180_000);

  it('import --from knative creates the same services on another platform', async () => {
    const other = await startTestServer();
    try {
      let out = '';
      let err = '';
      const code = await runCli(['import', '--from', 'knative', outDir], {
        env: { HOME: work, CELLHOST_URL: other.adminUrl, CELLHOST_TOKEN: TOKEN },
        cwd: work,
        out: (t) => void (out += t),
        err: (t) => void (err += t),
        isTTY: false,
      });
      expect(code, err).toBe(0);
      expect(out).toContain('Created service hello (node, 2 env vars)');
      const fields = ['runtime', 'buildCommand', 'startCommand', 'port', 'memoryMb', 'plan', 'minInstances', 'maxInstances', 'concurrency', 'idleTimeoutS', 'requestTimeoutS', 'healthPath', 'rootDir', 'domains'];
      const pick = (s: Record<string, unknown>) => Object.fromEntries(fields.map((f) => [f, s[f]]));
      for (const name of NAMES) {
        const [a, b] = await Promise.all([server.api('GET', `/api/v1/services/${name}`), other.api('GET', `/api/v1/services/${name}`)]);
        expect(pick(b.body), name).toEqual(pick(a.body));
      }
      const env = await other.api('GET', '/api/v1/services/hello/env?reveal=1');
      expect(Object.fromEntries(env.body.vars.map((v: any) => [v.name, v.value]))).toEqual({ GREETING, ODD });
      // a second import refuses before creating anything
      let err2 = '';
      const again = await runCli(['import', '--from', 'knative', outDir], {
        env: { HOME: work, CELLHOST_URL: other.adminUrl, CELLHOST_TOKEN: TOKEN },
        cwd: work,
        out: () => {},
        err: (t) => void (err2 += t),
        isTTY: false,
      });
      expect(again).toBe(1);
      expect(err2).toContain('ERR_SERVICE_EXISTS');
    } finally {
      await other.close();
    }
  }, 120_000);

  it('cellhost doctor says what export needs', async () => {
    const prefix = `cellhost-export-doctor-${process.pid}`;
    const r = await cli(['doctor', '--cgroup-prefix', prefix, '--netns-prefix', 'chxd']).finally(() => removeCgroupParents(prefix));
    expect(r.out).toMatch(/Export to Knative[^\n]*\n\s+ok\s+skopeo[^\n]*\n\s+ok\s+umoci/);
  }, 60_000);
});

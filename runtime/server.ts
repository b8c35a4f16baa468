// The composition root: the one place that wires parts. Each step below builds a part from what
// the steps before it built, so every dependency points at something that exists already; a part
// that must tell a part built later (a deployment went live, env changed) is given a small
// interface of an earlier part instead (targets.sync), never a variable filled in afterwards.
//   state → isolation → logs → certificates → request path (meter ← pool ← router, over the
//   route table; its TLS listener reads the certificates) → control (targets, deployments,
//   services, env, domains) → listeners (router and its TLS listener, admin: API + console)
// A new part is one more step here: built from the parts it needs, then stopped in close(), and
// undone (undo.add) when a later step of the start fails.
import fs from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { serve, type ServerType } from '@hono/node-server';
import { createDirectBuildLauncher } from '../builder/launcher.ts';
import { resolveBuildSetup } from '../builder/build-setup.ts';
import { createLogHub } from '../builder/log-hub.ts';
import { checkGitUrl } from '../builder/sources/index.ts';
import { createBuildQueue } from '../builder/queue.ts';
import { createApi } from './api/app.ts';
import { createUi } from '../ui/app.tsx';
import { meteredUi } from '../ui/metrics.ts';
import { createSessions } from '../ui/session.ts';
import { createDeployments } from './control/deployments.ts';
import { createDomains } from './control/domains.ts';
import { createManifestApply } from './control/manifest-apply.ts';
import { createManifestDomains } from './control/manifest-domains.ts';
import { createEnvControl, createEnvValues } from './control/env.ts';
import { createServices } from './control/services.ts';
import { createTargetSync } from './control/targets.ts';
import { systemClock, type Clock } from './core/clock.ts';
import { isPublicDomain, type Config } from './core/config.ts';
import { CellhostError, describeError } from './core/errors.ts';
import { createLogger, type Logger } from './core/log.ts';
import { createUndoList, type UndoList } from './core/undo-list.ts';
import { secureDataDir } from './data-dir.ts';
import { createHostCpu } from './instances/host-cpu.ts';
import { createDirectLauncher } from './instances/launcher.ts';
import { createPool, type PoolEvent } from './instances/pool/index.ts';
import { prewarmBudgetBytes } from './instances/pool/prewarm.ts';
import { createAcme, type ChallengeBoard } from './certs/acme.ts';
import { createDnsChecker, type DnsChecker } from './certs/dns-check.ts';
import { createDnsHook } from './certs/dns-hook.ts';
import { createCertManager, type CertManager } from './certs/manager.ts';
import { cgroupsLayer } from './isolation/cgroups-layer.ts';
import { claimHostNames } from './isolation/host-names.ts';
import { startIsolation, type Isolation, type IsolationPlan } from './isolation/layer.ts';
import { sandboxLayer } from './isolation/sandbox-layer.ts';
import { describeEvent } from './logs/events.ts';
import { createLogSink, type LogSink } from './logs/sink.ts';
import { createMeter } from './meter/meter.ts';
import { createPlatformQueues, withCronSecret } from './queues.ts';
import { EGRESS_BLOCKED } from './sandbox/netns-firewall.ts';
import { createSystemLayers, parseMountsUnder, type SystemLayers, type SystemLayersOptions } from './sandbox/system-layer.ts';
import { answerClientError } from './router/error-page.ts';
import { loadLlhttpBinding } from './core/llhttp-binding.ts';
import { createRouter } from './router/proxy.ts';
import { createRouteTable } from './router/route-table.ts';
import { createCertTable } from './router/tls-certs.ts';
import { createCertificateStore } from './store/certificates.ts';
import { newerSchemaError, readSchemaVersion, SCHEMA_VERSION } from './store/db.ts';
import { checkMasterKey, createEnvStore, type EnvStore } from './store/env.ts';
import { openStore, type Store } from './store/index.ts';
import { loadMasterKey, type MasterKey } from './store/secrets.ts';
import { createServiceSecrets, type ServiceSecrets } from './store/service-secrets.ts';
import { createBranchDeploys } from './control/branch-deploys.ts';
import { createPreviews } from './control/previews.ts';
import { writeHooks } from './git/push-hook.ts';
import { createPushDeploys } from './git/push-deploy.ts';
import { createGitRemote } from './git/remote.ts';
import { createGitRepos } from './git/repos.ts';
import { createHookReceiver } from './hooks/receiver.ts';
import { createPlatformRoutes } from './router/platform-routes.ts';
import { createHookStore, type HookStore } from './store/hooks.ts';
import { createPreviewStore } from './store/previews.ts';
import { createUsageStore } from './store/usage.ts';
import { VERSION } from './version.ts';

export interface RunningServer {
  routerUrl: string;
  /** the router's TLS listener, when HTTPS is on */
  httpsUrl: string | null;
  adminUrl: string;
  /** set only on the first start, when the admin token was generated */
  adminToken: string | null;
  /** which HTTP/1 server the router runs on (node:http when Node's parser binding is unusable) */
  httpParser: 'llhttp' | 'node:http';
  /** read the user's certificate and key again (SIGHUP); false when they did not load */
  reloadCertificates(): boolean;
  close(): Promise<void>;
}

export interface StartOptions {
  log?: Logger;
  clock?: Clock;
  /** where the first-start admin token is printed */
  announce?(line: string): void;
}

/** a service's event: in its own log (as a sentence) and in the platform's */
type OnEvent = (service: string, event: string, fields: Record<string, unknown>) => void;

export async function startServer(config: Config, opts: StartOptions = {}): Promise<RunningServer> {
  const log = opts.log ?? createLogger({ level: config.logLevel, pretty: config.logPretty });
  const undo = createUndoList(log);
  try {
    return await wire(config, { ...opts, log }, undo);
  } catch (err) {
    await undo.run();
    throw err;
  }
}

async function wire(config: Config, opts: StartOptions & { log: Logger }, undo: UndoList): Promise<RunningServer> {
  const { log } = opts;
  const clock = opts.clock ?? systemClock;
  const now = () => new Date(clock.now()).toISOString();

  // state: the data dir, the store and the master key
  prepareDataDir(config);
  const { store, envStore, secrets, hookStore, masterKey } = openState(config, log);
  undo.add('store', () => store.close());
  const adminToken = createFirstAdminToken(store, config, now(), opts.announce);
  const previewStore = createPreviewStore(store.db);
  const gitHooksDir = path.join(config.paths.run, 'git-hooks');
  const gitRepos = createGitRepos({ root: config.paths.git, hooksDir: gitHooksDir, homeDir: path.join(config.paths.run, 'git-home') });

  // isolation: the launchers, wrapped in every layer this host supports. The system layers' mounts
  // are held here too: control unmounts a deployment's views when its image goes
  const systemLayers = createSystemLayers(systemLayersOptions(config, log));
  const isolation = await setUpIsolation(config, log, {
    // services made before uids existed get theirs on first use
    uidFor: (name) => store.services.get(name)?.uid ?? store.services.assignUid(name, config.uidRange, now()),
    subuidBaseFor: (name) => store.services.get(name)?.subuidBase ?? null,
    systemLayers,
  });
  undo.add('isolation', async () => {
    await isolation.dispose();
    removeHostRunDir(config.hostRunDir, log);
  });
  for (const name of config.buildEnvUnset) log.warn('build.env_unset', { name, hint: 'CELLHOST_BUILD_ENV names it, but the platform\'s environment does not set it: builds do not get it' });

  // logs: each service's log, its env values masked in it
  const envValues = createEnvValues(envStore);
  const sink = createLogSink({ store: store.logs, clock, log, mask: (service, text) => envValues.masker(service).mask(text) });
  undo.add('logs', () => sink.close());
  const onEvent = serviceEvents(sink, log);

  // certificates: ordered, renewed and stored by the manager, served by SNI from the table it
  // fills; the challenges under way are on a board the router's listeners read
  const dnsChecker = createDnsChecker(config.dnsResolvers);
  const certTable = createCertTable();
  const certs = createCertificates(config, { store, masterKey, table: certTable, dns: dnsChecker, clock, log, onEvent });
  undo.add('certificates', () => certs.close());

  // the request path: the meter bills what the pool reports; the router reads the route table
  const usage = createUsageStore(store.db);
  const meter = createMeter({ clock, store: usage, log });
  undo.add('meter', () => meter.close());
  // Node's parser, when it works here and is not turned off, also reads the instances' answers
  const parser = loadLlhttpBinding({ disabled: config.httpParser === 'node' });
  const pool = createPool({
    launcher: isolation.launcher,
    upstreamParser: parser.ok ? parser.binding : null,
    observer: meter,
    freezeAfterMs: config.freezeAfterMs,
    standbys: config.standbys,
    hostCpu: createHostCpu(),
    // short of memory: under 5 % of RAM free, or under 256 MB
    isMemoryLow: () => os.freemem() < Math.min(os.totalmem() * 0.05, 256 * 1024 * 1024),
    prewarmBudgetBytes: prewarmBudgetBytes(config.prewarmMb, os.totalmem(), os.freemem()),
    startTimeoutMs: config.startTimeoutMs,
    queueLimit: config.queueLimit,
    queueTimeoutMs: config.queueTimeoutMs,
    clock,
    log,
    onEvent: ({ type, service, ...fields }: PoolEvent) => onEvent(service, type, fields),
    onOutput: (service, instanceId, deploymentId, stream, line) => sink.line(service, instanceId, deploymentId, stream, line),
  });
  undo.add('pool', () => pool.close(0));
  // what the pool runs: the live deployment with the service's env (and its cron secret)
  const targets = createTargetSync({ store, pool, envFor: (name) => withCronSecret(secrets, now(), log, name, envValues.forService(name)) });
  // cron jobs and async tasks: requests the platform sends its apps through the router, which
  // hands it the task intake's requests (the platform's own hosts only)
  const queues = createPlatformQueues({
    db: store.db,
    secrets,
    clock,
    log,
    domain: config.domain,
    dataDir: config.dataDir,
    timeoutFor: (name) => {
      const s = store.services.get(name);
      return (s ? s.requestTimeoutS * 1000 : 60_000) + config.startTimeoutMs + config.queueTimeoutMs + 5000;
    },
    serviceExists: (name) => store.services.get(name) !== undefined,
    assertService: (name) => {
      if (!store.services.get(name)) throw new CellhostError('ERR_SERVICE_NOT_FOUND', `no service named "${name}"`);
    },
    onSecretRotated: (name) => targets.sync(name),
    onEvent,
  });
  undo.add('queues', () => {
    queues.stop();
    return queues.close();
  });
  const routes = createRouteTable({ domain: config.domain });
  const platformRoutes = createPlatformRoutes();
  const router = createRouter({
    pool,
    routes,
    maxBodyBytes: config.maxBodyBytes,
    headersTimeoutMs: config.headersTimeoutMs,
    trustProxy: config.trustProxy,
    httpParser: config.httpParser,
    log,
    onRequest: (r) => meter.request(r.service, r.status, r.durationMs),
    // the platform's own routes on the public router, on hosts no service owns
    platform: platformRoutes.handle,
    https: config.https
      ? {
          contextFor: (name) => certTable.lookup(name),
          challengeContextFor: (name) => certs.challengeContextFor(name),
          challengeAnswer: (host, token) => certs.challengeAnswer(host, token),
          hasCertificate: (host) => certs.hasCertificate(host),
          port: config.https.port,
        }
      : undefined,
  });
  platformRoutes.add(queues.platformRoute);
  // the public HTTPS port once the TLS listener is bound (a test's port 0), for the services' URLs
  const httpsPort = () => (router.tls?.listening ? (router.tls.address() as net.AddressInfo).port : (config.https?.port ?? 443));

  // control: builds (deployments), services, env, domains
  const expectedRecords = (service: string) => dnsChecker.expectedRecords(isPublicDomain(config.domain) ? `${service}.${config.domain}` : null);
  const buildLogs = createLogHub(path.join(config.paths.logs, 'builds'));
  const deployments = createDeployments({
    store,
    queue: createBuildQueue({
      concurrency: config.buildConcurrency,
      onError: (job, err) => log.error('build.crashed', { deployment: job.id, error: describeError(err) }),
    }),
    logs: buildLogs,
    buildLauncher: isolation.buildLauncher,
    forgetSystemLayer: (id) => systemLayers.forget(id),
    subuidRange: config.subuidRange,
    paths: config.paths,
    sourceLimits: { maxBytes: config.maxUploadBytes, maxEntries: 100_000 },
    gitPolicy: { allowLocal: config.gitAllowLocal, allowHttp: config.gitAllowHttp },
    buildTimeoutMs: config.buildTimeoutS === undefined ? undefined : config.buildTimeoutS * 1000,
    outputLimits: {
      imageBytes: mbToBytes(config.buildMaxImageMb),
      cacheBytes: mbToBytes(config.buildMaxCacheMb),
      logBytes: mbToBytes(config.buildMaxLogMb),
    },
    minFreeBytes: mbToBytes(config.buildMinFreeMb),
    clock,
    log,
    envFor: (name) => envValues.forService(name).vars,
    buildSetup: () =>
      resolveBuildSetup({
        env: config.buildEnv,
        binds: config.buildBinds,
        hostConfig: config.buildHostConfig,
        forbidden: [config.dataDir, config.hostRunDir],
        // the firewall that drops private ranges exists only with network namespaces
        egress: isolation.report.features.netns ? { blocked: EGRESS_BLOCKED, allowed: config.egressAllow } : undefined,
      }),
    logTransform: (name) => envValues.masker(name).stream(),
    applyManifest: createManifestApply({ store, routes, clock, onEvent }),
    // a manifest's domains become the service's; no hook yet for its cron jobs: the build log says
    // they are not applied
    manifestSections: {
      domains: createManifestDomains({ store, routes, domain: config.domain, clock, onHostsChanged: () => certs.sync(), expectedRecords, onEvent }),
    },
    onLiveChanged: (name) => targets.sync(name),
    verifyStart: (service, id, options) => targets.verify(service, id, options),
    onEvent,
  });
  undo.add('deployments', () => {
    deployments.abortAll();
    return deployments.idle();
  });
  const services = createServices({
    store,
    pool,
    routes,
    targets,
    clock,
    log,
    domain: config.domain,
    // the router's port once it listens (a test's port 0), for the services' URLs
    publicPort: () => (router.listening ? (router.address() as { port: number }).port : config.http.port),
    imagesDir: config.paths.images,
    cacheDir: config.paths.cache,
    uidRange: config.uidRange,
    stopGraceMs: config.shutdownGraceMs,
    stopBuilds: (name) => deployments.stopBuilds(name),
    forgetSystemLayer: (id) => systemLayers.forget(id),
    removeKeptSource: (id) => deployments.removeKeptSource(id),
    removeBuildLog: (id) => buildLogs.remove(id),
    flushLogs: () => sink.flush(),
    previewOf: (name) => {
      const p = previewStore.get(name);
      return p ? { parent: p.parent, branch: p.branch, pullRequest: p.pullRequest } : null;
    },
    onRemoved: async (name) => {
      // a parent's previews go with it; a preview's record stays, closed, for usage
      await previews.removeAllOf(name);
      previews.forget(name);
      await gitRepos.remove(name);
    },
    onEvent,
    onHostsChanged: () => certs.sync(),
    secureUrl: (name) => {
      const host = `${name}.${config.domain}`;
      if (!config.https || !certs.hasCertificate(host)) return null;
      const port = httpsPort();
      return `https://${host}${port === 443 ? '' : `:${port}`}`;
    },
  });
  const domains = createDomains({ services, certs, domain: config.domain, expectedRecords });
  const env = createEnvControl({
    env: envStore,
    values: envValues,
    clock,
    assertService: (name) => void services.get(name),
    onChanged: (name) => targets.sync(name),
    onEvent,
  });

  // git: a remote per service (git push deploys), forges' webhooks, previews of branches
  const previews = createPreviews({ previews: previewStore, services, env, clock, log, onEvent });
  const branches = createBranchDeploys({ services, deployments, previews, history: store.deployments });
  await writeHooks(gitHooksDir);
  platformRoutes.add(createHookReceiver({ hooks: hookStore, services, branches, clock, log, onEvent }).handle);
  const gitRemote = createGitRemote({
    repos: gitRepos,
    push: createPushDeploys({ repos: gitRepos, services, branches, deployments: store.deployments, logs: buildLogs, uploadDir: path.join(config.paths.builds, 'uploads'), log }),
    log,
  });

  // what a crash left: interrupted builds marked, then every service's target set
  const interrupted = await deployments.recover();
  if (interrupted) log.warn('deploy.interrupted_on_restart', { count: interrupted });
  targets.syncAll();

  // listeners: the router, then the admin listener (the management API and the console)
  await listen(router, config.http.host, config.http.port, undo);
  if (router.tls && config.https) await listen(router.tls, config.https.host, config.https.port, undo);
  certs.start();
  queues.start(router.address() as { address: string; port: number });
  const sessions = createSessions({ tokens: store.tokens, now: () => clock.now() });
  const reports = {
    services,
    usage,
    meter,
    price: config.priceGbS,
    now: () => clock.now(),
    instances: (name: string) => pool.instances(name).length,
    extraMetrics: () => queues.metricsText() + certs.metrics(),
    previewParents: () => previewStore.parents(),
  };
  const hooks = {
    hooks: hookStore,
    hookUrl: (name: string) => {
      const port = (router.address() as { port: number }).port;
      return `http://${config.domain}${port === 80 ? '' : `:${port}`}/hooks/${name}`;
    },
    checkRepository: (url: string) => void checkGitUrl(url, { allowLocal: config.gitAllowLocal, allowHttp: config.gitAllowHttp }),
  };
  const uploads = { uploadDir: path.join(config.paths.builds, 'uploads'), maxUploadBytes: config.maxUploadBytes };
  const adminApp = createApi({
    version: VERSION,
    store,
    services,
    deployments,
    logs: buildLogs,
    isolation: () => isolation.report,
    sink,
    env,
    usage: reports,
    cron: queues.cron,
    tasks: queues.tasks,
    domains,
    ...uploads,
    now,
    log,
    sessions,
    git: gitRemote,
    previews,
    hooks,
  });
  // the console, at / beside the API: the same control objects, its own sessions
  adminApp.route('/', createUi({ store, services, deployments, logs: buildLogs, sink, env, domains, cron: queues.cron, tasks: queues.tasks, hooks, previews, sessions, ...uploads, now, log, ...meteredUi(reports) }));
  const admin = await serveAdmin(adminApp.fetch, config.admin.host, config.admin.port);
  // prewarmed instances come back in the background, the most recently used services first, once
  // nothing in the start can fail any more
  void targets.prewarmRecent(usage.lastUsed()).catch((err) => log.error('prewarm.restart_failed', { error: describeError(err) }));
  const routerUrl = `http://${hostForUrl(config.http.host)}:${(router.address() as { port: number }).port}`;
  const httpsUrl = router.tls && config.https ? `https://${hostForUrl(config.https.host)}:${httpsPort()}` : null;
  const adminUrl = `http://${hostForUrl(config.admin.host)}:${(admin.address() as { port: number }).port}`;
  log.info('serve.started', { router: routerUrl, https: httpsUrl, admin: adminUrl, data: config.dataDir, version: VERSION, httpParser: router.engine });

  let closing: Promise<void> | null = null;
  return {
    routerUrl,
    httpsUrl,
    adminUrl,
    adminToken,
    httpParser: router.engine,
    reloadCertificates: () => certs.reloadUserCertificate(),
    // the reverse of the start: stop taking work, let in-flight work end, then free what is held
    close: () =>
      (closing ??= (async () => {
        log.info('serve.stopping', {});
        queues.stop();
        const routerClosed = new Promise<void>((r) => router.close(() => r()));
        const tlsClosed = new Promise<void>((r) => (router.tls ? router.tls.close(() => r()) : r()));
        admin.close();
        router.closeIdleConnections();
        router.tls?.closeIdleConnections();
        await certs.close();
        deployments.abortAll();
        await pool.close(config.shutdownGraceMs);
        meter.close();
        await deployments.idle();
        router.closeAllConnections();
        router.tls?.closeAllConnections();
        (admin as http.Server).closeAllConnections?.();
        await routerClosed;
        await tlsClosed;
        await queues.close();
        sink.close();
        store.close();
        await isolation.dispose();
        removeHostRunDir(config.hostRunDir, log);
        log.info('serve.stopped', {});
      })()),
  };
}

/**
 * The isolation layers, outermost first: cgroups around the sandbox around the app. Each is used
 * when this host supports it, and named with the reason when not; `cellhost doctor` probes this
 * same list.
 */
export function isolationPlan(
  config: Config,
  deps: {
    log: Logger;
    uidFor(service: string): number;
    /** the first id of the service's block of subuids, if it has one */
    subuidBaseFor?(service: string): number | null;
    /** the system layers' mounts (the server's, to unmount a deployment's views); default: a new one (doctor) */
    systemLayers?: SystemLayers;
  },
): IsolationPlan {
  return {
    layers: [
      cgroupsLayer({
        root: config.cgroupRoot,
        prefix: config.cgroupPrefix,
        pidsMax: config.pidsMax,
        startupBoost: config.startupBoost,
        buildMemoryMb: config.buildMemoryMb,
        log: deps.log,
      }),
      sandboxLayer({
        dataDir: config.dataDir,
        imagesDir: config.paths.images,
        cacheDir: config.paths.cache,
        hostRunDir: config.hostRunDir,
        netns: { prefix: config.netnsPrefix, subnet: config.netnsSubnet, warm: config.netnsWarm, egressAllow: config.egressAllow },
        uidFor: deps.uidFor,
        systemLayers: {
          layers: deps.systemLayers ?? createSystemLayers(systemLayersOptions(config, deps.log)),
          dir: systemLayersDir(config),
          upperRoot: config.paths.run,
          subuidRange: config.subuidRange,
          subuidBaseFor: deps.subuidBaseFor ?? (() => null),
          log: deps.log,
        },
        log: deps.log,
      }),
    ],
    off: config.isolation === 'off' ? 'isolation is off (CELLHOST_ISOLATION=off): apps run as plain children of the platform, without limits' : undefined,
  };
}

const systemLayersDir = (config: Config) => path.join(config.hostRunDir, 'layers');

/** where system layers are mounted, and what of the host no layer build may see: the data dir and the host run dir */
function systemLayersOptions(config: Config, log: Logger): SystemLayersOptions {
  let dataDir = config.dataDir;
  try {
    dataDir = fs.realpathSync(config.dataDir);
  } catch {
    // doctor on a host without the data dir yet: nothing there to hide
  }
  return { dir: systemLayersDir(config), hidden: [dataDir, config.hostRunDir], log };
}

/** the plain launchers wrapped in every isolation layer this host supports */
async function setUpIsolation(
  config: Config,
  log: Logger,
  deps: { uidFor(service: string): number; subuidBaseFor(service: string): number | null; systemLayers: SystemLayers },
): Promise<Isolation> {
  const plan = isolationPlan(config, { log, ...deps });
  // reclaiming leftovers kills whatever lives under these names: make sure no live platform does
  if (!plan.off && process.getuid?.() === 0) claimHostNames(config);
  const isolation = await startIsolation(plan, {
    launcher: createDirectLauncher({ runDir: config.paths.run }),
    buildLauncher: createDirectBuildLauncher({ runDir: config.paths.run }),
  });
  for (const reason of isolation.report.reasons) log.warn('isolation.limited', { reason });
  return isolation;
}

/** the host run dir goes at a clean stop, but never through a mount still in it (a view of the host's /usr) */
function removeHostRunDir(dir: string, log: Logger): void {
  let left: string[] = [];
  try {
    left = parseMountsUnder(fs.readFileSync('/proc/self/mountinfo', 'utf8'), path.resolve(dir)).map((m) => m.mountPoint);
  } catch (err) {
    log.warn('serve.mountinfo_unreadable', { error: describeError(err) });
  }
  if (left.length) {
    log.error('serve.mounts_left', { dir, mounts: left, hint: 'the next start unmounts them' });
    return;
  }
  fs.rmSync(dir, { recursive: true, force: true });
}

/** refuses a data dir from a newer version before touching it, tightens it, empties run/ */
function prepareDataDir(config: Config): void {
  const schema = readSchemaVersion(config.paths.db);
  if (schema !== null && schema > SCHEMA_VERSION) throw newerSchemaError(config.paths.db, schema);
  secureDataDir(config);
  // instance and build homes from a previous run are stale whatever happened to it
  for (const entry of fs.readdirSync(config.paths.run)) fs.rmSync(path.join(config.paths.run, entry), { recursive: true, force: true });
}

/** the store, and the env store under the master key (which must open what the store holds) */
function openState(config: Config, log: Logger): { store: Store; envStore: EnvStore; secrets: ServiceSecrets; hookStore: HookStore; masterKey: MasterKey } {
  const store = openStore(config.paths.db);
  try {
    const loaded = loadMasterKey({ fromEnv: config.masterKey, file: config.paths.masterKey, create: true });
    if (loaded.created) log.info('secrets.key_created', { file: config.paths.masterKey });
    checkMasterKey(store.db, loaded.key);
    const key = () => loaded.key;
    return { store, envStore: createEnvStore(store.db, key), secrets: createServiceSecrets(store.db, key), hookStore: createHookStore(store.db, key), masterKey: loaded.key };
  } catch (err) {
    store.close();
    throw err;
  }
}

/**
 * The certificate manager: with HTTPS on, an ACME client for the configured CA (the DNS-01 hook
 * for the platform's wildcard when one is set) and the user's certificate files; with it off,
 * nothing is ordered and nothing stored is thrown away.
 */
function createCertificates(
  config: Config,
  deps: { store: Store; masterKey: MasterKey; table: ReturnType<typeof createCertTable>; dns: DnsChecker; clock: Clock; log: Logger; onEvent: OnEvent },
): CertManager {
  const { log } = deps;
  const certStore = createCertificateStore(deps.store.db, () => deps.masterKey);
  const board: ChallengeBoard = { http01: new Map(), alpn: new Map() };
  return createCertManager({
    store: certStore,
    services: () => deps.store.services.list(),
    table: deps.table,
    board,
    acme: config.https
      ? createAcme({
          directory: config.acme.directory,
          email: config.acme.email,
          caFile: config.acme.caFile,
          store: certStore,
          board,
          dnsHook: config.acme.dnsHook ? createDnsHook(config.acme.dnsHook) : null,
          dns: deps.dns,
          now: () => deps.clock.now(),
          log,
        })
      : null,
    dns: deps.dns,
    domain: config.domain,
    wildcard: Boolean(config.acme.dnsHook),
    challenges: config.acme.challenges,
    directory: config.acme.directory,
    userCert: config.https ? config.tls : null,
    clock: deps.clock,
    log,
    // a certificate of a service is an event in its log; the platform wildcard's is the platform's
    onEvent: (service, event, fields) => {
      if (service) deps.onEvent(service, event, fields);
      else log.info(`certs.${event}`, fields);
    },
  });
}

/** on the first start, an admin token: printed once unless it was configured */
function createFirstAdminToken(store: Store, config: Config, now: string, announce: (line: string) => void = (line) => process.stdout.write(line + '\n')): string | null {
  if (store.tokens.count() > 0) return null;
  const token = store.tokens.create('admin', now, config.adminToken).token;
  if (!config.adminToken) announce(`cellhost: admin token (shown once, keep it): ${token}`);
  return token;
}

function serviceEvents(sink: LogSink, log: Logger): OnEvent {
  return (service, event, fields) => {
    sink.event(service, event, describeEvent(event, fields), fields);
    log.info(`service.${event}`, { service, ...fields });
  };
}

function serveAdmin(fetch: (req: Request) => Response | Promise<Response>, host: string, port: number): Promise<ServerType> {
  return new Promise<ServerType>((resolve, reject) => {
    const s = serve({ fetch, hostname: host, port }, () => resolve(s));
    s.once('error', reject);
    s.on('clientError', answerClientError);
  });
}

/** binds a listener; a start that fails after it closes it again */
function listen(server: net.Server, host: string, port: number, undo: UndoList): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      undo.add('listener', () => new Promise<void>((r) => server.close(() => r())));
      resolve();
    });
  });
}

function mbToBytes(mb: number | undefined): number | undefined {
  return mb === undefined ? undefined : Math.round(mb * 1024 * 1024);
}

function hostForUrl(host: string): string {
  if (host === '0.0.0.0' || host === '::') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}

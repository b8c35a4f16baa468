// The composition root: config → store → pool, builder, control → router and admin listeners.
// Everything is created here and passed down; nothing below imports its peers' singletons.
import fs from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { serve, type ServerType } from '@hono/node-server';
import { createLogHub } from '../builder/log-hub.ts';
import { createBuildQueue } from '../builder/queue.ts';
import { createApi } from './api/app.ts';
import { createUi } from '../ui/app.tsx';
import { meteredUi } from '../ui/metrics.ts';
import { createSessions } from '../ui/session.ts';
import { createDeployments } from './control/deployments.ts';
import { createDomains } from './control/domains.ts';
import { createServices } from './control/services.ts';
import { systemClock, type Clock } from './core/clock.ts';
import { isPublicDomain, type Config } from './core/config.ts';
import { describeError } from './core/errors.ts';
import { createLogger, type Logger } from './core/log.ts';
import { describeEvent } from './logs/events.ts';
import { createLogSink } from './logs/sink.ts';
import { secureDataDir } from './data-dir.ts';
import { setUpIsolation } from './isolation.ts';
import { createHostCpu } from './instances/host-cpu.ts';
import { createPool, type PoolEvent } from './instances/pool/index.ts';
import { answerClientError } from './router/error-page.ts';
import { createRouter } from './router/proxy.ts';
import { createH2Handler } from './router/h2.ts';
import { createCertTable } from './router/tls-certs.ts';
import { createTlsListener, type TlsListener } from './router/tls-listener.ts';
import { createAcme, type ChallengeBoard } from './certs/acme.ts';
import { createDnsChecker } from './certs/dns-check.ts';
import { createDnsHook } from './certs/dns-hook.ts';
import { createCertManager } from './certs/manager.ts';
import { createCertificateStore } from './store/certificates.ts';
import { createEnvControl, type EnvControl } from './control/env.ts';
import { createServiceSecrets } from './store/service-secrets.ts';
import { checkMasterKey, createEnvStore } from './store/env.ts';
import { openStore } from './store/index.ts';
import { newerSchemaError, readSchemaVersion, SCHEMA_VERSION } from './store/db.ts';
import { createUsageStore } from './store/usage.ts';
import { createMeter } from './meter/meter.ts';
import { loadMasterKey, type MasterKey } from './store/secrets.ts';
import { createPlatformQueues } from './queues.ts';
import { VERSION } from './version.ts';

export interface RunningServer {
  routerUrl: string;
  /** the HTTPS listener, when there is one */
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

export async function startServer(config: Config, opts: StartOptions = {}): Promise<RunningServer> {
  const log = opts.log ?? createLogger({ level: config.logLevel, pretty: config.logPretty });
  const clock = opts.clock ?? systemClock;
  const now = () => new Date(clock.now()).toISOString();
  // a data dir from a newer version is refused before anything in it is touched
  const schema = readSchemaVersion(config.paths.db);
  if (schema !== null && schema > SCHEMA_VERSION) throw newerSchemaError(config.paths.db, schema);
  secureDataDir(config);
  // instance and build homes from a previous run are stale whatever happened to it
  for (const entry of fs.readdirSync(config.paths.run)) fs.rmSync(path.join(config.paths.run, entry), { recursive: true, force: true });

  const store = openStore(config.paths.db);
  let masterKey: MasterKey;
  try {
    const loaded = loadMasterKey({ fromEnv: config.masterKey, file: config.paths.masterKey, create: true });
    masterKey = loaded.key;
    if (loaded.created) log.info('secrets.key_created', { file: config.paths.masterKey });
    checkMasterKey(store.db, masterKey);
  } catch (err) {
    store.close();
    throw err;
  }
  const envStore = createEnvStore(store.db, () => masterKey);
  const secrets = createServiceSecrets(store.db, () => masterKey);
  let adminToken: string | null = null;
  if (store.tokens.count() === 0) {
    adminToken = store.tokens.create('admin', now(), config.adminToken).token;
    if (!config.adminToken) (opts.announce ?? ((l) => process.stdout.write(l + '\n')))(`cellhost: admin token (shown once, keep it): ${adminToken}`);
  }

  const isolated = await setUpIsolation(config, log, {
    reclaim: true,
    // services made before uids existed get theirs on first use
    uidFor: (name) => store.services.get(name)?.uid ?? store.services.assignUid(name, config.uidRange, now()),
  });
  const launcher = isolated.launcher;
  const isolation = isolated.report;
  for (const reason of isolation.reasons) log.warn('isolation.limited', { reason });

  let envControl: EnvControl | null = null;
  const sink = createLogSink({ store: store.logs, clock, log, mask: (service, text) => envControl?.masker(service).mask(text) ?? text });
  const onEvent = (service: string, event: string, fields: Record<string, unknown>) => {
    sink.event(service, event, describeEvent(event, fields), fields);
    log.info(`service.${event}`, { service, ...fields });
  };
  const usage = createUsageStore(store.db);
  // the pool is created just below; the meter asks it how many instances a service has
  let instancesNow: (service: string) => number = () => 0;
  const meter = createMeter({ clock, store: usage, log, instancesNow: (s) => instancesNow(s) });
  const pool = createPool({
    launcher,
    observer: meter,
    freezeAfterMs: config.freezeAfterMs,
    standbys: config.standbys,
    hostCpu: createHostCpu(),
    // short of memory: under 5 % of RAM free, or under 256 MB
    isMemoryLow: () => os.freemem() < Math.min(os.totalmem() * 0.05, 256 * 1024 * 1024),
    startTimeoutMs: config.startTimeoutMs,
    queueLimit: config.queueLimit,
    queueTimeoutMs: config.queueTimeoutMs,
    clock,
    log,
    onEvent: ({ type, service, ...fields }: PoolEvent) => onEvent(service, type, fields),
    onOutput: (service, instanceId, deploymentId, stream, line) => sink.line(service, instanceId, deploymentId, stream, line),
  });
  instancesNow = (name) => pool.instances(name).length;
  // HTTPS: certificates by SNI from a table the certificate manager fills; challenges it
  // publishes on a board the listeners read
  const certTable = createCertTable();
  const board: ChallengeBoard = { http01: new Map(), alpn: new Map() };
  const dnsChecker = createDnsChecker(config.dnsResolvers);
  let tlsServer: TlsListener | null = null;
  const httpsPort = () => (tlsServer?.listening ? (tlsServer.address() as { port: number }).port : (config.https?.port ?? 443));
  const certStore = createCertificateStore(store.db, () => masterKey);
  const certs = createCertManager({
    store: certStore,
    services: () => store.services.list(),
    table: certTable,
    board,
    acme: config.https
      ? createAcme({
          directory: config.acme.directory,
          email: config.acme.email,
          caFile: config.acme.caFile,
          store: certStore,
          board,
          dnsHook: config.acme.dnsHook ? createDnsHook(config.acme.dnsHook) : null,
          dns: dnsChecker,
          now: () => clock.now(),
          log,
        })
      : null,
    dns: dnsChecker,
    domain: config.domain,
    wildcard: Boolean(config.acme.dnsHook),
    challenges: config.acme.challenges,
    directory: config.acme.directory,
    userCert: config.https ? config.tls : null,
    clock,
    log,
    onEvent: (service, event, fields) => {
      if (service) onEvent(service, event, fields);
      else log.info(`certs.${event}`, fields);
    },
  });
  // created before the control plane, which asks it for the public port; it listens later
  const router = createRouter({
    pool,
    resolve: (host) => services.resolve(host),
    maxBodyBytes: config.maxBodyBytes,
    headersTimeoutMs: config.headersTimeoutMs,
    trustProxy: config.trustProxy,
    httpParser: config.httpParser,
    log,
    onRequest: (r) => meter.request(r.service, r.status, r.durationMs),
    platform: (req, requestId) => queues.platformRoute(req, requestId),
    https: config.https
      ? { challengeAnswer: (host, token) => certs.challengeAnswer(host, token), hasCertificate: (host) => certs.hasCertificate(host), port: httpsPort }
      : undefined,
  });
  const h2 = createH2Handler({ serve: router.serve, maxHeaderBytes: 64 * 1024, headersTimeoutMs: config.headersTimeoutMs, keepAliveTimeoutMs: 65_000 });
  const services = createServices({
    store,
    pool,
    clock,
    log,
    domain: config.domain,
    publicPort: () => (router.listening ? (router.address() as { port: number }).port : config.http.port),
    imagesDir: config.paths.images,
    cacheDir: config.paths.cache,
    uidRange: config.uidRange,
    stopGraceMs: config.shutdownGraceMs,
    stopBuilds: (name) => deployments.stopBuilds(name),
    removeBuildLog: (id) => logs.remove(id),
    flushLogs: () => sink.flush(),
    // the app's env plus CELLHOST_CRON_SECRET (its rotation replaces instances like an env change)
    envFor: (name) => queues.withCronSecret(name, envControl!.forService(name)),
    onEvent,
    onHostsChanged: () => certs.sync(),
    secureUrl: (name) => {
      const host = `${name}.${config.domain}`;
      if (!config.https || !certs.hasCertificate(host)) return null;
      const port = httpsPort();
      return `https://${host}${port === 443 ? '' : `:${port}`}`;
    },
  });
  const domains = createDomains({
    services,
    certs,
    domain: config.domain,
    expectedRecords: (service) => dnsChecker.expectedRecords(isPublicDomain(config.domain) ? `${service}.${config.domain}` : null),
  });
  // cron and async tasks: requests the platform sends its apps through the router
  const queues = createPlatformQueues({
    db: store.db,
    secrets,
    clock,
    log,
    domain: config.domain,
    dataDir: config.dataDir,
    routerAddress: () => router.address() as { address: string; port: number },
    timeoutFor: (name) => {
      const s = store.services.get(name);
      return (s ? s.requestTimeoutS * 1000 : 60_000) + config.startTimeoutMs + config.queueTimeoutMs + 5000;
    },
    serviceExists: (name) => {
      try {
        services.get(name);
        return true;
      } catch {
        return false;
      }
    },
    assertService: (name) => void services.get(name),
    onSecretRotated: (name) => services.sync(name),
    onEvent,
  });
  const logs = createLogHub(path.join(config.paths.logs, 'builds'));
  const queue = createBuildQueue({
    concurrency: config.buildConcurrency,
    onError: (job, err) => log.error('build.crashed', { deployment: job.id, error: describeError(err) }),
  });
  const deployments = createDeployments({
    store,
    queue,
    logs,
    buildLauncher: isolated.buildLauncher,
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
    envFor: (name) => envControl!.forService(name).vars,
    logTransform: (name) => envControl!.masker(name).stream(),
    applyManifest: (name, manifest) => void services.applyManifest(name, manifest),
    // a manifest's domains become the service's; no hook yet for its cron jobs: the build log
    // says they are not applied
    manifestSections: { domains: (name, names) => domains.replaceAll(name, names) },
    onLiveChanged: (name) => services.sync(name),
    onEvent,
  });
  envControl = createEnvControl({
    env: envStore,
    clock,
    assertService: (name) => void services.get(name),
    onChanged: (name) => services.sync(name),
    onEvent,
  });
  const interrupted = await deployments.recover();
  if (interrupted) log.warn('deploy.interrupted_on_restart', { count: interrupted });
  services.syncAll();

  await listen(router, config.http.host, config.http.port);
  if (config.https) {
    tlsServer = createTlsListener({
      contextFor: (name) => certTable.lookup(name),
      challengeContextFor: (name) => certs.challengeContextFor(name),
      http1: router,
      h2,
      handshakeTimeoutMs: config.headersTimeoutMs,
    });
    await listen(tlsServer, config.https.host, config.https.port);
  }
  certs.start();
  queues.start();
  const sessions = createSessions({ tokens: store.tokens, now: () => clock.now() });
  const api = createApi({
    version: VERSION,
    store,
    services,
    deployments,
    logs,
    isolation: () => isolation,
    sink,
    env: envControl,
    usage: { services, usage, meter, price: config.priceGbS, now: () => clock.now(), instances: (name) => pool.instances(name).length, extraMetrics: () => queues.metricsText() + certs.metrics() },
    domains,
    cron: queues.cron,
    tasks: queues.tasks,
    uploadDir: path.join(config.paths.builds, 'uploads'),
    maxUploadBytes: config.maxUploadBytes,
    now,
    log,
    sessions,
    ui: (deps) => createUi({ ...deps, sessions, ...meteredUi(deps.usage) }),
  });
  const admin = await new Promise<ServerType>((resolve, reject) => {
    const s = serve({ fetch: api.fetch, hostname: config.admin.host, port: config.admin.port }, () => resolve(s));
    s.once('error', reject);
    s.on('clientError', answerClientError);
  });
  const routerUrl = `http://${hostForUrl(config.http.host)}:${(router.address() as { port: number }).port}`;
  const httpsUrl = tlsServer ? `https://${hostForUrl(config.https!.host)}:${httpsPort()}` : null;
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
    close: () =>
      (closing ??= (async () => {
        log.info('serve.stopping', {});
        queues.stop();
        const routerClosed = new Promise<void>((r) => router.close(() => r()));
        const tlsClosed = tlsServer ? new Promise<void>((r) => tlsServer!.close(() => r())) : Promise.resolve();
        admin.close();
        router.closeIdleConnections();
        h2.closeIdleSessions();
        await certs.close();
        deployments.abortAll();
        await pool.close(config.shutdownGraceMs);
        meter.close();
        await deployments.idle();
        router.closeAllConnections();
        h2.closeAllSessions();
        tlsServer?.closeAllConnections();
        (admin as http.Server).closeAllConnections?.();
        await routerClosed;
        await tlsClosed;
        await queues.close();
        sink.close();
        store.close();
        await isolated.dispose();
        log.info('serve.stopped', {});
      })()),
  };
}

function listen(server: net.Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
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

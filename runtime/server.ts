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
import { createServices } from './control/services.ts';
import { systemClock, type Clock } from './core/clock.ts';
import type { Config } from './core/config.ts';
import { describeError } from './core/errors.ts';
import { createLogger, type Logger } from './core/log.ts';
import { describeEvent } from './logs/events.ts';
import { createLogSink } from './logs/sink.ts';
import { secureDataDir } from './data-dir.ts';
import { setUpIsolation } from './isolation.ts';
import { createHostCpu } from './instances/host-cpu.ts';
import { createPool, type PoolEvent } from './instances/pool.ts';
import { answerClientError } from './router/error-page.ts';
import { createRouter } from './router/proxy.ts';
import { createEnvControl, type EnvControl } from './control/env.ts';
import { checkMasterKey, createEnvStore } from './store/env.ts';
import { openStore } from './store/index.ts';
import { createUsageStore } from './store/usage.ts';
import { createMeter } from './meter/meter.ts';
import { loadMasterKey, type MasterKey } from './store/secrets.ts';
import { VERSION } from './version.ts';

export interface RunningServer {
  routerUrl: string;
  adminUrl: string;
  /** set only on the first start, when the admin token was generated */
  adminToken: string | null;
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
  let adminToken: string | null = null;
  if (store.tokens.count() === 0) {
    adminToken = store.tokens.create('admin', now(), config.adminToken).token;
    if (!config.adminToken) (opts.announce ?? ((l) => process.stdout.write(l + '\n')))(`cellhost: admin token (shown once, keep it): ${adminToken}`);
  }

  const isolated = await setUpIsolation(config, log, {
    reclaim: true,
    // services made before uids existed get theirs on first use
    uidFor: (name) => store.services.get(name)?.uid ?? store.services.assignUid(name, config.uidRange, now()),
    subuidBaseFor: (name) => store.services.get(name)?.subuidBase ?? null,
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
  // created before the control plane, which asks it for the public port; it listens later
  const router = createRouter({
    pool,
    resolve: (host) => services.resolve(host),
    maxBodyBytes: config.maxBodyBytes,
    headersTimeoutMs: config.headersTimeoutMs,
    log,
    onRequest: (r) => meter.request(r.service, r.status, r.durationMs),
  });
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
    forgetSystemLayer: (id) => isolated.forgetSystemLayer(id),
    removeKeptSource: (id) => deployments.removeKeptSource(id),
    removeBuildLog: (id) => logs.remove(id),
    flushLogs: () => sink.flush(),
    envFor: (name) => envControl!.forService(name),
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
    forgetSystemLayer: (id) => isolated.forgetSystemLayer(id),
    subuidRange: config.subuidRange,
    paths: config.paths,
    sourceLimits: { maxBytes: config.maxUploadBytes, maxEntries: 100_000 },
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
    usage: { services, usage, meter, price: config.priceGbS, now: () => clock.now(), instances: (name) => pool.instances(name).length },
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
  const adminUrl = `http://${hostForUrl(config.admin.host)}:${(admin.address() as { port: number }).port}`;
  log.info('serve.started', { router: routerUrl, admin: adminUrl, data: config.dataDir, version: VERSION });

  let closing: Promise<void> | null = null;
  return {
    routerUrl,
    adminUrl,
    adminToken,
    close: () =>
      (closing ??= (async () => {
        log.info('serve.stopping', {});
        const routerClosed = new Promise<void>((r) => router.close(() => r()));
        admin.close();
        router.closeIdleConnections();
        deployments.abortAll();
        await pool.close(config.shutdownGraceMs);
        meter.close();
        await deployments.idle();
        router.closeAllConnections();
        (admin as http.Server).closeAllConnections?.();
        await routerClosed;
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

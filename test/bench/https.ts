// HTTPS against nginx terminating TLS with the same certificate in front of the same app
// instance: keep-alive throughput (wrk over https), new TLS connections per second (wrk with
// `Connection: close`: a full handshake and one request each), and what HTTPS adds to p99 at a
// fixed 1000 req/s over direct HTTP to the app. Beside cellhost in the keep-alive and fixed-rate
// rounds, Node's floor: a Node process that terminates TLS and pipes the bytes to the same
// instance, with no HTTP (test/bench/tcp-pipe.ts). Runs alone (`node --import tsx
// test/bench/https.ts`, after `npm run build`) or from run.ts (BENCH_ONLY=https).
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { FIXTURES } from '../helpers/server.ts';
import { freePortSync } from '../helpers/subprocess-server.ts';
import { startChild } from './child.ts';
import { deferCleanup } from './cleanup.ts';
import { mergeFixedRate, prepareFixedRate, type FixedRateResult } from './fixed-rate.ts';
import { findListenAddress } from './instance-address.ts';
import { startNginx } from './nginx.ts';
import { getViaRouter, startPlatform } from './platform.ts';
import { FIXED_RATE, WRK_ROUNDS } from './proxy.ts';
import { runIfMain } from './standalone.ts';
import { formatMs, formatRate, formatRatio } from './stats.ts';
import { findBinary, runWrk, type WrkResult } from './wrk.ts';

const SERVICE = 'proxy';
const HOST = `${SERVICE}.localhost`;

interface HttpsResults {
  /** what each negotiated with a client offering TLS 1.2 and 1.3 */
  versions: { nginx: string; cellhost: string };
  keepAlive: { nginx: WrkResult; cellhost: WrkResult; pipe: WrkResult };
  handshakes: { nginx: WrkResult; cellhost: WrkResult; bare: WrkResult };
  fixed: { direct: FixedRateResult; cellhost: FixedRateResult; pipe: FixedRateResult };
  /** what sent the fixed-rate requests */
  fixedGenerator: string;
}

/** a self-signed P-256 certificate for `localhost` (wrk asks for the URL's host by SNI) and the service */
function makeCertificate(dir: string): { cert: string; key: string } {
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=localhost', '-addext', `subjectAltName=DNS:localhost,DNS:${HOST}`], { stdio: 'ignore' });
  // nginx's workers drop to "nobody"
  fs.chmodSync(dir, 0o755);
  fs.chmodSync(key, 0o644);
  return { cert, key };
}

/**
 * node:https alone in its own process, answering every request itself (no routing, no upstream):
 * what one Node event loop's TLS handshakes allow, whatever is built on it
 */
async function startBareNodeHttps(cert: string, key: string): Promise<{ port: number; close(): void }> {
  const script = `const https = require('node:https'); const fs = require('node:fs');
    const s = https.createServer({ cert: fs.readFileSync(process.env.CERT), key: fs.readFileSync(process.env.KEY) }, (q, r) => {
      r.writeHead(200, { 'content-type': 'text/plain', 'content-length': '5' }); r.end('hello');
    });
    s.listen(0, '127.0.0.1', () => process.stdout.write(s.address().port + '\\n'));`;
  const child = spawn(process.execPath, ['-e', script], { env: { PATH: process.env.PATH ?? '', CERT: cert, KEY: key }, stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.once('data', (b: Buffer) => resolve(Number(b.toString().trim())));
    child.once('exit', (code) => reject(new Error(`the bare node:https server exited (${code})`)));
  });
  return { port, close: () => void child.kill('SIGKILL') };
}

/** Node's floor for HTTPS: node:tls in front of the instance, piping bytes to it (no HTTP) */
async function startTlsPipe(upstream: { host: string; port: number }, cert: string, key: string): Promise<{ port: number; stop(): Promise<void> }> {
  const port = await freePortSync();
  const script = fileURLToPath(new URL('./tcp-pipe.ts', import.meta.url));
  const child = await startChild(process.execPath, ['--import', 'tsx', script, upstream.host, String(upstream.port), String(port), cert, key], {}, /ready/);
  return { port, stop: child.stop };
}

/** the TLS version a server settles on with a client offering 1.2 and 1.3, as wrk does */
function negotiatedVersion(port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', rejectUnauthorized: false }, () => {
      resolve(s.getProtocol() ?? 'none');
      s.destroy();
    });
    s.once('error', (err) => resolve(`failed: ${err.message}`));
  });
}

/** the median run by req/s of WRK_ROUNDS, nginx and cellhost taking turns */
async function alternate(wrk: string, targets: { name: string; url: string }[], headers: string[], log: (line: string) => void, what: string): Promise<Record<string, WrkResult>> {
  const runs: Record<string, WrkResult[]> = Object.fromEntries(targets.map((t) => [t.name, []]));
  for (const t of targets) await runWrk(wrk, t.url, { host: HOST, headers, durationS: 3 });
  for (let round = 0; round < WRK_ROUNDS; round++) {
    for (let k = 0; k < targets.length; k++) {
      const t = targets[(round + k) % targets.length]!;
      const r = await runWrk(wrk, t.url, { host: HOST, headers });
      runs[t.name]!.push(r);
      log(`https: ${what} ${t.name}: ${Math.round(r.requestsPerS)} req/s${r.errors ? ` (${r.errors} errors)` : ''}`);
    }
  }
  return Object.fromEntries(Object.entries(runs).map(([name, rs]) => [name, [...rs].sort((a, b) => a.requestsPerS - b.requestsPerS)[Math.floor(rs.length / 2)]!]));
}

async function benchHttps(log: (line: string) => void): Promise<HttpsResults> {
  const wrk = findBinary('wrk');
  const nginxBin = findBinary('nginx');
  if (!wrk) throw new Error('wrk is not installed (apt-get install wrk)');
  if (!nginxBin) throw new Error('nginx is not installed (apt-get install nginx)');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cellhost-bench-https-'));
  // removed when the section ends (it was left behind by every finished run), or by the cleanups of a run cut short
  const removeDir = deferCleanup(async () => fs.rmSync(dir, { recursive: true, force: true }));
  try {
    return await benchHttpsIn(dir, wrk, nginxBin, log);
  } finally {
    await removeDir();
  }
}

async function benchHttpsIn(dir: string, wrk: string, nginxBin: string, log: (line: string) => void): Promise<HttpsResults> {
  const tls = makeCertificate(dir);
  const httpsPort = await freePortSync();
  // freezing off: direct and nginx traffic bypasses the pool, which would see the instance idle
  const platform = await startPlatform({ CELLHOST_FREEZE_AFTER_S: '0', CELLHOST_HTTPS_ADDR: `127.0.0.1:${httpsPort}`, CELLHOST_TLS_CERT: tls.cert, CELLHOST_TLS_KEY: tls.key });
  const stopPlatform = deferCleanup(async () => void (await platform.close()));
  try {
    await platform.deploy(SERVICE, path.join(FIXTURES, 'node-hello'), { runtime: 'node', buildCommand: 'true', startCommand: 'node app.js', memoryMb: 3538, maxInstances: 1, idleTimeoutS: 3600, httpsRedirect: false });
    if ((await getViaRouter(platform.routerPort, HOST)) !== 200) throw new Error('the service did not answer');
    const pid = (await platform.service(SERVICE)).instances?.[0]?.pid;
    const upstream = typeof pid === 'number' && pid > 0 ? findListenAddress(pid) : null;
    if (!upstream) throw new Error(`could not find where instance pid ${pid} listens`);
    const nginx = await startNginx(nginxBin, upstream, 1, tls);
    const stopNginx = deferCleanup(() => nginx.close());
    const pipe = await startTlsPipe(upstream, tls.cert, tls.key);
    try {
      const targets = [
        { name: 'nginx', url: `https://localhost:${nginx.port}/` },
        { name: 'cellhost', url: `https://localhost:${httpsPort}/` },
      ];
      const versions = { nginx: await negotiatedVersion(nginx.port), cellhost: await negotiatedVersion(httpsPort) };
      log(`https: nginx speaks ${versions.nginx}, cellhost ${versions.cellhost}`);
      const keepAlive = await alternate(wrk, [...targets, { name: 'node TLS pipe', url: `https://localhost:${pipe.port}/` }], [], log, 'keep-alive');
      const bare = await startBareNodeHttps(tls.cert, tls.key);
      const stopBare = deferCleanup(() => bare.close());
      const handshakes = await alternate(wrk, [...targets, { name: 'node:https', url: `https://localhost:${bare.port}/` }], ['Connection: close'], log, 'new connections').finally(stopBare);
      // fixed rate: direct HTTP to the app against HTTPS through cellhost, in 1 s turns
      const ca = fs.readFileSync(tls.cert, 'utf8');
      const generator = await prepareFixedRate();
      const fixedTargets = {
        direct: { name: 'direct', port: upstream.port, host: upstream.host },
        cellhost: { name: 'cellhost', port: httpsPort, host: '127.0.0.1', hostHeader: HOST, tls: { ca, servername: HOST } },
        pipe: { name: 'pipe', port: pipe.port, host: '127.0.0.1', hostHeader: HOST, tls: { ca, servername: HOST } },
      };
      type FixedName = keyof typeof fixedTargets;
      const names = Object.keys(fixedTargets) as FixedName[];
      const slice = (t: FixedName, durationMs: number) => generator.run(fixedTargets[t], FIXED_RATE.ratePerS, durationMs);
      try {
        log(`https: ${FIXED_RATE.ratePerS} req/s warm-up, sent by ${generator.name}`);
        for (const t of names) await slice(t, FIXED_RATE.warmUpMs);
        const runs: Record<FixedName, FixedRateResult[]> = { direct: [], cellhost: [], pipe: [] };
        // taking turns, each round starting with the next target
        for (let round = 0; round < FIXED_RATE.rounds; round++) {
          for (let k = 0; k < names.length; k++) {
            const t = names[(round + k) % names.length]!;
            runs[t].push(await slice(t, FIXED_RATE.sliceMs));
          }
        }
        return {
          versions,
          keepAlive: { nginx: keepAlive.nginx!, cellhost: keepAlive.cellhost!, pipe: keepAlive['node TLS pipe']! },
          handshakes: { nginx: handshakes.nginx!, cellhost: handshakes.cellhost!, bare: handshakes['node:https']! },
          fixed: { direct: mergeFixedRate(runs.direct), cellhost: mergeFixedRate(runs.cellhost), pipe: mergeFixedRate(runs.pipe) },
          fixedGenerator: generator.name,
        };
      } finally {
        await generator.close();
      }
    } finally {
      await pipe.stop();
      await stopNginx();
    }
  } finally {
    await stopPlatform();
  }
}

export async function appendHttpsSection(out: string[], log: (line: string) => void = () => {}): Promise<boolean> {
  out.push('', `### HTTPS against nginx terminating TLS (same certificate, P-256; same app instance; nginx 1 worker; ${os.availableParallelism()} cores)`, '');
  try {
    const r = await benchHttps(log);
    out.push(`Negotiated with a client offering TLS 1.2 and 1.3: nginx ${r.versions.nginx}, cellhost ${r.versions.cellhost}.`, '');
    const rate = (w: WrkResult) => `${formatRate(w.requestsPerS)}${w.errors ? ` (${w.errors} errors)` : ''}`;
    const ka = r.keepAlive.cellhost.requestsPerS / r.keepAlive.nginx.requestsPerS;
    const hs = r.handshakes.cellhost.requestsPerS / r.handshakes.nginx.requestsPerS;
    const added = r.fixed.cellhost.p99Ms - r.fixed.direct.p99Ms;
    const pipeAdded = r.fixed.pipe.p99Ms - r.fixed.direct.p99Ms;
    const signed = (ms: number) => `${ms >= 0 ? '+' : ''}${formatMs(ms)}`;
    out.push(
      '| what | nginx | cellhost | cellhost vs nginx | target | met |',
      '|---|---|---|---|---|---|',
      `| keep-alive HTTPS/1.1, \`wrk -t1 -c32 -d5s\` (median of ${WRK_ROUNDS}) | ${rate(r.keepAlive.nginx)} | ${rate(r.keepAlive.cellhost)} (a Node TLS pipe, no HTTP: ${rate(r.keepAlive.pipe)}, ${formatRatio(r.keepAlive.pipe.requestsPerS / r.keepAlive.nginx.requestsPerS)} nginx) | ${formatRatio(ka)} | ≥ 0.6× | ${ka >= 0.6 ? 'yes' : '**no**'} |`,
      `| new TLS connections (handshake + one request), \`Connection: close\` | ${rate(r.handshakes.nginx)} | ${rate(r.handshakes.cellhost)} (node:https alone, answering itself: ${rate(r.handshakes.bare)}, ${formatRatio(r.handshakes.bare.requestsPerS / r.handshakes.nginx.requestsPerS)} nginx) | ${formatRatio(hs)} | ≥ 0.5× | ${hs >= 0.5 ? 'yes' : '**no**'} |`,
      `| p50 / p99 at a fixed ${FIXED_RATE.ratePerS} req/s, keep-alive, sent by ${r.fixedGenerator}: direct HTTP vs cellhost HTTPS | direct ${formatMs(r.fixed.direct.p50Ms)} / ${formatMs(r.fixed.direct.p99Ms)} | ${formatMs(r.fixed.cellhost.p50Ms)} / ${formatMs(r.fixed.cellhost.p99Ms)} (${r.fixed.cellhost.errors} errors; a Node TLS pipe, no HTTP: ${formatMs(r.fixed.pipe.p50Ms)} / ${formatMs(r.fixed.pipe.p99Ms)}, ${signed(pipeAdded)} p99) | ${signed(added)} p99 | ≤ 1.5 ms added | ${added <= 1.5 ? 'yes' : '**no**'} |`,
    );
    return true;
  } catch (err) {
    log(`https: failed: ${(err as Error).stack ?? err}`);
    out.push(`failed: ${(err as Error).message.split('\n')[0]}`);
    return false;
  }
}

await runIfMain(import.meta.url, appendHttpsSection);

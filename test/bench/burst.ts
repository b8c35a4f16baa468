// Burst: 200 requests at once at a service with no instance (concurrency 10, max instances 20),
// each on its own connection. Counted: errors, the slowest answer, how many instances it took.
import net from 'node:net';
import path from 'node:path';
import { FIXTURES } from '../helpers/server.ts';
import type { BenchPlatform } from './platform.ts';
import { clockTicksPerS, readCpuTicks, readInstancesCpuMs } from './proc-stats.ts';
import { median, percentile } from './stats.ts';

const SERVICE = 'burst';
export const BURST = { requests: 200, concurrency: 10, maxInstances: 20 };

export interface BurstResult {
  requests: number;
  errors: number;
  errorKinds: Record<string, number>;
  p50Ms: number;
  maxMs: number;
  instances: number;
  /** spawn → ready of each instance the burst started */
  instanceStartP50Ms: number;
  instanceStartMaxMs: number;
  /** CPU the platform process and all app instances used during the burst */
  platformCpuMs: number;
  appsCpuMs: number | null;
}

/**
 * One GET on its own connection, as lean as the client side can be (a raw socket, the status
 * line read, `Connection: close`): 200 of node's http.get cost the generator ~80 ms of CPU on
 * the same two cores before the last one is even sent, which is not the platform's time.
 */
export function rawGet(port: number, host: string, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let head = '';
    let status = 0;
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    socket.on('connect', () => socket.write(`GET / HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`));
    socket.on('data', (chunk: Buffer) => {
      if (status) return;
      head += chunk.toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(head);
      if (m) status = Number(m[1]);
    });
    socket.on('error', reject);
    // the whole response has come when the server closes (Connection: close)
    socket.on('close', () => (status ? resolve(status) : reject(new Error('the connection closed without a response'))));
  });
}

export async function benchBurst(platform: BenchPlatform): Promise<BurstResult> {
  await platform.deploy(SERVICE, path.join(FIXTURES, 'node-hello'), {
    runtime: 'node',
    buildCommand: 'true',
    startCommand: 'node app.js',
    concurrency: BURST.concurrency,
    maxInstances: BURST.maxInstances,
    idleTimeoutS: 3600,
  });
  const kinds: Record<string, number> = {};
  const latencies: number[] = [];
  const hz = await clockTicksPerS();
  const platformTicks0 = readCpuTicks(platform.pid);
  const appsCpu0 = readInstancesCpuMs(platform.cgroupPrefix);
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: BURST.requests }, async () => {
      try {
        const status = await rawGet(platform.routerPort, `${SERVICE}.localhost`, 60_000);
        if (status === 200) latencies.push(performance.now() - t0);
        else kinds[String(status)] = (kinds[String(status)] ?? 0) + 1;
      } catch (err) {
        const key = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
        kinds[key] = (kinds[key] ?? 0) + 1;
      }
    }),
  );
  const platformCpuMs = ((readCpuTicks(platform.pid) - platformTicks0) / hz) * 1000;
  const appsCpu1 = readInstancesCpuMs(platform.cgroupPrefix);
  const view = await platform.service(SERVICE);
  const starts = (view.instances as { startedAt: string; readyAt: string | null }[]).filter((i) => i.readyAt).map((i) => Date.parse(i.readyAt!) - Date.parse(i.startedAt));
  return {
    requests: BURST.requests,
    errors: Object.values(kinds).reduce((a, b) => a + b, 0),
    errorKinds: kinds,
    p50Ms: percentile(latencies, 50),
    maxMs: percentile(latencies, 100),
    instances: view.instances.length,
    instanceStartP50Ms: median(starts),
    instanceStartMaxMs: percentile(starts, 100),
    platformCpuMs,
    appsCpuMs: appsCpu0 === null || appsCpu1 === null ? null : appsCpu1 - appsCpu0,
  };
}

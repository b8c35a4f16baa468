// The router's data path alone (the proxy's code, no platform around it), as one process for the
// parts of the added p99 (proxy.ts), or as N processes sharing one listening port: the upper
// bound of a multi-process router (router-processes.ts). Each process forwards every request to
// one fixed upstream on its own keep-alive connections; there is no pool, no lease shared between
// the processes, no store, which a real multi-process router would need and pay for. With
// cluster's SCHED_NONE each worker accepts from the shared socket itself (the kernel spreads the
// connections), as SO_REUSEPORT would; Node 20's net has no reusePort option.
// usage: node --import tsx test/bench/router-worker.ts <upstream port> <listen port> <processes> [upstream host]
import cluster from 'node:cluster';
import type { Pool } from '../../runtime/instances/pool/types.ts';
import { openUpstream } from '../../runtime/instances/upstream.ts';
import { createRouter } from '../../runtime/router/proxy.ts';

const [upstreamPort, port, processes] = process.argv.slice(2, 5).map(Number) as [number, number, number];
const upstreamHost = process.argv[5] ?? '127.0.0.1';
const CONNECTIONS = 32;

if (processes > 1 && cluster.isPrimary) {
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  let listening = 0;
  for (let i = 0; i < processes; i++) cluster.fork().on('listening', () => ++listening === processes && console.log('ready'));
  cluster.on('exit', (_worker, code) => {
    if (code) process.exit(code);
  });
  process.on('SIGTERM', () => {
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM');
    process.exit(0);
  });
} else {
  const upstream = { host: upstreamHost, port: upstreamPort };
  const lease = { instanceId: 'bench', upstream, connections: openUpstream(upstream, CONNECTIONS), coldStart: false, release() {}, diagnose: async () => null, recycle() {} };
  const pool = { tryAcquire: () => lease, acquire: async () => lease } as unknown as Pool;
  const server = createRouter({ pool, routes: { resolve: () => ({ service: 'bench', requestTimeoutMs: 30_000 }) }, maxBodyBytes: 100 * 1024 * 1024 });
  server.listen(port, '127.0.0.1', () => processes === 1 && console.log('ready'));
  process.on('SIGTERM', () => process.exit(0));
}

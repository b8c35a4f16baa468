// nginx as the reference reverse proxy: a generated config in a temp dir, one worker (the
// router is one Node process), keep-alive to the upstream, the same forwarding headers cellhost
// sets. Started in the foreground so it is our child and ends by its pid.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { probePort } from '../../runtime/instances/readiness.ts';
import { processTree } from '../helpers/host.ts';
import { freePortSync } from '../helpers/subprocess-server.ts';
import { stopChild } from './child.ts';
import { sleep } from './stats.ts';

export interface RunningNginx {
  port: number;
  workers: number;
  /** the master's pid: its workers are its children */
  pid: number;
  close(): Promise<void>;
}

/**
 * `tls`: nginx terminates TLS with this certificate and key (the HTTPS benchmark), offering TLS 1.3
 * as cellhost does: Debian 12's nginx (1.22) offers only up to TLS 1.2 unless told (1.23.4 and
 * later offer 1.3 by default), and wrk then compared nginx's TLS 1.2, whose resumed handshakes
 * skip the key exchange, with cellhost's TLS 1.3
 */
export function nginxConfig(dir: string, listenPort: number, upstream: { host: string; port: number }, workers: number, tls?: { cert: string; key: string }): string {
  const temp = (name: string) => `${name} ${path.join(dir, name.replace(/_path$/, ''))};`;
  return `worker_processes ${workers};
pid ${path.join(dir, 'nginx.pid')};
error_log ${path.join(dir, 'error.log')} warn;
events { worker_connections 4096; }
http {
  access_log off;
  ${temp('client_body_temp_path')}
  ${temp('proxy_temp_path')}
  ${temp('fastcgi_temp_path')}
  ${temp('uwsgi_temp_path')}
  ${temp('scgi_temp_path')}
  upstream app {
    server ${upstream.host}:${upstream.port};
    keepalive 64;
  }
  server {
    listen 127.0.0.1:${listenPort} reuseport${tls ? ' ssl' : ''};
${tls ? `    ssl_certificate ${tls.cert};
    ssl_certificate_key ${tls.key};
    ssl_protocols TLSv1.2 TLSv1.3;
` : ''}    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Host $host;
      proxy_set_header X-Request-Id $request_id;
    }
  }
}
`;
}

export async function startNginx(nginx: string, upstream: { host: string; port: number }, workers = 1, tls?: { cert: string; key: string }): Promise<RunningNginx> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cellhost-bench-nginx-'));
  // workers drop to "nobody": they must be able to reach the temp dirs
  fs.chmodSync(dir, 0o755);
  const port = await freePortSync();
  const conf = path.join(dir, 'nginx.conf');
  fs.writeFileSync(conf, nginxConfig(dir, port, upstream, workers, tls));
  let out = '';
  const proc: ChildProcess = spawn(nginx, ['-c', conf, '-p', dir, '-e', path.join(dir, 'error.log'), '-g', 'daemon off;'], { stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout!.on('data', (b) => (out += b));
  proc.stderr!.on('data', (b) => (out += b));
  const close = async () => {
    await stopChild(proc);
    fs.rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 5000;
  while (!(await probePort('127.0.0.1', port))) {
    if (proc.exitCode !== null || Date.now() > deadline) {
      await close();
      throw new Error(`nginx did not start: ${out}`);
    }
    await sleep(10);
  }
  // the master listens before it forks its workers: the caller reads the CPU of the whole tree
  while (processTree(proc.pid!).length < workers + 1) {
    if (proc.exitCode !== null || Date.now() > deadline) {
      await close();
      throw new Error(`nginx did not start its ${workers} worker(s): ${out}`);
    }
    await sleep(10);
  }
  return { port, workers, pid: proc.pid!, close };
}

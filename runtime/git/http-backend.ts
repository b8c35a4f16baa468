// git's own smart-HTTP server, `git http-backend`, run as a CGI child per request: the request
// body streams into its stdin as it arrives (gzip-encoded bodies too: http-backend inflates them
// itself when told the encoding), its CGI head is parsed into the response's status and headers,
// and the rest of its output streams back with backpressure. A client that goes away ends the
// child and everything it started (its own process group).
import { spawn, type ChildProcess } from 'node:child_process';
import type http from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from '../core/log.ts';

export interface CgiRequest {
  method: string;
  /** /<repo>.git/<git's path>, already checked */
  pathInfo: string;
  query: string;
  /** who the token belongs to (receive-pack runs only with one) */
  remoteUser: string;
  remoteAddr: string;
}

export interface HttpBackendOptions {
  incoming: http.IncomingMessage;
  outgoing: http.ServerResponse;
  request: CgiRequest;
  projectRoot: string;
  /** git's environment (PATH, HOME, config) */
  env: Record<string, string>;
  /** extra sockets the child gets as fds 3, 4, … (its hooks inherit them) */
  extraFds?: number;
  log: Logger;
}

/** the largest CGI head accepted before the child is taken for broken */
const MAX_HEAD = 64 * 1024;

export interface HttpBackendRun {
  child: ChildProcess;
  /** the child's fds 3, 4, … as the platform's ends of socket pairs */
  fds: Duplex[];
  /** resolves once the child has exited and the response is finished */
  done: Promise<void>;
}

export function runHttpBackend(opts: HttpBackendOptions): HttpBackendRun {
  const { incoming, outgoing, request } = opts;
  const header = (name: string) => {
    const v = incoming.headers[name];
    return Array.isArray(v) ? v.join(', ') : (v ?? '');
  };
  const env: Record<string, string> = {
    ...opts.env,
    GIT_PROJECT_ROOT: opts.projectRoot,
    GIT_HTTP_EXPORT_ALL: '1',
    PATH_INFO: request.pathInfo,
    QUERY_STRING: request.query,
    REQUEST_METHOD: request.method,
    REMOTE_USER: request.remoteUser,
    REMOTE_ADDR: request.remoteAddr,
    CONTENT_TYPE: header('content-type'),
    GATEWAY_INTERFACE: 'CGI/1.1',
    SERVER_PROTOCOL: 'HTTP/1.1',
  };
  if (incoming.headers['content-length'] !== undefined) env.CONTENT_LENGTH = header('content-length');
  if (incoming.headers['content-encoding'] !== undefined) env.HTTP_CONTENT_ENCODING = header('content-encoding');
  if (incoming.headers['git-protocol'] !== undefined) env.GIT_PROTOCOL = header('git-protocol');

  const extra = opts.extraFds ?? 0;
  const child = spawn('git', ['http-backend'], {
    env,
    stdio: ['pipe', 'pipe', 'pipe', ...Array.from({ length: extra }, () => 'pipe' as const)],
    detached: true,
  });
  const fds = Array.from({ length: extra }, (_, i) => child.stdio[3 + i] as Duplex);
  for (const fd of fds) fd.on('error', () => {});

  const killGroup = () => {
    if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      child.kill('SIGKILL');
    }
  };

  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    if (stderr.length < 4096) stderr += d;
  });
  child.stdin!.on('error', () => {}); // a child that stops reading early (a refused request) is not an error here
  incoming.pipe(child.stdin!);
  incoming.on('error', killGroup);
  // the client went away before the answer was finished: nothing of this request runs on
  outgoing.on('close', () => {
    if (!outgoing.writableFinished) killGroup();
  });

  let head = Buffer.alloc(0);
  let inBody = false;
  const stdout = child.stdout!;
  const onHead = (chunk: Buffer) => {
    head = Buffer.concat([head, chunk]);
    const crlf = head.indexOf('\r\n\r\n');
    const lf = head.indexOf('\n\n');
    const end = crlf >= 0 && (lf < 0 || crlf < lf) ? crlf : lf;
    if (end < 0) {
      if (head.length > MAX_HEAD) {
        opts.log.error('git.cgi_head_too_large', { path: request.pathInfo });
        killGroup();
      }
      return;
    }
    let status = 200;
    const headers: Record<string, string> = {};
    for (const line of head.subarray(0, end).toString('latin1').split(/\r?\n/)) {
      const colon = line.indexOf(':');
      if (colon <= 0) continue;
      const name = line.slice(0, colon).trim();
      const value = line.slice(colon + 1).trim();
      if (name.toLowerCase() === 'status') status = Number(value.split(' ')[0]) || 500;
      else headers[name] = value;
    }
    inBody = true;
    stdout.off('data', onHead);
    outgoing.writeHead(status, headers);
    const rest = head.subarray(end + (end === crlf ? 4 : 2));
    if (rest.length) outgoing.write(rest);
    stdout.pipe(outgoing);
  };
  stdout.on('data', onHead);

  const done = new Promise<void>((resolve) => {
    child.on('error', (err) => {
      opts.log.error('git.http_backend_failed', { error: err.message });
      if (!outgoing.headersSent) {
        const body = JSON.stringify({ error: { code: 'ERR_INTERNAL', message: 'git http-backend could not be started (is git installed?)' } });
        outgoing.writeHead(500, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) });
        outgoing.end(body);
      }
      resolve();
    });
    child.on('close', (code, signal) => {
      for (const fd of fds) fd.destroy();
      if (code !== 0 && stderr.trim()) opts.log.warn('git.http_backend_stderr', { path: request.pathInfo, code, signal, stderr: stderr.trim().slice(0, 1000) });
      if (!inBody && !outgoing.headersSent) {
        const body = JSON.stringify({ error: { code: 'ERR_INTERNAL', message: 'git http-backend ended without an answer' } });
        outgoing.writeHead(500, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) });
        outgoing.end(body);
      } else if (!outgoing.writableEnded) {
        // pipe() ends it once stdout has drained; an exit without output still finishes it
        stdout.once('end', () => outgoing.end());
        if (stdout.readableEnded) outgoing.end();
      }
      resolve();
    });
  });
  return { child, fds, done };
}
